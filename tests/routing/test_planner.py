"""Planning routes: errors that say why, the fee cap, learning from outcomes, and paying along a plan."""

from __future__ import annotations

import pytest

from channeld import protocol as p
from channeld import routing as r
from channeld.errors import LocalFault
from channeld.wire import secrethash_of
from tests.protocol.network import Network
from tests.routing.graphs import World
from tests.routing.test_paths import diamond


def test_no_route_when_the_target_is_not_connected() -> None:
    world = diamond()
    world.node("Z")
    with pytest.raises(r.NoRoute):
        r.plan_routes(world.graph, world.node("A"), world.node("Z"), 10, 100)


def test_no_capacity_when_every_path_is_too_small() -> None:
    world = diamond()
    with pytest.raises(r.NoCapacity, match="capacity for 1000"):
        r.plan_routes(world.graph, world.node("A"), world.node("D"), 1000, 100)


def test_offline_when_only_offline_peers_could_carry_it() -> None:
    world = diamond()
    down = {world.node("B"), world.node("C")}
    with pytest.raises(r.RouteOffline, match=f"offline peer .the cheapest through 0x{world.node('B').hex()}"):
        r.plan_routes(world.graph, world.node("A"), world.node("D"), 10, 100, online=lambda a: a not in down)
    with pytest.raises(r.RouteOffline, match="target"):
        r.plan_routes(world.graph, world.node("A"), world.node("D"), 10, 100,
                      online=lambda a: a != world.node("D"))


def test_fee_cap_drops_expensive_routes_and_says_so_when_none_is_left() -> None:
    world = diamond()
    routes = r.plan_routes(world.graph, world.node("A"), world.node("D"), 10, 2)
    assert [world.names(x) for x in routes] == [["B", "D"]]
    with pytest.raises(r.FeeCapExceeded, match="of the 2 routes found costs 1 in fees, over the cap 0"):
        r.plan_routes(world.graph, world.node("A"), world.node("D"), 10, 0)


def test_bad_arguments_are_refused() -> None:
    world = diamond()
    for amount, cap in ((0, 1), (1, -1)):
        with pytest.raises(LocalFault, match="amount must be positive"):
            r.plan_routes(world.graph, world.node("A"), world.node("D"), amount, cap)
    with pytest.raises(r.NoRoute):
        r.plan_routes(world.graph, world.node("A"), world.node("A"), 1, 1)


def test_a_failed_route_is_avoided_next_time() -> None:
    world = diamond()
    a, d = world.node("A"), world.node("D")
    first = r.plan_routes(world.graph, a, d, 10, 100)[0]
    assert world.names(first) == ["B", "D"]
    world.graph.record_failure(a, first)
    assert world.names(r.plan_routes(world.graph, a, d, 10, 100)[0]) == ["C", "D"]


def test_success_moves_capacity_hints_along_the_route() -> None:
    world = diamond()
    a, d = world.node("A"), world.node("D")
    route = r.plan_routes(world.graph, a, d, 600, 100)[0]
    world.graph.record_success(a, route, 601)
    edge = world.graph.edge(p.keccak256(b"channel B-D"), world.node("B"))
    back = world.graph.edge(p.keccak256(b"channel B-D"), d)
    assert edge is not None and back is not None and (edge.capacity, back.capacity) == (399, 1601)
    assert world.names(r.plan_routes(world.graph, a, d, 600, 100)[0]) == ["C", "D"]


def test_insufficient_hint_lowers_capacity_below_the_amount() -> None:
    world = diamond()
    cid = p.keccak256(b"channel B-D")
    world.graph.record_insufficient(cid, world.node("B"), 300)
    edge = world.graph.edge(cid, world.node("B"))
    assert edge is not None and edge.capacity == 299


