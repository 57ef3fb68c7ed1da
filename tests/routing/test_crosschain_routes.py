"""Routes across chains: amounts backwards through fees and conversions, the payer's cap, clear failures."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channeld import protocol as p
from channeld import routing as r
from channeld.protocol._crosschain import ChainTiming, ConversionTerms, crossing_margin
from tests.routing.crosschain_world import NOW, REVEAL, TIMINGS, World, X, Y, bridge_world


def forward(world: World, route: r.CrossChainRoute, sent: int) -> list[int]:
    """What each lock would carry if each mediator forwarded all it may from what it received."""
    amounts = [sent]
    for before, after in zip(route.locks, route.locks[1:], strict=False):
        if before.asset != after.asset:
            offer = next(c for c in route.conversions
                         if c.converter == after.sender and c.target == after.asset)
            amounts.append(offer.terms.amount_out(amounts[-1]))
        else:
            edge = world.graphs[after.asset].edge(after.channel_id, after.sender)
            assert edge is not None
            amounts.append(edge.fees.amount_out(amounts[-1]))
    return amounts


def test_amounts_go_backwards_through_fees_and_the_rate() -> None:
    w = bridge_world()
    (route,) = w.plan("payer", "shop", 1000, 10_000)
    # m2 forwards 1000 for 1000 + 2 + 1; the converter wants ceil((1003 + 4) * 2 / 3) = 672; m1 adds 1
    assert [lock.amount for lock in route.locks] == [673, 672, 1003, 1000]
    assert (route.spend, route.receive) == (673, 1000)
    assert [lock.asset for lock in route.locks] == [X, X, Y, Y]
    assert w.names(route) == ["m1", "conv", "marker", "m2", "shop"]
    assert route.metadata[2] == Y.marker
    # mediators forwarding all they may deliver at least the plan (the converter rounds X up to whole units)
    assert forward(w, route, route.spend) == [673, 672, 1004, 1000]


def test_expiries_keep_the_crossing_margin_toward_the_slow_chain() -> None:
    w = World(assets=(Y, X))
    w.channel(Y, "payer", "conv")
    w.channel(X, "conv", "shop")
    w.convert("conv", Y, X, 1, 1)
    (route,) = w.plan("payer", "shop", 500, 600, pay=Y, receive=X)
    margin = crossing_margin(TIMINGS[X.chain_id], TIMINGS[Y.chain_id])
    assert margin > REVEAL[Y.chain_id]  # the slow downstream chain, not the reveal timeout, decides
    last = NOW + p.DEFAULT_REVEAL_TIMEOUT + REVEAL[X.chain_id] + TIMINGS[X.chain_id].clock_skew
    assert [lock.expiration for lock in route.locks] == [last + margin, last]


def test_a_rate_beyond_the_payer_s_cap_fails_before_anything_is_locked_and_names_the_rate() -> None:
    w = bridge_world()
    assert w.plan("payer", "shop", 1000, 673)
    with pytest.raises(r.SpendCapExceeded, match=r"costs at least 673, over the cap 672 .*3/2"):
        w.plan("payer", "shop", 1000, 672)
    # the converter moves its rate to 1:1: the same cap no longer reaches
    w.convert("conv", X, Y, 1, 1, p.FeePolicy(4, 0))
    with pytest.raises(r.SpendCapExceeded, match=r"1/1 \(fee 4 \+ 0 ppm\)") as caught:
        w.plan("payer", "shop", 1000, 673)
    assert w.node("conv").hex() in str(caught.value)


def test_an_older_rate_never_replaces_a_newer_one() -> None:
    w = bridge_world()
    newer = w.convert("conv", X, Y, 1, 1, serial=100)
    stale = r.sign_conversion(w.signers["conv"], X, Y, ConversionTerms(3, 1, p.FeePolicy()), 0, 99, NOW + 60)
    assert not w.graph.add_conversion(stale, NOW)
    assert w.graph.conversions_into(Y, NOW) == [newer]


def test_an_expired_rate_is_not_offered() -> None:
    w = bridge_world()
    request = r.CrossChainPayment(w.node("payer"), X, w.node("shop"), Y, 1000, 10_000)
    with pytest.raises(r.NoRoute):
        r.plan_crosschain(w.graph, request, TIMINGS, NOW + 3600)
    w.graph.forget_expired(NOW + 3600)
    assert w.graph.conversions_into(Y, NOW) == []


def test_why_there_is_no_route() -> None:
    w = bridge_world()
    with pytest.raises(r.NoRoute, match="conversions considered: 0"):
        w.plan("payer", "shop", 1000, 10_000, max_conversions=0)
    with pytest.raises(r.RouteOffline):
        w.plan("payer", "shop", 1000, 10_000, online=lambda node: node != w.node("conv"))
    with pytest.raises(r.RouteOffline):
        w.plan("payer", "shop", 1000, 10_000, online=lambda node: node != w.node("m2"))
    with pytest.raises(r.NoCapacity):
        w.plan("payer", "shop", 9_999, 100_000)
    w.channel(X, "payer", "lonely")
    with pytest.raises(r.NoRoute):
        w.plan("payer", "lonely", 10, 100, receive=Y)


def test_unknown_or_too_slow_chains_are_refused() -> None:
    w = bridge_world()
    request = r.CrossChainPayment(w.node("payer"), X, w.node("shop"), Y, 1000, 10_000)
    with pytest.raises(r.UnknownChain, match=f"chain {Y.chain_id}"):
        r.plan_crosschain(w.graph, request, {X.chain_id: TIMINGS[X.chain_id]}, NOW)
    glacial = {**TIMINGS, X.chain_id: ChainTiming(X.chain_id, 600, 100, 3600, 900)}
    assert r.plan_crosschain(w.graph, request, glacial, NOW)  # slow, still within a lock's lifetime
    w.convert("conv", X, Y, 3, 2, p.FeePolicy(4, 0), margin=p.MAX_LOCK_LIFETIME - 1)
    with pytest.raises(r.RouteTooSlow, match="too slow"):
        r.plan_crosschain(w.graph, request, TIMINGS, NOW)


def test_the_cheaper_of_two_converters_comes_first_and_nodes_never_repeat() -> None:
    w = bridge_world()
    w.channel(X, "payer", "conv2")
    w.channel(Y, "conv2", "shop")
    w.convert("conv2", X, Y, 2, 1)
    routes = w.plan("payer", "shop", 1000, 10_000)
    assert [w.names(route)[:2] for route in routes] == [["conv2", "marker"], ["m1", "conv"]]
    assert [route.spend for route in routes] == [500, 673]
    for route in routes:
        nodes = [h for h in route.metadata if h != Y.marker]
        assert len(nodes) == len(set(nodes)) and w.node("payer") not in nodes


def test_two_conversions_in_a_row() -> None:
    z = r.Asset(X.chain_id, X.contract, bytes([7] * 20))  # a token on chain A
    w = World(assets=(X, Y, z))
    w.channel(X, "payer", "c1")
    w.channel(z, "c1", "c2")
    w.channel(Y, "c2", "shop")
    w.convert("c1", X, z, 10, 1)
    w.convert("c2", z, Y, 1, 5)
    (route,) = w.plan("payer", "shop", 100, 1000)
    assert w.names(route) == ["c1", "marker", "c2", "marker", "shop"]
    assert route.metadata[1] == z.marker and route.metadata[3] == Y.marker
    assert [lock.amount for lock in route.locks] == [50, 500, 100]
    with pytest.raises(r.NoRoute):
        w.plan("payer", "shop", 100, 1000, max_conversions=1)


def test_a_payment_request_is_checked() -> None:
    a, b = bytes([1] * 20), bytes([2] * 20)
    for amount, cap in ((0, 1), (1, 0), (True, 5), (-1, 5)):
        with pytest.raises(r.RoutingError):
            r.CrossChainPayment(a, X, b, Y, amount, cap)
    with pytest.raises(r.NoRoute):
        r.CrossChainPayment(a, X, a, X, 1, 1)


@settings(max_examples=60, deadline=None)
@given(numerator=st.integers(1, 10**6), denominator=st.integers(1, 10**6), conv_fee=st.integers(0, 50),
       conv_ppm=st.integers(0, 50_000), m2_fee=st.integers(0, 50), m2_ppm=st.integers(0, 50_000),
       amount=st.integers(1, 10**6))
def test_the_planned_spend_is_the_least_that_delivers_the_amount(
        numerator: int, denominator: int, conv_fee: int, conv_ppm: int, m2_fee: int, m2_ppm: int,
        amount: int) -> None:
    w = World()
    w.channel(X, "payer", "conv", capacity=10**15)
    w.channel(Y, "conv", "m2", capacity=10**15)
    w.channel(Y, "m2", "shop", capacity=10**15, fees_a=p.FeePolicy(m2_fee, m2_ppm))
    w.convert("conv", X, Y, numerator, denominator, p.FeePolicy(conv_fee, conv_ppm))
    (route,) = w.plan("payer", "shop", amount, 10**15)
    delivered = forward(w, route, route.spend)
    assert all(got >= planned.amount for got, planned in zip(delivered, route.locks, strict=True))
    assert delivered[-1] >= amount
    assert forward(w, route, route.spend - 1)[-1] < amount
