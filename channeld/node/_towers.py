"""The node's watchtowers: which towers it delegates to, and feeding them its partners' newest proofs.

`channeld watchtower add URI` (POST /api/v1/watchtowers) records the tower in the node's journal
(table `watchtowers`, written with a sync, so it survives restarts) and starts a `TowerClient` for it
at once. The feeder is a sink of the node's event bus, never part of the payment path: a received payment
only marks its channel (a set insertion), and every `PUSH_INTERVAL` the newest partner proof of each
marked channel is handed to every tower. `TowerClient.push` returns at once; the client signs our
`BalanceProofUpdate` authorization, sends, redials and re-syncs in its own task. So under load a channel
is pushed at most `1 / PUSH_INTERVAL` times per second whatever the payment rate: only the newest proof
matters. A (re)start and a newly added tower trigger a push of every channel's newest proof.

`last_push_at` (per tower, unix seconds) is when its client was last seen to have sent a proof, looked
at on every feeder tick; it is kept in the tower's journal record (an unsynced write, so a restart keeps
it and at worst an OS crash loses the newest stamp).
"""

from __future__ import annotations

import builtins
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

import trio

from channeld.errors import LocalFault
from channeld.node._events import NodeEvent
from channeld.protocol import ChannelStatus, partner_proof_for_chain
from channeld.transport import BadPeerUri, PeerUri
from channeld.watchtower.client import TowerClient
from channeld.wire import BalanceProof

if TYPE_CHECKING:
    from channeld.node._node import Node

log = logging.getLogger("channeld.node.towers")

TOWERS_TABLE = "watchtowers"
PUSH_INTERVAL = 0.25  # seconds: at most four pushes per second per channel, however fast payments come
MAX_TOWERS = 16
_SETTLED_EVENTS = frozenset({"chain_ChannelSettled", "chain_ChannelCooperativelySettled"})
_PUSH_EVENTS = frozenset({"payment_received", "chain_ChannelClosed"})


class TowerRefused(LocalFault):
    """A tower that cannot be added: ourselves, already added, or one too many."""


