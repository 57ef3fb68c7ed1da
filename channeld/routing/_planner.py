"""Turning the graph into routes for a payment, and saying why there are none.

`plan_routes` returns up to `k` routes (cheapest first, fees within the payer's cap) for the initiator
to try in order; when there is none it raises the most telling reason: no path at all, paths only through
offline peers, paths only without the capacity, or paths only above the fee cap.
"""

from __future__ import annotations

from channeld.errors import LocalFault
from channeld.protocol import Route
from channeld.routing._graph import ChannelGraph
from channeld.routing._paths import (
    DEFAULT_WEIGHTS,
    Constraints,
    Online,
    RiskWeights,
    always_online,
    cheapest_path,
    k_shortest_paths,
)

DEFAULT_ROUTES = 3


class RoutingError(LocalFault):
    """No route can carry this payment; the subclass says why."""


class NoRoute(RoutingError):
    """The graph holds no path from the payer to the target at all."""


class RouteOffline(RoutingError):
    """Paths exist, but each goes through a peer that is offline (or the target is offline)."""


class NoCapacity(RoutingError):
    """Paths exist, but none has the capacity for the amount (fees included)."""


class FeeCapExceeded(RoutingError):
    """Routes exist, but each one's fees exceed the payer's cap."""


def plan_routes(graph: ChannelGraph, source: bytes, target: bytes, amount: int, fee_cap: int,
                k: int = DEFAULT_ROUTES, online: Online = always_online,
                weights: RiskWeights = DEFAULT_WEIGHTS) -> tuple[Route, ...]:
    """Up to `k` routes for paying `amount` to `target`, cheapest first, each within `fee_cap`."""
    if type(amount) is not int or amount <= 0 or type(fee_cap) is not int or fee_cap < 0:
        raise LocalFault("amount must be positive and the fee cap non-negative")
    if source == target:
        raise NoRoute("the payer is the target")
    if not online(target):
        raise RouteOffline(f"target 0x{target.hex()} is offline")
    paths = k_shortest_paths(graph, source, target, amount, k, weights, Constraints(online))
    target_timeout = graph.reveal_timeout_of(target)
    routes = tuple(path.route(amount, target_timeout) for path in paths)
    affordable = tuple(r for r in routes if r.fees <= fee_cap)
    if affordable:
        return affordable
    if routes:
        cheapest = min(r.fees for r in routes)
        raise FeeCapExceeded(f"the cheapest of the {len(routes)} routes found costs {cheapest} in fees, "
                             f"over the cap {fee_cap}")
    raise _why_none(graph, source, target, amount, weights, online)


def _why_none(graph: ChannelGraph, source: bytes, target: bytes, amount: int, weights: RiskWeights,
              online: Online) -> RoutingError:
    anyhow = Constraints(check_capacity=False)
    if not k_shortest_paths(graph, source, target, amount, 1, weights, anyhow):
        return NoRoute(f"no path from 0x{source.hex()} to 0x{target.hex()}")
    reachable = cheapest_path(graph, source, target, amount, weights, Constraints())
    if reachable is not None:
        down = [f"0x{e.source.hex()}" for e in reachable.edges[1:] if not online(e.source)]
        return RouteOffline(f"every path to 0x{target.hex()} goes through an offline peer "
                            f"(the cheapest through {', '.join(down)})")
    if k_shortest_paths(graph, source, target, amount, 1, weights, Constraints(online, check_capacity=False)):
        return NoCapacity(f"no path to 0x{target.hex()} has the capacity for {amount} plus fees")
    return RouteOffline(f"every path to 0x{target.hex()} with the capacity goes through an offline peer")
