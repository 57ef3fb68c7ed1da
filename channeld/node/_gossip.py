"""Gossip and the channel graphs: our channels announced to every peer, theirs verified against the chain.

Each chain the node serves has a `ChainView`: its contract's logs, and one graph per asset (token) on it.
A graph holds our own channels in its asset (exact balances, refreshed before each search) and every
announcement a peer sent that checks out: signed by its announcer, for a chain and contract we serve, and
naming a channel that chain holds with exactly those participants and capacity. Conversion announcements
(`ConversionGossip`) ride the same flood and go to `node/_conversions.py`. The chain's view of all
channels (not only ours) comes from the contract's logs, read here; an announcement that arrives before
its channel's logs waits for them a few seconds (`EARLY_WAIT`), and is refused if they never come. A new
announcement is relayed to every other peer that wants gossip (flooding; a `serial` no higher than the one
held stops the flood). Our own announcements are signed once per change (a channel newly open, its
capacity, our fees) and sent incrementally: all of them to a peer newly connected, then only what changed;
every `routing.gossip_interval` all are signed anew (a higher serial, so a flood a peer further away
missed, having refused an announcement that came before its logs, runs again) and sent to every peer that
wants gossip.

Only peers whose `Init.features` carry the gossip bit (`GOSSIP_FEATURES`: every channeld node, which
keeps a graph) get announcements. A wallet that routes nothing sends no features and gets none: a hub
with 1,000 wallets would otherwise send every wallet every channel's announcement, O(channels x peers).

A node that does not forward (`routing.forward = no`) announces nothing: an announcement is the edge
*out of* its announcer, an offer to carry payments into the channel, and a payer that routed through a
node that then refuses would wait out its whole lock (reveal timeouts, minutes of chain time) before
trying another route. Such a node stays reachable as a target through its partners' announcements.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import trio

from channeld.chain import contract as hub
from channeld.errors import ChanneldError
from channeld.node._records import addr_bytes
from channeld.protocol import ChannelStatus, FeePolicy, Route
from channeld.protocol._crosschain import NATIVE
from channeld.routing import (
    Asset,
    BadAnnouncement,
    ChannelAnnouncement,
    ChannelGraph,
    NoRoute,
    OnChainChannel,
    plan_routes,
    sign_announcement,
)
from channeld.store import Namespace
from channeld.wire import ChannelGossip, ConversionGossip

if TYPE_CHECKING:
    from channeld.node._channels import ChannelEntry
    from channeld.node._node import Node
    from channeld.node._rooms import ChainRoom

log = logging.getLogger("channeld.node")
LOG_WINDOW = 5000  # blocks per log query
EARLY_WAIT = 5.0  # seconds an announcement may wait for its channel's logs to reach us
MAX_EARLY = 256
GOSSIP_FEATURES = b"\x01"  # Init.features bit 0: this side keeps a channel graph and wants announcements


def wants_gossip(features: bytes) -> bool:
    return bool(features) and features[-1] & 1 == 1


def to_wire(a: ChannelAnnouncement) -> ChannelGossip:
    return ChannelGossip(a.chain_id, a.contract, a.channel_id, a.participant1, a.participant2, a.capacity,
                         a.announcer, a.fee_base, a.fee_ppm, a.reveal_timeout, a.serial, a.signature)


def from_wire(m: ChannelGossip) -> ChannelAnnouncement:
    return ChannelAnnouncement(m.chain_id, m.contract, m.channel_id, m.participant1, m.participant2,
                               m.capacity, m.announcer, m.fee_base, m.fee_ppm, m.reveal_timeout, m.serial,
                               m.signature)


def capacity_of(channel: hub.OnChainChannel) -> int | None:
    """What an announcement of the channel must state (None once it closed: it routes nothing)."""
    if channel.closing is not None or channel.settled is not None or channel.cooperative:
        return None
    s = channel.state
    return s.deposit1 + s.deposit2 - s.withdrawn1 - s.withdrawn2


class ChainView:
    """One chain's contract logs read into the view of every channel on it (not only ours), and one
    channel graph per asset (token) routed on that chain: a lock never changes asset at a mediator."""

    def __init__(self, room: ChainRoom, graphs: dict[Asset, ChannelGraph]) -> None:
        self.room = room
        self.onchain: dict[bytes, hub.OnChainChannel] = {}
        self.next_block = room.setup.deploy_block
        self._graphs = graphs  # shared by every chain's view: the node's assets, for cross-chain routes

    def asset(self, token: bytes = NATIVE) -> Asset:
        return Asset(self.room.chain_id, self.room.ns.contract, token)

    def graph(self, token: bytes = NATIVE) -> ChannelGraph:
        """The graph of `token` on this chain (made when first needed)."""
        asset = self.asset(token)
        graph = self._graphs.get(asset)
        if graph is None:
            graph = self._graphs[asset] = ChannelGraph(asset.chain_id, asset.contract,
                                                       lambda cid: self.lookup(cid, token))
        return graph

    def token_of(self, channel_id: bytes) -> bytes | None:
        channel = self.onchain.get(channel_id)
        return None if channel is None else addr_bytes(channel.state.token)

    def lookup(self, channel_id: bytes, token: bytes | None = None) -> OnChainChannel | None:
        """The chain's view of an open channel (of `token`, if named), as announcements are checked."""
        channel = self.onchain.get(channel_id)
        capacity = None if channel is None else capacity_of(channel)
        if channel is None or capacity is None:
            return None
        if token is not None and addr_bytes(channel.state.token) != token:
            return None
        p1, p2 = sorted((addr_bytes(channel.state.participant1), addr_bytes(channel.state.participant2)))
        return OnChainChannel(p1, p2, capacity)

    def read_logs(self) -> None:
        """Blocking: apply the contract's logs up to the head to the view of every channel."""
        backend = self.room.chain.backend
        head = backend.head()
        while self.next_block <= head:
            last = min(head, self.next_block + LOG_WINDOW - 1)
            for raw in backend.get_logs(self.room.contract, self.next_block, last):
                self._apply_log(raw.topics, raw.data)
            self.next_block = last + 1

    def _apply_log(self, topics: tuple[bytes, ...], data: bytes) -> None:
        try:
            event = hub.decode_event({"topics": topics, "data": data})
        except hub.UnknownEvent:
            return
        if isinstance(event, hub.PayoutDeferred | hub.PayoutClaimed):
            return
        try:
            self.onchain[event.channel_id] = hub.apply_event(self.onchain.get(event.channel_id), event)
        except hub.UnknownEvent:
            return
        if capacity_of(self.onchain[event.channel_id]) is None:
            token = self.token_of(event.channel_id)
            if token is not None:
                self.graph(token).remove_channel(event.channel_id)