def test_planned_routes_pay_end_to_end_with_a_retry() -> None:
    """Routes from the planner drive the initiator machine; the first mediator cannot forward, the
    second route succeeds, and every fee matches what the mediators charge."""
    net = Network("ABCD", {"B": p.FeePolicy(1, 0), "C": p.FeePolicy(3, 0)})
    world = World()
    for name, node in net.nodes.items():
        world.signers[name] = node.signer
    for a, b in ("AB", "AC", "BD", "CD"):
        net.open(a, b)
    net.nodes["B"].channels.pop(next(iter(
        cid for cid, s in net.nodes["B"].channels.items() if s.partner.address == net.nodes["D"].address)))
    world.channel("A", "B", 2000, p.FeePolicy(), p.FeePolicy(1, 0))
    world.channel("A", "C", 2000, p.FeePolicy(), p.FeePolicy(3, 0))
    world.channel("B", "D", 2000, p.FeePolicy(1, 0))
    world.channel("C", "D", 2000, p.FeePolicy(3, 0))
    routes = r.plan_routes(world.graph, world.node("A"), world.node("D"), 70, 10)
    assert [world.names(x) for x in routes] == [["B", "D"], ["C", "D"]]
    assert [x.fees for x in routes] == [net.route("A", hops, 70).fees for hops in (["B", "D"], ["C", "D"])]
    secret = b"\x07" * 32
    net.request("D", secret, 70)
    first_hops = [net.nodes["A"].channel_with(net.nodes[world.names(x)[0]]) for x in routes]
    routes = tuple(p.Route(c.channel_id, x.hops, x.fees) for c, x in zip(first_hops, routes, strict=True))
    state, effects = p.start_payment(1, net.nodes["A"].address, 70, secrethash_of(secret), 10, routes,
                                     net.nodes["A"].channels, net.now)
    net.payment_effects(net.nodes["A"], state, effects)
    net.pump()
    for _ in range(5):
        net.tick(60)
    kinds = [type(e) for e in net.nodes["A"].events]
    assert kinds == [p.EventRouteFailed, p.EventTransferSucceeded]
    assert p.EventTransferReceived(secrethash_of(secret), 70) in net.nodes["D"].events


def test_lock_time_keeps_every_hops_reveal_timeout_when_they_differ() -> None:
    """B needs 200 s, the others 60: a route planned from the announcements gets through; the same route
    assuming the payer's 60 s per hop is refused by B (its outgoing lock would expire too soon)."""
    net = Network("ABCD")
    net.nodes["B"].reveal_timeout = 200
    for a, b in ("AB", "BC", "CD"):
        net.open(a, b)
    world = World()
    for name, node in net.nodes.items():
        world.signers[name] = node.signer
    for a, b in ("AB", "BC", "CD"):
        cid = world.channel(a, b, 2000)
        for me, other in ((a, b), (b, a)):
            world.announce(me, other, cid, 2000, p.FeePolicy(), net.nodes[me].reveal_timeout)
    planned = r.plan_routes(world.graph, world.node("A"), world.node("D"), 10, 0)[0]
    # D needs 60; C: max(60, 60) + 60 = 120; B: max(200, 120) + 200 = 400
    assert planned.lock_time == 400
    for lock_time, succeeds in ((planned.lock_time, True), (0, False)):
        secret = bytes([lock_time % 256 + 1]) * 32
        net.request("D", secret, 10)
        route = p.Route(planned.channel_id, planned.hops, 0, lock_time)
        state, effects = p.start_payment(1, net.nodes["A"].address, 10, secrethash_of(secret), 0, (route,),
                                         net.nodes["A"].channels, net.now)
        net.payment_effects(net.nodes["A"], state, effects)
        net.pump()
        mediator = net.nodes["B"].payments[secrethash_of(secret)]
        assert isinstance(mediator, p.MediatorState)
        assert (mediator.refusal is None) is succeeds
        assert (p.EventTransferReceived(secrethash_of(secret), 10) in net.nodes["D"].events) is succeeds