class TowerSet:
    """Tower clients of one node and the feeder that keeps them up to date."""

    def __init__(self, node: Node, client_factory: Callable[[PeerUri], TowerClient] | None = None) -> None:
        self.node = node
        self.clients: dict[str, TowerClient] = {}
        self._make = client_factory or self._client
        self._dirty: set[bytes] = set()
        self._rescan = True
        self._nursery: trio.Nursery | None = None
        self.pushes = 0
        self._sent_seen: dict[str, int] = {}  # each client's pushes_sent when last looked at

    def _client(self, uri: PeerUri) -> TowerClient:
        node = self.node
        return TowerClient(uri, node.key.private_key, node.chain_id, node.ns.contract)

    # --- the operator's face -------------------------------------------------------------------------

    def add(self, uri: str) -> dict[str, Any]:
        """Record `uri` durably, then start delegating to it. Raises `BadPeerUri` or `TowerRefused`."""
        parsed = PeerUri.parse(uri)
        key = parsed.node_id.hex()
        if parsed.node_id == self.node.node_id:
            raise TowerRefused("a node cannot be its own watchtower")
        known = dict(self.node.journal.items(TOWERS_TABLE))
        if key in known:
            raise TowerRefused(f"tower {key} is already added ({known[key].get('uri')})")
        if len(known) >= MAX_TOWERS:
            raise TowerRefused(f"at most {MAX_TOWERS} watchtowers")
        self.node.journal.put(TOWERS_TABLE, key, {"uri": str(parsed), "added_at": time.time()}, sync=True)
        self._start(parsed)
        return self.describe(str(parsed))

    def describe(self, uri: str, last_push_at: float | None = None) -> dict[str, Any]:
        client = self.clients.get(uri)
        found = {"uri": uri, "connected": False, "channels": 0, "pending": 0, "pushes_sent": 0,
                 "accepted": 0, "refused": 0, "connects": 0, "last_push_at": last_push_at}
        if client is not None:
            stats = client.statistics()
            # pending counts what the client still has to get accepted, plus what the feeder has not
            # handed it yet: zero means the tower holds every channel's newest proof
            found.update(connected=stats.connected, channels=stats.channels,
                         pending=stats.pending + self.unfed(), pushes_sent=stats.pushes_sent,
                         accepted=stats.accepted, refused=stats.refused, connects=stats.connects)
        return found

    def unfed(self) -> int:
        """Channels marked since the feeder last ran (all of them when a rescan is due)."""
        return len(self.node.channels.channels) if self._rescan else len(self._dirty)

    def is_synced(self) -> bool:
        """Every tower is connected and holds every channel's newest proof (or refused it for good)."""
        return self.unfed() == 0 and all(client.is_synced() for client in self.clients.values())

    def list(self) -> builtins.list[dict[str, Any]]:
        return [self.describe(str(record.get("uri")), _stamp(record.get("last_push_at")))
                for _, record in self.node.journal.items(TOWERS_TABLE)]

    # --- running -------------------------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for key, record in self.node.journal.items(TOWERS_TABLE):
                try:
                    self._start(PeerUri.parse(str(record.get("uri"))))
                except BadPeerUri as exc:  # a damaged record must not keep the node from starting
                    log.error("watchtower record %s is not usable and is skipped: %s", key, exc)
            task_status.started()
            while True:
                self.feed()
                self.note_pushes(time.time())
                await trio.sleep(PUSH_INTERVAL)

    def _start(self, uri: PeerUri) -> None:
        if self._nursery is None or str(uri) in self.clients:
            return
        client = self._make(uri)
        self.clients[str(uri)] = client
        self._nursery.start_soon(client.run)
        self._rescan = True  # a new tower gets every channel's newest proof

    def on_event(self, event: NodeEvent) -> None:
        """A bus sink: runs inside `publish`, so it only marks channels (no I/O, no signing)."""
        if event.channel_id is None or not self.clients:
            return
        if event.kind in _PUSH_EVENTS:
            self._dirty.add(event.channel_id)
        elif event.kind in _SETTLED_EVENTS:
            self._dirty.discard(event.channel_id)
            for client in self.clients.values():
                client.forget(event.channel_id)

    def feed(self) -> int:
        """Hand the newest partner proof of every marked channel (all, on a rescan) to every tower."""
        if not self.clients:
            return 0
        marked = list(self.node.channels.channels) if self._rescan else list(self._dirty)
        self._rescan = False
        self._dirty.clear()
        pushed = 0
        for proof in self._proofs(marked):
            for client in self.clients.values():
                client.push(proof)
            pushed += 1
        self.pushes += pushed
        return pushed

    def note_pushes(self, now: float) -> None:
        """Stamp every tower whose client sent a proof since the last look."""
        for uri, client in self.clients.items():
            sent = client.statistics().pushes_sent
            if sent > self._sent_seen.get(uri, 0):
                self._sent_seen[uri] = sent
                key = client.uri.node_id.hex()
                record = self.node.journal.get(TOWERS_TABLE, key)
                if record is not None:
                    self.node.journal.put(TOWERS_TABLE, key, {**record, "last_push_at": now})

    def _proofs(self, channel_ids: builtins.list[bytes]) -> Iterator[BalanceProof]:
        for cid in channel_ids:
            entry = self.node.channels.channels.get(cid)
            if entry is None:
                continue
            state = entry.state
            if state.status in (ChannelStatus.OPEN, ChannelStatus.CLOSED) and state.partner.proof is not None:
                # the tower checks `v` (ecrecover) as the contract will; payments only checked (r, s)
                yield cast(BalanceProof, partner_proof_for_chain(state))


def _stamp(raw: object) -> float | None:
    return float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None
