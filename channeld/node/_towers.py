"""The node's watchtowers: which towers it delegates to, and feeding them its partners' newest proofs.

`channeld watchtower add URI` (POST /api/v1/watchtowers) records the tower in the node's journal
(table `watchtowers`, written with a sync, so it survives restarts) and starts a `TowerClient` for it
at once. The feeder is a sink of the node's event bus, never part of the payment path: a received payment
only marks its channel (a set insertion), and every `PUSH_INTERVAL` the newest partner proof of each
marked channel is handed to every tower. `TowerClient.push` returns at once; the client signs our
`BalanceProofUpdate` authorization, sends, redials and re-syncs in its own task. So under load a channel
is pushed at most `1 / PUSH_INTERVAL` times per second whatever the payment rate: only the newest proof
matters. A (re)start and a newly added tower trigger a push of every channel's newest proof.

A tower serves one chain and contract (its `Init` names them, as a node's does), so each tower is added
for one of the node's chains (`--chain`, by name or id; a one-chain node's only chain by default) and the
feeder hands it the proofs of that chain's channels only; a node on several chains adds a tower per chain
(docs/operator-guide.md). A record written before towers named their chain is the primary chain's.

`last_push_at` (per tower, unix seconds) is when its client was last seen to have sent a proof, and
`counters` what its clients sent, had accepted or refused and how often they connected, summed over the
node's runs; both are looked at on every feeder tick and kept in the tower's journal record (an unsynced
write, so a restart keeps them and at worst an OS crash loses the newest tick's).
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
from channeld.node._rooms import ChainRoom, pick_room
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
COUNTERS = ("pushes_sent", "accepted", "refused", "connects")  # kept across restarts, per tower


class TowerRefused(LocalFault):
    """A tower that cannot be added: ourselves, already added, or one too many."""


class TowerSet:
    """Tower clients of one node and the feeder that keeps them up to date."""

    def __init__(self, node: Node,
                 client_factory: Callable[[PeerUri, ChainRoom], TowerClient] | None = None) -> None:
        self.node = node
        self.clients: dict[str, TowerClient] = {}
        self._make = client_factory or self._client
        self._dirty: set[bytes] = set()
        self._rescan = True
        self._nursery: trio.Nursery | None = None
        self.pushes = 0
        self._seen: dict[str, tuple[int, ...]] = {}  # each client's counters when last looked at
        self._earlier: dict[str, dict[str, int]] = {}  # each tower's counters from the node's earlier runs

    def _client(self, uri: PeerUri, room: ChainRoom) -> TowerClient:
        return TowerClient(uri, self.node.key.private_key, room.chain_id, room.ns.contract)

    # --- the operator's face -------------------------------------------------------------------------

    def add(self, uri: str, chain: str | None = None) -> dict[str, Any]:
        """Record `uri` durably as a tower of `chain` (name or id), then start delegating to it.
        Raises `BadPeerUri`, `UnknownChain` or `TowerRefused`."""
        parsed = PeerUri.parse(uri)
        room = pick_room(self.node.rooms, chain)
        key = parsed.node_id.hex()
        if parsed.node_id == self.node.node_id:
            raise TowerRefused("a node cannot be its own watchtower")
        known = dict(self.node.journal.items(TOWERS_TABLE))
        if key in known:
            raise TowerRefused(f"tower {key} is already added ({known[key].get('uri')})")
        if len(known) >= MAX_TOWERS:
            raise TowerRefused(f"at most {MAX_TOWERS} watchtowers")
        record = {"uri": str(parsed), "added_at": time.time(), "chain_id": room.chain_id,
                  "contract": room.contract}
        self.node.journal.put(TOWERS_TABLE, key, record, sync=True)
        self._start(parsed, room)
        return self.describe(record)

    def describe(self, record: dict[str, Any]) -> dict[str, Any]:
        """What `watchtower list` shows of the tower `record` (its journal record) and its client."""
        uri = str(record.get("uri"))
        room = self._room_of(record)
        counters = self._earlier.get(uri) or _counters(record.get("counters"))
        found: dict[str, Any] = {
            "uri": uri, "chain": None if room is None else room.name,
            "chain_id": None if room is None else room.chain_id, "connected": False, "channels": 0,
            "pending": 0, **counters, "last_push_at": _stamp(record.get("last_push_at"))}
        client = self.clients.get(uri)
        if client is not None:
            stats = client.statistics()
            # pending counts what the client still has to get accepted, plus what the feeder has not
            # handed it yet: zero means the tower holds every channel's newest proof
            found.update(connected=stats.connected, channels=stats.channels,
                         pending=stats.pending + self.unfed(), **self._totals(uri, client))
        return found

    def _totals(self, uri: str, client: TowerClient) -> dict[str, int]:
        """The client's counters added to those of the node's earlier runs."""
        stats = client.statistics()
        earlier = self._earlier.get(uri, {})
        return {name: earlier.get(name, 0) + getattr(stats, name) for name in COUNTERS}

    def _room_of(self, record: dict[str, Any]) -> ChainRoom | None:
        """The chain room a record names (a record from before towers named a chain: the primary's)."""
        chain_id = record.get("chain_id", self.node.chain_id)
        contract = record.get("contract", self.node.contract)
        for room in self.node.rooms:
            if room.chain_id == chain_id and str(room.contract).lower() == str(contract).lower():
                return room
        return None

    def unfed(self) -> int:
        """Channels marked since the feeder last ran (all of them when a rescan is due)."""
        return len(self.node.channels.channels) if self._rescan else len(self._dirty)

    def is_synced(self) -> bool:
        """Every tower is connected and holds every channel's newest proof (or refused it for good)."""
        return self.unfed() == 0 and all(client.is_synced() for client in self.clients.values())

    def list(self) -> builtins.list[dict[str, Any]]:
        return [self.describe(record) for _, record in self.node.journal.items(TOWERS_TABLE)]

    # --- running -------------------------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for key, record in self.node.journal.items(TOWERS_TABLE):
                self._restart(key, record)
            task_status.started()
            try:
                while True:
                    self.feed()
                    self.note_pushes(time.time())
                    await trio.sleep(PUSH_INTERVAL)
            finally:  # a clean stop keeps the last tick's counts too
                self.note_pushes(time.time())

    def _restart(self, key: str, record: dict[str, Any]) -> None:
        """Start the client of a tower recorded before this run, with the counters it had reached."""
        room = self._room_of(record)
        try:
            uri = PeerUri.parse(str(record.get("uri")))
        except BadPeerUri as exc:  # a damaged record must not keep the node from starting
            log.error("watchtower record %s is not usable and is skipped: %s", key, exc)
            return
        if room is None:  # the chain left the config: its tower has nothing to watch here
            log.warning("watchtower %s watches chain %s, which this node no longer serves: not used",
                        uri, record.get("chain_id"))
            return
        self._earlier[str(uri)] = _counters(record.get("counters"))
        self._start(uri, room)

    def _start(self, uri: PeerUri, room: ChainRoom) -> None:
        if self._nursery is None or str(uri) in self.clients:
            return
        client = self._make(uri, room)
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
                # each tower watches one chain: it takes that chain's proofs only
                if (client.chain_id, client.contract) == (proof.chain_id, proof.contract):
                    client.push(proof)
            pushed += 1
        self.pushes += pushed
        return pushed

    def note_pushes(self, now: float) -> None:
        """Keep every tower's counters, and stamp those whose client sent a proof since the last look."""
        for uri, client in self.clients.items():
            totals = self._totals(uri, client)
            seen = self._seen.get(uri)
            if seen == tuple(totals.values()):
                continue
            self._seen[uri] = tuple(totals.values())
            key = client.uri.node_id.hex()
            record = self.node.journal.get(TOWERS_TABLE, key)
            if record is None:
                continue
            sent = seen is None or totals["pushes_sent"] > seen[0]
            stamp = {"last_push_at": now} if sent and client.statistics().pushes_sent else {}
            self.node.journal.put(TOWERS_TABLE, key, {**record, "counters": totals, **stamp})

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


def _counters(raw: object) -> dict[str, int]:
    """The counters of a journal record (zeros for one written before they were kept, or damaged)."""
    found = raw if isinstance(raw, dict) else {}
    return {name: value if type(value := found.get(name)) is int and value >= 0 else 0 for name in COUNTERS}
