"""Path finding on line, diamond and random graphs; fees, capacity, offline peers, Yen's k shortest."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from channeld import protocol as p
from channeld import routing as r
from tests.routing.graphs import World, random_world

FREE = r.RiskWeights(0, 0, 0)


def line() -> World:
    world = World()
    world.channel("A", "B", 1000, p.FeePolicy(), p.FeePolicy(5, 0))
    world.channel("B", "C", 1000, p.FeePolicy(2, 10_000), p.FeePolicy())
    world.channel("C", "D", 1000, p.FeePolicy(1, 0), p.FeePolicy())
    return world


def diamond(cheap_capacity: int = 1000) -> World:
    world = World()
    world.channel("A", "B", 1000)
    world.channel("A", "C", 1000)
    world.channel("B", "D", cheap_capacity, p.FeePolicy(1, 0))
    world.channel("C", "D", 1000, p.FeePolicy(3, 0))
    return world


def test_line_route_carries_each_mediators_fee() -> None:
    world = line()
    route = r.plan_routes(world.graph, world.node("A"), world.node("D"), 100, 1000)[0]
    assert world.names(route) == ["B", "C", "D"]
    # C takes 1 on 100; B takes 2 + ceil(101 * 1%) = 4 on 101
    assert route.fees == 5
    assert route.channel_id == p.keccak256(b"channel A-B")


def test_the_reverse_direction_uses_the_other_sides_fees() -> None:
    world = line()
    route = r.plan_routes(world.graph, world.node("D"), world.node("A"), 100, 1000)[0]
    assert world.names(route) == ["C", "B", "A"] and route.fees == 5  # only B charges (5) that way


def test_diamond_prefers_the_cheaper_side_and_k_shortest_gives_both() -> None:
    world = diamond()
    routes = r.plan_routes(world.graph, world.node("A"), world.node("D"), 50, 100, k=3)
    assert [world.names(x) for x in routes] == [["B", "D"], ["C", "D"]]
    assert [x.fees for x in routes] == [1, 3]


def test_capacity_excludes_a_hop_that_cannot_carry_amount_plus_fees() -> None:
    world = diamond(cheap_capacity=50)
    routes = r.plan_routes(world.graph, world.node("A"), world.node("D"), 50, 100)
    assert [world.names(x) for x in routes] == [["B", "D"], ["C", "D"]]
    routes = r.plan_routes(world.graph, world.node("A"), world.node("D"), 51, 100)
    assert [world.names(x) for x in routes] == [["C", "D"]]


def test_offline_mediators_are_avoided() -> None:
    world = diamond()
    offline = world.node("B")
    routes = r.plan_routes(world.graph, world.node("A"), world.node("D"), 10, 100,
                           online=lambda a: a != offline)
    assert [world.names(x) for x in routes] == [["C", "D"]]


def test_risk_makes_shorter_routes_win_over_slightly_cheaper_ones() -> None:
    world = World()
    world.channel("A", "D", 1000)
    world.channel("A", "B", 1000)
    world.channel("B", "D", 1000)  # free mediator, but one more hop
    direct = r.plan_routes(world.graph, world.node("A"), world.node("D"), 10, 100)[0]
    assert world.names(direct) == ["D"]


def brute_force(world: World, source: str, target: str, amount: int) -> list[int]:
    """Fees of every simple path that can carry the payment, by enumeration."""
    graph, found = world.graph, []

    def walk(node: bytes, path: list[r.Edge], seen: set[bytes]) -> None:
        if node == world.node(target):
            edges = tuple(path)
            _cost, sent = r.path_cost(edges, amount, FREE)
            need, fits = amount, True
            for i in range(len(edges) - 1, -1, -1):
                fits = fits and edges[i].capacity >= need
                need += 0 if i == 0 else edges[i].fees.fee(need)
            if fits:
                found.append(sent - amount)
            return
        for name in world.signers:
            for edge in graph.edges_into(world.node(name)):
                if edge.source == node and edge.target not in seen:
                    walk(edge.target, [*path, edge], seen | {edge.target})

    walk(world.node(source), [], {world.node(source)})
    return sorted(found)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), amount=st.integers(1, 300))
def test_random_graphs_dijkstra_and_yen_match_brute_force(seed: int, amount: int) -> None:
    world = random_world(seed)
    expected = brute_force(world, "n0", "n1", amount)
    paths = r.k_shortest_paths(world.graph, world.node("n0"), world.node("n1"), amount, 3, FREE)
    assert [x.amount_sent - amount for x in paths] == expected[:3]
    for path in paths:
        hops = [e.target for e in path.edges]
        assert len(set(hops)) == len(hops) and world.node("n0") not in hops  # loopless
        assert path.edges[0].source == world.node("n0") and hops[-1] == world.node("n1")
