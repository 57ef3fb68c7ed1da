"""Routes across chains and assets: channel graphs per asset, joined inside nodes by conversions.

A route from a payer holding asset X to a recipient that must receive `amount` of asset Y is a chain of
segments: hops in X up to a converter, the conversion inside that node, hops in Y from it (more
conversions in between when `max_conversions` allows). Amounts are computed backwards from the recipient:
each segment with the mediators' channel fees (the single-asset rule, `cheapest_path`), each conversion
with its terms (`ConversionTerms.amount_in`: what the converter must be paid in its source asset). A
converter charges its conversion fee instead of its channel fee on the hop it forwards.

What the payer spends (in X) decides: routes cheapest in X first, each within the payer's `max_spend`;
none within it is `SpendCapExceeded`, which names the rates it met. Lock expiries follow
`channeld.protocol._crosschain.route_expiries` with each chain's timing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from channeld.protocol import DEFAULT_REVEAL_TIMEOUT
from channeld.protocol._crosschain import (
    Asset,
    ChainTiming,
    ExpiryTooFar,
    Leg,
    conversion_route,
    route_expiries,
)
from channeld.routing._announce import BadAnnouncement
from channeld.routing._conversion import ConversionAnnouncement, verify_conversion
from channeld.routing._graph import ChannelGraph, Edge
from channeld.routing._paths import (
    DEFAULT_WEIGHTS,
    Constraints,
    Online,
    RiskWeights,
    always_online,
    cheapest_path,
)
from channeld.routing._planner import NoCapacity, NoRoute, RouteOffline, RoutingError

DEFAULT_MAX_CONVERSIONS = 2


class SpendCapExceeded(RoutingError):
    """Routes exist, but at the current rates and fees each costs the payer more than its maximum."""


class RouteTooSlow(RoutingError):
    """Routes exist, but the chains they cross need locks that would live longer than a lock may."""


class UnknownChain(RoutingError):
    """A route crosses a chain whose timing we were not told (block time, confirmations...)."""


class CrossChainGraph:
    """One `ChannelGraph` per asset we route in, and the verified conversions between them.

    `graphs` is read live, not copied: a node adds an asset's graph when it first meets the asset."""

    def __init__(self, graphs: Mapping[Asset, ChannelGraph]) -> None:
        for asset, graph in graphs.items():
            if (graph.chain_id, graph.contract) != (asset.chain_id, asset.contract):
                raise RoutingError(f"the graph for {asset} is for chain {graph.chain_id}, contract "
                                   f"0x{graph.contract.hex()}")
        self._graphs = graphs
        self._conversions: dict[tuple[bytes, Asset, Asset], ConversionAnnouncement] = {}

    def channels(self, asset: Asset) -> ChannelGraph | None:
        return self._graphs.get(asset)

    def add_conversion(self, a: ConversionAnnouncement, now: int) -> bool:
        """Verify `a` (`BadAnnouncement` if it fails) and keep it; False if we hold a newer one."""
        known = self._conversions.get(a.direction)
        if known is not None and known.serial >= a.serial:
            return False
        verify_conversion(a, now)
        for asset in (a.source, a.target):
            graph = self._graphs.get(asset)
            if graph is None:
                raise BadAnnouncement(f"conversion involves {asset}, an asset we do not route")
            if not graph.knows(a.converter):
                raise BadAnnouncement(f"converter 0x{a.converter.hex()} has no channel in {asset}")
        self._conversions[a.direction] = a
        return True

    def conversions_into(self, asset: Asset, now: int) -> list[ConversionAnnouncement]:
        """The live conversions whose target is `asset` (a rate past its expiry is never offered)."""
        return [a for a in self._conversions.values() if a.target == asset and a.expires_at > now]

    def forget_expired(self, now: int) -> None:
        for direction in [d for d, a in self._conversions.items() if a.expires_at <= now]:
            del self._conversions[direction]


@dataclass(frozen=True, slots=True)
class Segment:
    """Hops in one asset: `edges` from the segment's first node to its last; `amount` reaches the last."""

    asset: Asset
    edges: tuple[Edge, ...]
    amount: int


@dataclass(frozen=True, slots=True)
class PlannedLock:
    """One lock of a cross-chain route, as each hop will create it (expiration in its chain's time)."""

    asset: Asset
    channel_id: bytes
    sender: bytes
    receiver: bytes
    amount: int
    expiration: int


