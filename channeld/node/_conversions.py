"""Payments across chains in the node: what we convert, what others convert, and paying across.

Converter: each `[[conversions]]` entry (source asset on one chain, target asset on another, rate and
fee) is signed as a `ConversionAnnouncement` and sent to the peers that want gossip, like our channel
announcements: re-signed with a higher serial when its terms change, and before half its lifetime is
over (a rate nobody refreshes dies at its `expires_at`). The margin it announces is the crossing margin
of its two chains' timings (`crossing_margin`): a payer spaces the two locks at least that far apart.

Everyone: a conversion announcement from a peer is verified (signature, live rate, the converter known
in both assets' graphs) and kept in the `CrossChainGraph` over the gossip's per-asset graphs, then
flooded on; a serial no higher than the one held stops the flood.

A lock whose route names, right after us, the marker of an asset we convert into (from the asset the lock
came in) goes to the converter machine (`start_conversion`); a marker of an asset we serve but do not
convert into is refused: nothing is forwarded and the lock expires back to its payer.

Payer: `plan` finds routes in the `CrossChainGraph` from our asset to the recipient's, each within the
payer's `max_spend`, lock expiries spaced by `route_expiries` with every chain's timing; `SpendCapExceeded`
or no route fails the payment before anything is locked.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from channeld.limits import LimitContext
from channeld.node._records import addr_bytes
from channeld.node._transfers import TransferFailed
from channeld.protocol import (
    DEFAULT_REVEAL_TIMEOUT,
    ChannelState,
    EventLockReceived,
    EventTransferFailed,
    EventTransferSucceeded,
    Route,
    start_payment,
)
from channeld.protocol._crosschain import (
    Asset,
    ChainTiming,
    ConversionTerms,
    Converter,
    crossing_margin,
)
from channeld.protocol._transfer import BadRoute, decode_route
from channeld.routing import (
    MAX_CONVERSION_LIFETIME,
    BadAnnouncement,
    ConversionAnnouncement,
    CrossChainGraph,
    CrossChainPayment,
    CrossChainRoute,
    RoutingError,
    Search,
    conversion_from_wire,
    conversion_to_wire,
    plan_crosschain,
    sign_conversion,
)
from channeld.store import Namespace
from channeld.wire import ConversionGossip

if TYPE_CHECKING:
    from channeld.node._channels import ChannelEntry
    from channeld.node._node import Node
    from channeld.node._rooms import ChainRoom

log = logging.getLogger("channeld.node")
# our channels in one asset (chain, token) by partner address
ChannelsIn = Callable[[Namespace, bytes], Mapping[bytes, ChannelState]]
RATE_LIFETIME = MAX_CONVERSION_LIFETIME // 2  # how long a rate we sign stays usable
REFRESH_AFTER = RATE_LIFETIME // 2  # re-signed once this much of it has passed


@dataclass(frozen=True, slots=True)
class Offer:
    """One conversion of ours: lock in `source`, forward in `target` at `terms`."""

    source: Asset
    target: Asset
    terms: ConversionTerms


def timing_of(room: ChainRoom) -> ChainTiming:
    """The chain's timing from its config entry (block time, confirmations, registration, skew)."""
    return room.config.timing(room.chain_id)


def asset_of(entry: ChannelEntry) -> Asset:
    return Asset(entry.ns.chain_id, entry.ns.contract, addr_bytes(entry.onchain.state.token))


