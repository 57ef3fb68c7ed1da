"""Gossip and the channel graph: our channels announced to every peer, theirs verified against the chain.

The graph holds our own channels (exact balances, refreshed before each search) and every announcement a
peer sent that checks out: signed by its announcer, for our chain and contract, and naming a channel the
chain holds with exactly those participants and capacity. The chain's view of all channels (not only
ours) comes from the contract's logs, read here; an announcement that arrives before its channel's logs
waits for them a few seconds (`EARLY_WAIT`), and is refused if they never come. A new announcement is
relayed to every other peer that wants gossip (flooding; a `serial` no higher than the one held stops
the flood). Our own announcements are signed once per change (a channel newly open, its capacity, our
fees) and sent incrementally: all of them to a peer newly connected, then only what changed; every
`routing.gossip_interval` all are signed anew (a higher serial, so a flood a peer further away missed,
having refused an announcement that came before its logs, runs again) and sent to every peer that
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
from typing import TYPE_CHECKING

import trio

from channeld.chain import contract as hub
from channeld.errors import ChanneldError
from channeld.protocol import ChannelStatus, FeePolicy, Route
from channeld.routing import (
    BadAnnouncement,
    ChannelAnnouncement,
    ChannelGraph,
    OnChainChannel,
    plan_routes,
    sign_announcement,
)
from channeld.wire import ChannelGossip

if TYPE_CHECKING:
    from channeld.node._node import Node

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


class Gossip:
    """The node's routing view. `run` follows the contract's logs and re-announces periodically."""

    def __init__(self, node: Node, deploy_block: int) -> None:
        self.node = node
        routing = node.config.routing
        self.fees = FeePolicy(routing.fee_base, routing.fee_ppm)
        self.interval = routing.gossip_interval
        self.graph = ChannelGraph(node.chain_id, node.ns.contract, self.lookup)
        self.onchain: dict[bytes, hub.OnChainChannel] = {}
        self._next_block = deploy_block
        self._serial = int(time.time())  # grows across restarts: a restarted node's serials still win
        self.relayed = 0
        self.refused = 0
        # channel -> (what its announcement states, the signed message): re-signed only when that changes
        self._own: dict[bytes, tuple[tuple[object, ...], ChannelGossip]] = {}
        self._told: dict[bytes, object] = {}  # peer -> the session that has every announcement of ours
        # (channel, announcer) -> (trio time to give up, peer, message): announcements ahead of our logs
        self._early: dict[tuple[bytes, bytes], tuple[float, bytes, ChannelGossip]] = {}

    # --- the chain's view of every channel --------------------------------------------------------------

    def lookup(self, channel_id: bytes) -> OnChainChannel | None:
        channel = self.onchain.get(channel_id)
        capacity = None if channel is None else capacity_of(channel)
        if channel is None or capacity is None:
            return None
        p1, p2 = sorted((bytes.fromhex(channel.state.participant1[2:]),
                         bytes.fromhex(channel.state.participant2[2:])))
        return OnChainChannel(p1, p2, capacity)

    def _read_logs(self) -> None:
        """Blocking: apply the contract's logs up to the head to the view of every channel."""
        backend = self.node.chain.backend
        head = backend.head()
        while self._next_block <= head:
            last = min(head, self._next_block + LOG_WINDOW - 1)
            for raw in backend.get_logs(self.node.contract, self._next_block, last):
                self._apply_log(raw.topics, raw.data)
            self._next_block = last + 1

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
            self.graph.remove_channel(event.channel_id)

    # --- announcing -------------------------------------------------------------------------------------

    def own_announcements(self) -> list[ChannelAnnouncement]:
        node = self.node
        if node.config.routing.forward != "yes":
            return []
        self._serial += 1
        found = []
        for cid, entry in node.channels.on_chain(node.ns):  # multi-hop runs on the primary chain
            capacity = capacity_of(entry.onchain)
            if entry.state.status is not ChannelStatus.OPEN or capacity is None:
                continue
            found.append(sign_announcement(node.channels.signer, node.chain_id, node.ns.contract, cid,
                                           entry.state.partner.address, capacity, self.fees, self._serial,
                                           entry.state.reveal_timeout))
        return found

    def announce(self, *, again: bool = False) -> None:
        """Our announcements to the peers that want gossip: all of them to a peer (session) not told yet,
        else only those changed since (`again`: all of them signed anew, to everyone)."""
        if again:
            self._own = {}
        changed = self._refresh_own()
        everything = [message for _, message in self._own.values()]
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
        node = self.node
        if node.config.routing.forward != "yes":
            return []
        current: dict[bytes, tuple[tuple[object, ...], ChannelGossip]] = {}
        changed = []
        for cid, entry in node.channels.channels.items():
            capacity = capacity_of(entry.onchain)
            if entry.state.status is not ChannelStatus.OPEN or capacity is None:
                continue
            terms = (entry.state.partner.address, capacity, self.fees, entry.state.reveal_timeout)
            known = self._own.get(cid)
            if known is None or known[0] != terms:
                self._serial += 1
                signed = sign_announcement(node.channels.signer, node.chain_id, node.ns.contract, cid,
                                           entry.state.partner.address, capacity, self.fees, self._serial,
                                           entry.state.reveal_timeout)
                known = (terms, to_wire(signed))
                changed.append(known[1])
            current[cid] = known
        self._own = current
        return changed

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.node.chain.run(self._read_logs)
        task_status.started()
        last_announce = trio.current_time()
        while True:
            try:
                await self.node.chain.run(self._read_logs)
            except ChanneldError as exc:
                log.warning("gossip: reading the contract's logs failed: %s", exc)
            self._retry_early()
            # a new peer, or a channel of ours newly open, is told at once, not a whole interval later
            again = trio.current_time() - last_announce >= self.interval
            self.announce(again=again)
            if again:
                last_announce = trio.current_time()
            await trio.sleep(self.node.config.chain.poll_interval)

    # --- receiving --------------------------------------------------------------------------------------

    def on_message(self, peer_id: bytes, message: ChannelGossip) -> None:
        if message.channel_id not in self.onchain:
            self._hold_early(peer_id, message)
            return
        try:
            announcement = from_wire(message)
            added = self.graph.add_announcement(announcement)
        except BadAnnouncement as exc:
            self.refused += 1
            log.debug("gossip from %s refused: %s", peer_id.hex()[:16], exc)
            return
        if not added:
            return
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
            if key[0] in self.onchain:
                del self._early[key]
                self.on_message(peer_id, message)
            elif deadline <= now:
                del self._early[key]
                self.refused += 1
                log.debug("gossip from %s refused: channel 0x%s is not on chain", peer_id.hex()[:16],
                          key[0].hex())

    # --- routing ----------------------------------------------------------------------------------------

    def plan(self, target: bytes, amount: int, fee_cap: int) -> tuple[Route, ...]:
        """Routes to `target` (`RoutingError` saying why there are none); our own edges refreshed first."""
        node = self.node
        own = [entry for _, entry in node.channels.on_chain(node.ns)]  # multi-hop runs on the primary chain
        for entry in own:
            self.graph.add_own_channel(entry.state)
        partners = {e.state.partner.address: e.peer_id for e in own}

        def online(address: bytes) -> bool:
            peer = partners.get(address)
            return peer is None or node.peers.is_connected(peer)

        return plan_routes(self.graph, node.channels.signer.address, target, amount, fee_cap, online=online)