@dataclass(frozen=True, slots=True)
class CrossChainRoute:
    """A route from the payer (asset of `locks[0]`) to the recipient (asset of `locks[-1]`).

    `metadata` is the route the payer's `LockedTransfer` carries (converters followed by the marker of
    the asset they convert into); `spend` leaves the payer, `receive` reaches the recipient.
    """

    locks: tuple[PlannedLock, ...]
    conversions: tuple[ConversionAnnouncement, ...]
    metadata: tuple[bytes, ...]
    cost: int

    @property
    def spend(self) -> int:
        return self.locks[0].amount

    @property
    def receive(self) -> int:
        return self.locks[-1].amount


@dataclass(frozen=True, slots=True)
class CrossChainPayment:
    """What the payer asks for: `amount` of `receive_asset` to `recipient`, paying at most `max_spend`
    of `pay_asset`."""

    payer: bytes
    pay_asset: Asset
    recipient: bytes
    receive_asset: Asset
    amount: int
    max_spend: int

    def __post_init__(self) -> None:
        amounts = type(self.amount) is int and self.amount > 0 and type(self.max_spend) is int
        if not amounts or self.max_spend <= 0:
            raise RoutingError("the amount to receive and the most to spend must be positive integers")
        if self.payer == self.recipient and self.pay_asset == self.receive_asset:
            raise NoRoute("the payer is the recipient, in the same asset")


@dataclass(frozen=True, slots=True)
class Search:
    """How to search: who is online, whether capacity hints count, the risk weights, conversions."""

    online: Online = always_online
    check_capacity: bool = True
    weights: RiskWeights = DEFAULT_WEIGHTS
    max_conversions: int = DEFAULT_MAX_CONVERSIONS


DEFAULT_SEARCH = Search()
Candidate = tuple[tuple[Segment, ...], tuple[ConversionAnnouncement, ...]]


def _candidates(graph: CrossChainGraph, pay: CrossChainPayment, search: Search, now: int, asset: Asset,
                entry: bytes, need: int, suffix: Candidate, used: frozenset[bytes]) -> Iterator[Candidate]:
    """Every way to deliver `need` of `asset` to `entry` (then on along `suffix`), backwards."""
    channels = graph.channels(asset)
    if channels is None:
        return
    segments, conversions = suffix
    if asset == pay.pay_asset:
        rules = Constraints(search.online, search.check_capacity, banned_nodes=used - {entry})
        head = cheapest_path(channels, pay.payer, entry, need, search.weights, rules)
        if head is not None:
            yield (Segment(asset, head.edges, need), *segments), conversions
    if len(conversions) >= search.max_conversions:
        return
    for offer in graph.conversions_into(asset, now):
        converter = offer.converter
        if converter in used or converter in (entry, pay.payer) or not search.online(converter):
            continue
        rules = Constraints(search.online, search.check_capacity, banned_nodes=(used - {entry}) | {pay.payer})
        tail = cheapest_path(channels, converter, entry, need, search.weights, rules)
        if tail is None:
            continue
        nodes = frozenset(e.source for e in tail.edges) | {entry}
        yield from _candidates(graph, pay, search, now, offer.source, converter,
                               offer.terms.amount_in(tail.amount_sent),
                               ((Segment(asset, tail.edges, need), *segments), (offer, *conversions)),
                               used | nodes)


def _segment_locks(segment: Segment) -> list[tuple[Edge, int]]:
    """Each edge with the amount locked on it: going back, a mediator adds its fee on what it forwards."""
    locks: list[tuple[Edge, int]] = []
    need = segment.amount
    for i in range(len(segment.edges) - 1, -1, -1):
        locks.append((segment.edges[i], need))
        if i > 0:
            need += segment.edges[i].fees.fee(need)
    return locks[::-1]