class ConversionService:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.graph = CrossChainGraph(node.gossip.graphs)
        self.timings = {room.chain_id: timing_of(room) for room in node.rooms}
        self.offers = tuple(_offers(node))
        self._serial = int(time.time())  # grows across restarts: a restarted node's serials still win
        self._own: dict[Offer, ConversionAnnouncement] = {}
        self.refused = 0
        self._markers: tuple[int, frozenset[bytes]] = (-1, frozenset())  # (graphs counted, their markers)

    # --- our announcements -----------------------------------------------------------------------------

    def own_announcements(self, now: int) -> list[ConversionAnnouncement]:
        """Our signed conversions, each re-signed (higher serial) once half its lifetime has passed."""
        signer = self.node.channels.signer
        for offer in self.offers:
            known = self._own.get(offer)
            if known is None or known.expires_at - now < RATE_LIFETIME - REFRESH_AFTER:
                self._serial += 1
                margin = crossing_margin(self.timings[offer.target.chain_id],
                                         self.timings[offer.source.chain_id])
                self._own[offer] = sign_conversion(signer, offer.source, offer.target, offer.terms, margin,
                                                   self._serial, now + RATE_LIFETIME)
        return list(self._own.values())

    def messages(self) -> list[ConversionGossip]:
        return [conversion_to_wire(a) for a in self.own_announcements(int(time.time()))]

    # --- others' announcements -------------------------------------------------------------------------

    def on_message(self, peer_id: bytes, message: ConversionGossip) -> bool:
        """Verify and keep a peer's conversion; True when it is new (to be flooded on)."""
        try:
            # only assets with a graph already (a channel in them was announced): a peer naming made-up
            # tokens cannot make us keep a graph per token
            added = self.graph.add_conversion(conversion_from_wire(message), int(time.time()))
        except BadAnnouncement as exc:
            self.refused += 1
            log.debug("conversion from %s refused: %s", peer_id.hex()[:16], exc)
            return False
        return added

    # --- converting ------------------------------------------------------------------------------------

    def converter_for(self, event: EventLockReceived, payer: ChannelEntry,
                      channels_in: ChannelsIn) -> Converter | str | None:
        """What to do with a lock: a `Converter` when its route asks us to convert here, a refusal
        (text) when it names an asset we do not convert into, None when it is an ordinary mediation."""
        try:
            route = decode_route(event.metadata)
        except BadRoute:
            return None  # the mediator machine refuses it with the reason
        if len(route) < 2:
            return None
        source = asset_of(payer)
        for offer in self.offers:
            if offer.source == source and route[1] == offer.target.marker:
                target_ns = Namespace(offer.target.chain_id, offer.target.contract)
                return Converter(offer.target, offer.terms, self.timings[source.chain_id],
                                 self.timings[offer.target.chain_id],
                                 channels_in(target_ns, offer.target.token))
        if route[1] in self._served_markers():
            return f"we do not convert {source} into the asset the route asks for"
        return None

    def _served_markers(self) -> frozenset[bytes]:
        """The markers of every asset we know (a keccak each: kept until a new asset's graph appears,
        since every mediated lock asks)."""
        graphs = self.node.gossip.graphs
        if self._markers[0] != len(graphs):
            assets = {*graphs, *(Asset(room.chain_id, room.ns.contract) for room in self.node.rooms),
                      *(offer.target for offer in self.offers)}
            self._markers = (len(graphs), frozenset(asset.marker for asset in assets))
        return self._markers[1]

    # --- paying across ---------------------------------------------------------------------------------

    def plan(self, recipient: bytes, receive: Asset, amount: int, pay: Asset, max_spend: int,
             now: int) -> CrossChainRoute:
        """The cheapest route paying `amount` of `receive` to `recipient` from our `pay` asset within
        `max_spend` (`RoutingError`, e.g. `SpendCapExceeded`, when there is none)."""
        gossip = self.node.gossip
        partners: dict[bytes, bytes] = {}
        for asset in list(gossip.graphs):
            partners |= gossip.own_edges(asset)
        payment = CrossChainPayment(self.node.channels.signer.address, pay, recipient, receive, amount,
                                    max_spend)
        search = Search(online=gossip.online(partners))
        routes = plan_crosschain(self.graph, payment, self.timings, now, search, DEFAULT_REVEAL_TIMEOUT, k=1)
        return routes[0]


def initiator_route(route: CrossChainRoute, first: ChannelState, now: int) -> Route:
    """The initiator machine's route for a planned cross-chain route: the first lock exactly as planned
    (its amount is the spend, with no fee on top; its expiry the planned one)."""
    lock_time = route.locks[0].expiration - now - first.reveal_timeout
    return Route(route.locks[0].channel_id, route.metadata, 0, max(lock_time, 1))


def _offers(node: Node) -> list[Offer]:
    """The configured conversions between chains this node reached."""
    found = []
    for entry in node.config.conversions:
        source_room, target_room = node.rooms[entry.source.chain], node.rooms[entry.target.chain]
        found.append(Offer(entry.source.asset(source_room.chain_id, source_room.ns.contract),
                           entry.target.asset(target_room.chain_id, target_room.ns.contract), entry.terms()))
    return found



async def pay_across(node: Node, recipient: bytes, receive: Asset, amount: int, pay: Asset, max_spend: int,
                     secrethash: bytes, timeout: float, limits: LimitContext | None) -> dict[str, object]:
    """Pay `amount` of `receive` to `recipient` (an address) from our `pay` asset, spending at most
    `max_spend`, under `secrethash`. A missing route or a cap the rates pass is `OperationRefused`
    before anything is locked."""
    from channeld.node._ops import OperationRefused

    transfers = node.transfers
    try:
        transfers.check_new(secrethash)
        room = node.room_of(Namespace(pay.chain_id, pay.contract))
        room.check_usable()
        now = transfers.clocks[room.ns].current()
        route = node.conversions.plan(recipient, receive, amount, pay, max_spend, now)
    except (RoutingError, TransferFailed) as exc:
        raise OperationRefused(f"{type(exc).__name__}: {exc}") from None
    first = node.channels.channels[route.locks[0].channel_id].state
    payment_id = secrets.randbits(63)
    state, effects = start_payment(payment_id, node.channels.signer.address, route.spend, secrethash, 0,
                                   (initiator_route(route, first, now),), transfers.states(), now, limits)
    outcome = await transfers.run_payment(state, effects, timeout, limits)
    status = "pending"
    if isinstance(outcome, EventTransferSucceeded | EventTransferFailed):
        status = "accepted" if isinstance(outcome, EventTransferSucceeded) else "refused"
    reasons = outcome.reasons if isinstance(outcome, EventTransferFailed) else ()
    return {"payment_id": payment_id, "amount": str(amount), "spent": str(route.spend), "status": status,
            "routed": True, "chain": room.name, "chain_id": room.chain_id, "to_chain_id": receive.chain_id,
            "converters": ["0x" + c.converter.hex() for c in route.conversions],
            "reason": "; ".join(reasons) or None}
