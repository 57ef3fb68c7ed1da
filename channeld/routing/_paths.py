"""Path finding over the channel graph: Dijkstra from the target back to the payer, and Yen's k shortest.

The search runs backwards because a hop's fee depends on the amount it forwards, which is known only from
the target's side: `need[target] = amount`, and a mediator `u` forwarding into `v` needs
`need[v] + fee_u(need[v])` to arrive. An edge is usable when its capacity hint covers the amount that
must cross it and its source is online (the payer is always). The cost minimised is fees plus risk: a
fixed cost per hop, a part per million of the amount (funds locked for longer on longer routes) and a cost
per failure recorded on the edge. With the risk weights at zero the path found is the cheapest in fees.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass

from channeld.protocol import DEFAULT_REVEAL_TIMEOUT, Route
from channeld.routing._graph import ChannelGraph, Edge

Online = Callable[[bytes], bool]


def always_online(address: bytes) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class RiskWeights:
    """How much a hop costs beyond its fee, in the same unit as amounts."""

    per_hop: int = 1
    ppm: int = 10
    per_failure: int = 1000

    def risk(self, edge: Edge, amount: int) -> int:
        return self.per_hop + -(-amount * self.ppm // 1_000_000) + edge.failures * self.per_failure


DEFAULT_WEIGHTS = RiskWeights()


@dataclass(frozen=True, slots=True)
class Path:
    """Edges from the payer to the target; `amount_sent` leaves the payer, `cost` is fees plus risk."""

    edges: tuple[Edge, ...]
    amount_sent: int
    cost: int

    def route(self, amount: int, target_reveal_timeout: int = DEFAULT_REVEAL_TIMEOUT) -> Route:
        """The route for the initiator, with the lock time its hops need.

        Going back from the target (whose incoming lock must outlive now by its reveal timeout), a
        mediator's outgoing lock must satisfy both itself and the next hop, and its incoming lock must
        expire its own reveal timeout later: `need = max(rt, need_next) + rt`.
        """
        need = target_reveal_timeout
        for edge in reversed(self.edges[1:]):
            need = max(edge.reveal_timeout, need) + edge.reveal_timeout
        return Route(self.edges[0].channel_id, tuple(e.target for e in self.edges), self.amount_sent - amount,
                     need)


@dataclass(frozen=True, slots=True)
class Constraints:
    """What a search may use: online peers, capacity checks, and edges/nodes banned by Yen's algorithm."""

    online: Online = always_online
    check_capacity: bool = True
    banned_edges: frozenset[tuple[bytes, bytes]] = frozenset()
    banned_nodes: frozenset[bytes] = frozenset()


NO_CONSTRAINTS = Constraints()


def cheapest_path(graph: ChannelGraph, source: bytes, target: bytes, amount: int,
                  weights: RiskWeights = DEFAULT_WEIGHTS, rules: Constraints = NO_CONSTRAINTS,
                  payer: bytes | None = None) -> Path | None:
    """The cheapest usable path, or None (Dijkstra from `target` back to `source`).

    `payer` (default: `source`) charges no fee; a search from a mediator (Yen's spur) counts its fee.
    """
    payer = source if payer is None else payer
    if source == target:
        return None
    # label per node: (cost, need, path suffix starting at that node)
    best: dict[bytes, tuple[int, int]] = {target: (0, amount)}
    suffix: dict[bytes, tuple[Edge, ...]] = {target: ()}
    queue: list[tuple[int, int, bytes]] = [(0, amount, target)]
    done: set[bytes] = set()
    while queue:
        cost, need, node = heapq.heappop(queue)
        if node in done:
            continue
        done.add(node)
        if node == source:
            return Path(suffix[node], need, cost)
        for edge in graph.edges_into(node):
            label = _relax(edge, cost, need, payer, weights, rules, done)
            if label is not None and (edge.source not in best or label < best[edge.source]):
                best[edge.source] = label
                suffix[edge.source] = (edge, *suffix[node])
                heapq.heappush(queue, (*label, edge.source))
    return None


def _relax(edge: Edge, cost: int, need: int, payer: bytes, weights: RiskWeights, rules: Constraints,
           done: set[bytes]) -> tuple[int, int] | None:
    """The (cost, need) at `edge.source` when reaching the target through `edge`, or None if unusable."""
    u = edge.source
    if u in done or u in rules.banned_nodes or (edge.channel_id, u) in rules.banned_edges:
        return None
    if rules.check_capacity and edge.capacity < need:
        return None
    if u != payer and not rules.online(u):
        return None
    fee = 0 if u == payer else edge.fees.fee(need)
    return cost + fee + weights.risk(edge, need), need + fee


def path_cost(edges: tuple[Edge, ...], amount: int, weights: RiskWeights) -> tuple[int, int]:
    """(cost, amount sent) of a given path, computed the same way the search does."""
    cost, need = 0, amount
    for i in range(len(edges) - 1, -1, -1):
        fee = 0 if i == 0 else edges[i].fees.fee(need)
        cost, need = cost + fee + weights.risk(edges[i], need), need + fee
    return cost, need


def k_shortest_paths(graph: ChannelGraph, source: bytes, target: bytes, amount: int, k: int,
                     weights: RiskWeights = DEFAULT_WEIGHTS,
                     rules: Constraints = NO_CONSTRAINTS) -> list[Path]:
    """Up to `k` loopless paths in increasing cost (Yen's algorithm over `cheapest_path`)."""
    first = cheapest_path(graph, source, target, amount, weights, rules)
    if first is None:
        return []
    found: list[Path] = [first]
    candidates: list[tuple[int, int, Path]] = []
    seen = {first.edges}
    counter = 0
    while len(found) < k:
        previous = found[-1]
        for i in range(len(previous.edges)):
            root = previous.edges[:i]
            spur = source if i == 0 else root[-1].target
            banned_edges = {(p.edges[i].channel_id, p.edges[i].source) for p in found
                            if len(p.edges) > i and p.edges[:i] == root}
            banned_nodes = {source, *(e.target for e in root)} - {spur}
            spur_rules = Constraints(rules.online, rules.check_capacity,
                                     rules.banned_edges | banned_edges, rules.banned_nodes | banned_nodes)
            tail = _spur_path(graph, spur, source, target, root, amount, weights, spur_rules)
            if tail is None or (edges := root + tail) in seen:
                continue
            seen.add(edges)
            cost, sent = path_cost(edges, amount, weights)
            if rules.check_capacity and not _fits(edges, amount):
                continue
            counter += 1
            heapq.heappush(candidates, (cost, counter, Path(edges, sent, cost)))
        if not candidates:
            break
        found.append(heapq.heappop(candidates)[2])
    return found


def _spur_path(graph: ChannelGraph, spur: bytes, source: bytes, target: bytes, root: tuple[Edge, ...],
               amount: int, weights: RiskWeights, rules: Constraints) -> tuple[Edge, ...] | None:
    """The cheapest continuation from `spur`; the spur node pays fees unless it is the payer itself."""
    if spur != source and not rules.online(spur):
        return None
    path = cheapest_path(graph, spur, target, amount, weights, rules, payer=source)
    return None if path is None else path.edges


def _fits(edges: tuple[Edge, ...], amount: int) -> bool:
    need = amount
    for i in range(len(edges) - 1, -1, -1):
        if edges[i].capacity < need:
            return False
        need += 0 if i == 0 else edges[i].fees.fee(need)
    return True