def _route_of(graph: CrossChainGraph, candidate: Candidate, search: Search,
              timings: Mapping[int, ChainTiming], now: int, slack: int) -> CrossChainRoute:
    segments, conversions = candidate
    hops: list[tuple[Asset, Edge, int, int]] = []  # asset, edge, amount, announced margin of the sender
    metadata: list[bytes] = []
    cost = 0
    for index, segment in enumerate(segments):
        margin = conversions[index - 1].margin if index > 0 else 0
        for j, (edge, amount) in enumerate(_segment_locks(segment)):
            hops.append((segment.asset, edge, amount, margin if j == 0 else 0))
            cost += search.weights.risk(edge, amount)
        targets = [e.target for e in segment.edges]
        if index + 1 < len(segments):
            targets = list(conversion_route(targets[:-1], targets[-1], segments[index + 1].asset, ()))
        metadata += targets
    legs = [Leg(_timing(timings, asset.chain_id), _reveal_timeout(graph, asset, edge), margin)
            for asset, edge, _, margin in hops]
    expiries = route_expiries(legs, now, slack)
    locks = tuple(PlannedLock(asset, edge.channel_id, edge.source, edge.target, amount, expiry)
                  for (asset, edge, amount, _), expiry in zip(hops, expiries, strict=True))
    return CrossChainRoute(locks, conversions, tuple(metadata), cost)


def _timing(timings: Mapping[int, ChainTiming], chain_id: int) -> ChainTiming:
    timing = timings.get(chain_id)
    if timing is None:
        raise UnknownChain(f"no timing known for chain {chain_id}: cannot space lock expiries on it")
    return timing


def _reveal_timeout(graph: CrossChainGraph, asset: Asset, edge: Edge) -> int:
    """The channel's reveal timeout as far as we know it: the longest either side announced."""
    channels = graph.channels(asset)
    assert channels is not None
    back = channels.edge(edge.channel_id, edge.target)
    return max(edge.reveal_timeout, DEFAULT_REVEAL_TIMEOUT if back is None else back.reveal_timeout)


def plan_crosschain(graph: CrossChainGraph, pay: CrossChainPayment, timings: Mapping[int, ChainTiming],
                    now: int, search: Search = DEFAULT_SEARCH, slack: int = DEFAULT_REVEAL_TIMEOUT,
                    k: int = 3) -> tuple[CrossChainRoute, ...]:
    """Up to `k` routes for `pay`, least spend first, each within `pay.max_spend`; or why there is none.

    Nothing is locked here: a rate that moved so far that the payer's cap is passed fails now, with
    `SpendCapExceeded` naming the rates of the cheapest route found.
    """
    found = list(_candidates(graph, pay, search, now, pay.receive_asset, pay.recipient, pay.amount,
                             ((), ()), frozenset({pay.recipient})))
    if not found:
        raise _why_none(graph, pay, now, search)
    routes, too_slow = [], []
    for candidate in found:
        try:
            routes.append(_route_of(graph, candidate, search, timings, now, slack))
        except ExpiryTooFar as exc:
            too_slow.append(str(exc))
    if not routes:
        raise RouteTooSlow(f"every route found is too slow: {too_slow[0]}")
    routes.sort(key=lambda r: (r.spend, r.cost))
    affordable = tuple(r for r in routes if r.spend <= pay.max_spend)[:k]
    if affordable:
        return affordable
    cheapest = routes[0]
    rates = ", ".join(f"0x{c.converter.hex()} converts {c.source} into {c.target} at {c.terms}"
                      for c in cheapest.conversions) or "no conversion"
    raise SpendCapExceeded(f"receiving {pay.amount} costs at least {cheapest.spend}, over the cap "
                           f"{pay.max_spend} ({rates})")


def _why_none(graph: CrossChainGraph, pay: CrossChainPayment, now: int, search: Search) -> RoutingError:
    def exists(online: Online, check_capacity: bool) -> bool:
        relaxed = Search(online, check_capacity, search.weights, search.max_conversions)
        start = ((), ())
        return next(_candidates(graph, pay, relaxed, now, pay.receive_asset, pay.recipient, pay.amount, start,
                                frozenset({pay.recipient})), None) is not None

    where = f"from {pay.pay_asset} to 0x{pay.recipient.hex()} in {pay.receive_asset}"
    if not exists(always_online, False):
        return NoRoute(f"no path {where} (conversions considered: {search.max_conversions})")
    if not exists(search.online, False):
        return RouteOffline(f"every path {where} goes through an offline peer")
    if not exists(always_online, True):
        return NoCapacity(f"no path {where} has the capacity for {pay.amount} plus fees")
    return RouteOffline(f"every path {where} with the capacity goes through an offline peer")