class Gossip:
    """The node's routing view. `run` follows each chain's contract logs and re-announces periodically."""

    def __init__(self, node: Node) -> None:
        self.node = node
        routing = node.config.routing
        self.fees = FeePolicy(routing.fee_base, routing.fee_ppm)
        self.interval = routing.gossip_interval
        self.graphs: dict[Asset, ChannelGraph] = {}
        self.views = {room.ns: ChainView(room, self.graphs) for room in node.rooms}
        self.primary = self.views[node.ns]
        self.primary.graph()  # the primary chain's native coin: the single-chain graph
        self._serial = int(time.time())  # grows across restarts: a restarted node's serials still win
        self.relayed = 0
        self.refused = 0
        # channel -> (what its announcement states, the signed message): re-signed only when that changes
        self._own: dict[bytes, tuple[tuple[object, ...], ChannelGossip]] = {}
        self._told: dict[bytes, object] = {}  # peer -> the session that has every announcement of ours
        # (channel, announcer) -> (trio time to give up, peer, message): announcements ahead of our logs
        self._early: dict[tuple[bytes, bytes], tuple[float, bytes, ChannelGossip]] = {}

    @property
    def graph(self) -> ChannelGraph:
        """The primary chain's native-coin graph (single-chain callers)."""
        return self.primary.graph()

    @property
    def onchain(self) -> dict[bytes, hub.OnChainChannel]:
        return self.primary.onchain

    def lookup(self, channel_id: bytes) -> OnChainChannel | None:
        return self.primary.lookup(channel_id)

    def graph_of(self, asset: Asset) -> ChannelGraph | None:
        view = self.views.get(Namespace(asset.chain_id, asset.contract))
        return None if view is None else view.graph(asset.token)

    # --- announcing -------------------------------------------------------------------------------------

    def _open_channels(self) -> Iterator[tuple[bytes, ChannelEntry, int]]:
        """Our open channels on every chain, each with the capacity its announcement states."""
        for cid, entry in self.node.channels.channels.items():
            capacity = capacity_of(entry.onchain)
            if entry.state.status is ChannelStatus.OPEN and capacity is not None:
                yield cid, entry, capacity

    def _sign_own(self, cid: bytes, entry: ChannelEntry, capacity: int) -> ChannelAnnouncement:
        node = self.node
        return sign_announcement(node.channels.signer, entry.ns.chain_id, entry.ns.contract, cid,
                                 entry.state.partner.address, capacity, self.fees, self._serial,
                                 entry.state.reveal_timeout)

    def own_announcements(self) -> list[ChannelAnnouncement]:
        if self.node.config.routing.forward != "yes":
            return []
        self._serial += 1
        return [self._sign_own(cid, entry, capacity) for cid, entry, capacity in self._open_channels()]

    def announce(self, *, again: bool = False) -> None:
        """Our announcements to the peers that want gossip: all of them to a peer (session) not told yet,
        else only those changed since (`again`: all of them signed anew, to everyone)."""
        if again:
            self._own = {}
        changed: list[ChannelGossip | ConversionGossip] = list(self._refresh_own())
        everything: list[ChannelGossip | ConversionGossip] = [message for _, message in self._own.values()]
        if again or any(self._told.get(p) is not s for p, s in self.node.peers.manager.sessions.items()):
            everything += self.node.conversions.messages()
        told: dict[bytes, object] = {}
        for peer_id, session in list(self.node.peers.manager.sessions.items()):
            if not wants_gossip(session.remote_init.features):
                continue
            fresh = again or self._told.get(peer_id) is not session
            for message in everything if fresh else changed:
                self.node.peers.send(peer_id, message)
            told[peer_id] = session
        self._told = told

    def _refresh_own(self) -> list[ChannelGossip]:
        """Sign an announcement for each open channel whose announced terms changed; the new ones."""
        if self.node.config.routing.forward != "yes":
            return []
        current: dict[bytes, tuple[tuple[object, ...], ChannelGossip]] = {}
        changed = []
        for cid, entry, capacity in self._open_channels():
            terms = (entry.state.partner.address, capacity, self.fees, entry.state.reveal_timeout)
            known = self._own.get(cid)
            if known is None or known[0] != terms:
                self._serial += 1
                known = (terms, to_wire(self._sign_own(cid, entry, capacity)))
                changed.append(known[1])
            current[cid] = known
        self._own = current
        return changed

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        for view in self.views.values():
            try:
                await view.room.chain.run(view.read_logs)
            except ChanneldError as exc:
                if view is self.primary:
                    raise
                log.warning("gossip: reading the logs of chain %s failed: %s", view.room.name, exc)
        async with trio.open_nursery() as nursery:
            for view in self.views.values():  # a chain whose RPC hangs holds up only its own logs
                nursery.start_soon(self._follow, view)
            task_status.started()
            await self._announce_loop()

    async def _follow(self, view: ChainView) -> None:
        while True:
            await trio.sleep(view.room.watcher.poll_interval)
            try:
                await view.room.chain.run(view.read_logs)
            except ChanneldError as exc:
                log.warning("gossip: reading the logs of chain %s failed: %s", view.room.name, exc)

    async def _announce_loop(self) -> None:
        last_announce = trio.current_time()
        while True:
            self._retry_early()
            # a new peer, or a channel of ours newly open, is told at once, not a whole interval later
            again = trio.current_time() - last_announce >= self.interval
            self.announce(again=again)
            if again:
                last_announce = trio.current_time()
                self.node.conversions.graph.forget_expired(int(time.time()))
            await trio.sleep(self.node.config.chain.poll_interval)

    # --- receiving --------------------------------------------------------------------------------------

    def on_message(self, peer_id: bytes, message: ChannelGossip | ConversionGossip) -> None:
        if isinstance(message, ConversionGossip):
            if self.node.conversions.on_message(peer_id, message):
                self._flood(peer_id, message)
            return
        view = self.views.get(Namespace(message.chain_id, message.contract)) if message.chain_id else None
        if view is None:
            self.refused += 1  # a chain we do not serve: we could not check the channel, nor route over it
            log.debug("gossip from %s refused: chain %d is not ours", peer_id.hex()[:16], message.chain_id)
            return
        token = view.token_of(message.channel_id)
        if token is None:
            self._hold_early(peer_id, message)
            return
        try:
            added = view.graph(token).add_announcement(from_wire(message))
        except BadAnnouncement as exc:
            self.refused += 1
            log.debug("gossip from %s refused: %s", peer_id.hex()[:16], exc)
            return
        if added:
            self._flood(peer_id, message)

    def _flood(self, peer_id: bytes, message: ChannelGossip | ConversionGossip) -> None:
        """A new announcement on to every other peer that wants gossip."""
        self.relayed += 1
        for other, session in list(self.node.peers.manager.sessions.items()):
            if other != peer_id and wants_gossip(session.remote_init.features):
                self.node.peers.send(other, message)

    def _hold_early(self, peer_id: bytes, message: ChannelGossip) -> None:
        """Keep an announcement of a channel whose logs we have not read yet (the announcer saw it open
        first) until we have, or `EARLY_WAIT` passed (then it is refused: no such channel)."""
        key = (message.channel_id, message.announcer)
        if key not in self._early and len(self._early) >= MAX_EARLY:
            del self._early[next(iter(self._early))]  # the oldest goes: a flood of bogus ids stays bounded
            self.refused += 1
        self._early[key] = (trio.current_time() + EARLY_WAIT, peer_id, message)

    def _retry_early(self) -> None:
        """After reading logs: process the held announcements whose channel is known now."""
        now = trio.current_time()
        for key, (deadline, peer_id, message) in list(self._early.items()):
            view = self.views[Namespace(message.chain_id, message.contract)]
            if key[0] in view.onchain:
                del self._early[key]
                self.on_message(peer_id, message)
            elif deadline <= now:
                del self._early[key]
                self.refused += 1
                log.debug("gossip from %s refused: channel 0x%s is not on chain", peer_id.hex()[:16],
                          key[0].hex())

    # --- routing ----------------------------------------------------------------------------------------

    def own_edges(self, asset: Asset) -> dict[bytes, bytes]:
        """Refresh our channels in `asset` in its graph (exact balances); partner address -> node id."""
        ns = Namespace(asset.chain_id, asset.contract)
        graph = self.views[ns].graph(asset.token)
        partners = {}
        for _, entry in self.node.channels.on_chain(ns):
            if addr_bytes(entry.onchain.state.token) == asset.token:
                graph.add_own_channel(entry.state)
                partners[entry.state.partner.address] = entry.peer_id
        return partners

    def online(self, partners: dict[bytes, bytes]) -> Callable[[bytes], bool]:
        """Whether a node is usable as a hop: our partners only while their session is up."""
        def online(address: bytes) -> bool:
            peer = partners.get(address)
            return peer is None or self.node.peers.is_connected(peer)

        return online

    def plan(self, target: bytes, amount: int, fee_cap: int, asset: Asset | None = None) -> tuple[Route, ...]:
        """Routes to `target` in `asset` (default: the primary chain's coin), our own edges refreshed
        first; `RoutingError` saying why there are none."""
        asset = asset or self.primary.asset()
        if Namespace(asset.chain_id, asset.contract) not in self.views:
            raise NoRoute(f"{asset} is on a chain this node does not serve")
        partners = self.own_edges(asset)
        graph = self.views[Namespace(asset.chain_id, asset.contract)].graph(asset.token)
        return plan_routes(graph, self.node.channels.signer.address, target, amount, fee_cap,
                           online=self.online(partners))
