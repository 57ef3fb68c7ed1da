"""The channel graph a node routes over: directed edges from verified announcements and our own channels.

Each channel gives up to two edges, one per direction; the edge `u -> v` carries `u`'s announced fee policy
(what `u` charges to forward into this channel) and a capacity hint: an upper bound of what can flow from
`u` to `v`. Announced channels start with their whole capacity as the hint (the split is private); our own
channels use the exact balance we hold. Hints shrink when a payment of an amount fails along an edge and
move with the amounts of payments that succeed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from channeld.protocol import DEFAULT_REVEAL_TIMEOUT, ChannelState, ChannelStatus, FeePolicy, Route
from channeld.routing._announce import ChainLookup, ChannelAnnouncement, verify_announcement


@dataclass(frozen=True, slots=True)
class Edge:
    """`source` can forward up to `capacity` to `target` through `channel_id` for `fees`."""

    channel_id: bytes
    source: bytes
    target: bytes
    capacity: int
    fees: FeePolicy
    serial: int = 0
    failures: int = 0
    reveal_timeout: int = DEFAULT_REVEAL_TIMEOUT


class ChannelGraph:
    """Known channels by direction; only verified announcements and our own channels enter it."""

    def __init__(self, chain_id: int, contract: bytes, lookup: ChainLookup) -> None:
        self.chain_id = chain_id
        self.contract = contract
        self._lookup = lookup
        self._edges: dict[tuple[bytes, bytes], Edge] = {}
        # target -> keys of the edges into it, in insertion order (deterministic ties without sorting)
        self._into: dict[bytes, dict[tuple[bytes, bytes], None]] = {}

    # --- learning channels ----------------------------------------------------------------------------

    def add_announcement(self, a: ChannelAnnouncement) -> bool:
        """Verify `a` (`BadAnnouncement` if it fails) and add its edge; False if we hold a newer one."""
        known = self._edges.get((a.channel_id, a.announcer))
        if known is not None and known.serial >= a.serial:
            return False
        verify_announcement(a, self.chain_id, self.contract, self._lookup)
        hint = a.capacity if known is None else min(known.capacity, a.capacity)
        failures = 0 if known is None else known.failures
        self._put(Edge(a.channel_id, a.announcer, a.partner, hint, a.fees, a.serial, failures,
                       a.reveal_timeout))
        return True

    def add_own_channel(self, state: ChannelState) -> None:
        """Our side of one of our channels, with its exact balance (closed: removed)."""
        if state.status is not ChannelStatus.OPEN:
            self.remove_channel(state.channel_id)
            return
        known = self._edges.get((state.channel_id, state.our.address))
        failures = 0 if known is None else known.failures
        self._put(Edge(state.channel_id, state.our.address, state.partner.address, state.our_balance(),
                       FeePolicy(), failures=failures, reveal_timeout=state.reveal_timeout))

    def remove_channel(self, channel_id: bytes) -> None:
        for key in [k for k in self._edges if k[0] == channel_id]:
            edge = self._edges.pop(key)
            self._into[edge.target].pop(key, None)

    def _put(self, edge: Edge) -> None:
        key = (edge.channel_id, edge.source)
        self._edges[key] = edge
        self._into.setdefault(edge.target, {})[key] = None

    # --- reading --------------------------------------------------------------------------------------

    def edges_into(self, node: bytes) -> Iterable[Edge]:
        return [self._edges[key] for key in self._into.get(node, ())]

    def edge(self, channel_id: bytes, source: bytes) -> Edge | None:
        return self._edges.get((channel_id, source))

    def reveal_timeout_of(self, node: bytes) -> int:
        """The longest reveal timeout `node` announced (the default if it announced none)."""
        announced = [e.reveal_timeout for e in self._edges.values() if e.source == node]
        return max(announced, default=DEFAULT_REVEAL_TIMEOUT)

    def knows(self, node: bytes) -> bool:
        return bool(self._into.get(node)) or any(e.source == node for e in self._edges.values())

    def __len__(self) -> int:
        return len(self._edges)

    # --- what payments teach us -------------------------------------------------------------------------

    def route_edges(self, source: bytes, route: Route) -> list[Edge]:
        """The edges a route of ours crosses, as far as the graph knows them."""
        edges, here = [], source
        for hop in route.hops:
            match = next((e for e in self.edges_into(hop) if e.source == here), None)
            if match is None:
                break
            edges.append(match)
            here = hop
        return edges

    def record_success(self, source: bytes, route: Route, amount: int) -> None:
        """The amounts moved: each hop can now forward that much less, and the way back that much more."""
        for edge in self.route_edges(source, route):
            self._put(replace(edge, capacity=max(0, edge.capacity - amount), failures=0))
            back = self._edges.get((edge.channel_id, edge.target))
            if back is not None:
                self._put(replace(back, capacity=back.capacity + amount))

    def record_failure(self, source: bytes, route: Route) -> None:
        """A payment failed somewhere past our first hop on `route` (the failing hop is not reported): each
        of those edges counts one more failure, which path finding weighs as risk."""
        for edge in self.route_edges(source, route)[1:]:
            self._put(replace(edge, failures=edge.failures + 1))

    def record_insufficient(self, channel_id: bytes, source: bytes, amount: int) -> None:
        """`source` could not forward `amount` through `channel_id`: lower the hint below it."""
        edge = self._edges.get((channel_id, source))
        if edge is not None:
            self._put(replace(edge, capacity=min(edge.capacity, max(0, amount - 1))))
