"""Expiries across chains (proto/locks.md#routes-across-chains): a slow chain cannot make a mediator lose.

The model: each chain's block timestamps are true time plus a fixed offset within its `clock_skew`; blocks
come at most `block_time` apart; a reveal is final `finality` after its block; a registration is mined
within `register_time` and final `finality` later. The adversary (the downstream partner, the chains)
picks everything the model leaves open; the mediator's upstream channel is the real channel machine.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from channeld import protocol as p
from channeld.protocol._crosschain import (
    MAX_BLOCK_TIME,
    MAX_CLOCK_SKEW,
    MAX_CONFIRMATIONS,
    MAX_REGISTER_TIME,
    ChainTiming,
    CrossChainError,
    ExpiryTooFar,
    Leg,
    crossing_margin,
    mediator_delta,
    route_expiries,
)
from channeld.protocol._transfer import encode_route
from channeld.wire import secrethash_of

CONTRACT = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
NOW = 1_700_000_000
SECRET = p.keccak256(b"cross-chain secret")
PAYER = p.Signer(p.keccak256(b"upstream payer"))
MEDIATOR = p.Signer(p.keccak256(b"the mediator"))


def span(low: int, high: int) -> st.SearchStrategy[int]:
    """An integer in [low, high], often one of the ends (where an adversary would sit)."""
    return st.one_of(st.sampled_from([low, high]), st.integers(low, high))


@st.composite
def timings(draw: st.DrawFn, chain_id: int | None = None) -> ChainTiming:
    chain = draw(st.integers(1, 5)) if chain_id is None else chain_id
    return ChainTiming(chain, draw(span(1, MAX_BLOCK_TIME)), draw(span(0, MAX_CONFIRMATIONS)),
                       draw(span(0, MAX_REGISTER_TIME)), draw(span(0, MAX_CLOCK_SKEW)))


@st.composite
def legs(draw: st.DrawFn, timing: ChainTiming) -> Leg:
    """A leg on `timing`'s chain whose channel keeps at least the chain's minimum reveal timeout."""
    reveal_timeout = draw(span(timing.min_reveal_timeout, timing.min_reveal_timeout + 86_400))
    return Leg(timing, reveal_timeout, draw(st.sampled_from([0, 0, draw(st.integers(0, 86_400))])))


def upstream_channel(timing: ChainTiming, reveal_timeout: int, now: int, expiration: int) -> p.ChannelState:
    """The mediator's channel with its payer on the upstream chain, holding the payer's lock."""
    cid = p.keccak256(b"upstream channel")
    states = [p.new_channel(timing.chain_id, CONTRACT, cid, 500, me.address, other.public_key, reveal_timeout)
              for me, other in ((PAYER, MEDIATOR), (MEDIATOR, PAYER))]
    for i, signer in enumerate((PAYER, MEDIATOR)):
        for event in (p.ActionTick(now), p.ContractReceiveDeposit(PAYER.address, 1000)):
            states[i], _ = p.handle(states[i], event, signer)
    send = p.ActionSendLockedTransfer(1, 10, expiration, secrethash_of(SECRET), PAYER.address,
                                      MEDIATOR.address, encode_route((MEDIATOR.address,)))
    _, effects = p.handle(states[0], send, PAYER)
    transfer = next(e.message for e in effects if isinstance(e, p.Send))
    mediator, _ = p.handle(states[1], transfer, MEDIATOR)
    return mediator


def registered_by(effects: list[p.Effect]) -> bool:
    return any(isinstance(e, p.ContractSendRegisterSecret) for e in effects)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_mediator_learning_the_secret_at_the_last_moment_still_claims_upstream(data: st.DataObject) -> None:
    up = data.draw(timings(), "upstream chain")
    down = data.draw(st.one_of(st.just(up), timings(up.chain_id + 1)), "downstream chain")
    up_leg, down_leg = data.draw(legs(up), "upstream leg"), data.draw(legs(down), "downstream leg")
    delta = mediator_delta(up_leg, down_leg)
    worst = data.draw(st.booleans(), "the adversary takes every extreme at once")

    def choose(low: int, high: int, worst_value: int, label: str) -> int:
        return worst_value if worst else data.draw(span(low, high), label)

    incoming = NOW + delta + data.draw(st.integers(0, 10_000))  # upstream lock, upstream clock
    outgoing = incoming - delta  # what the mediator forwards, downstream clock
    # the downstream partner registers the secret in a block stamped exactly at the outgoing expiry
    off_down = choose(-down.clock_skew, down.clock_skew, -down.clock_skew, "downstream clock offset")
    off_up = off_down if up.chain_id == down.chain_id else choose(
        -up.clock_skew, up.clock_skew, up.clock_skew, "upstream clock offset")
    learnt_true = outgoing - off_down + choose(0, down.finality, down.finality, "until final")
    learnt = learnt_true + off_up  # upstream clock
    # the upstream chain's last block before the mediator learns, and the first one that triggers a claim
    threshold = incoming - up_leg.reveal_timeout  # from here on the machine claims on chain
    lock_time = max(incoming - p.MAX_LOCK_LIFETIME, min(learnt - up.block_time, threshold) - 1)
    channel = upstream_channel(up, up_leg.reveal_timeout, lock_time, incoming)
    before = choose(max(lock_time, learnt - up.block_time + 1), learnt, learnt, "last block before")
    channel, _ = p.handle(channel, p.ActionTick(before), MEDIATOR)
    channel, effects = p.handle(channel, p.ActionLearnSecret(SECRET), MEDIATOR)
    submitted = learnt
    if not registered_by(effects):
        next_block = before + up.block_time
        latest = next_block if next_block >= threshold else threshold + up.block_time - 1
        submitted = choose(max(threshold, learnt + 1), latest, latest, "block that triggers a claim")
        channel, effects = p.handle(channel, p.ActionTick(submitted), MEDIATOR)
        assert registered_by(effects), "no claim: the upstream lock expired before the mediator learnt"
    claim = next(e for e in effects if isinstance(e, p.ContractSendRegisterSecret))
    assert claim.deadline == incoming
    slowest = up.register_time + up.finality
    mined = submitted + choose(0, slowest, slowest, "mined and final")
    assert mined <= incoming, "the registration lands after the upstream lock expired: the mediator loses"


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_route_expiries_keep_every_mediator_s_margin(data: st.DataObject) -> None:
    count = data.draw(st.integers(1, 3), "chains")
    chains = [data.draw(timings(chain_id), f"chain {chain_id}") for chain_id in range(1, count + 1)]
    route = data.draw(st.lists(st.sampled_from(chains).flatmap(legs), min_size=1, max_size=8), "legs")
    slack = data.draw(st.integers(0, 3600))
    try:
        expiries = route_expiries(route, NOW, slack)
    except ExpiryTooFar:
        longest = sum(mediator_delta(a, b) for a, b in itertools.pairwise(route))
        assert longest + slack + route[-1].reveal_timeout > p.MAX_LOCK_LIFETIME - 2 * MAX_CLOCK_SKEW
        return
    for i, (leg, expiry) in enumerate(zip(route, expiries, strict=True)):
        # every channel accepts its lock even with its clock ahead, and not too far ahead either
        assert expiry >= NOW + leg.timing.clock_skew + slack + leg.reveal_timeout
        assert expiry <= NOW - leg.timing.clock_skew + p.MAX_LOCK_LIFETIME
        if i + 1 < len(route):
            nxt = route[i + 1]
            assert expiry - expiries[i + 1] >= mediator_delta(leg, nxt)
            if nxt.timing.chain_id != leg.timing.chain_id:
                assert expiry - expiries[i + 1] >= crossing_margin(nxt.timing, leg.timing)


def test_the_crossing_margin_grows_with_the_slower_chain() -> None:
    fast = ChainTiming(10, 2, 10, 30, 5)
    slow = ChainTiming(1, 12, 64, 300, 15)
    assert crossing_margin(fast, slow) == 5 + 20 + 15 + (12 + 300 + 2 * 768)
    assert crossing_margin(slow, fast) == 15 + 768 + 5 + (2 + 30 + 2 * 20)
    # a mediator receiving on the fast chain and paying on the slow one keeps the margin over its timeout
    assert mediator_delta(Leg(fast, 600), Leg(slow, 600)) == crossing_margin(slow, fast)
    assert mediator_delta(Leg(slow, slow.min_reveal_timeout), Leg(fast, 600)) == crossing_margin(fast, slow)
    # on one chain the single-chain rule holds: the upstream reveal timeout, or a longer announced margin
    assert mediator_delta(Leg(slow, 2000), Leg(slow, 900)) == 2000
    assert mediator_delta(Leg(slow, 2000), Leg(slow, 900, margin=2500)) == 2500


def test_route_expiries_worked_example() -> None:
    a, b = ChainTiming(1, 12, 20, 120, 15), ChainTiming(10, 2, 30, 30, 5)
    route = [Leg(b, 300), Leg(b, 300), Leg(a, 900, margin=100), Leg(a, 900)]
    expiries = route_expiries(route, NOW, 600)
    last = NOW + 600 + 900 + 15
    third = last + 900
    second = third + max(300, 100, crossing_margin(a, b))
    assert crossing_margin(a, b) == 15 + 240 + 5 + 152
    assert expiries == (second + 300, second, third, last)


@given(st.integers(1, 1 << 70), st.integers(-5, 0))
def test_timing_out_of_bounds_is_refused(big: int, negative: int) -> None:
    for bad in ((0, 1, 0, 0), (MAX_BLOCK_TIME + big, 1, 0, 0), (1, MAX_CONFIRMATIONS + big, 0, 0),
                (1, 0, MAX_REGISTER_TIME + big, 0), (1, 0, 0, MAX_CLOCK_SKEW + big), (1, negative - 1, 0, 0)):
        try:
            ChainTiming(1, *bad)
        except CrossChainError:
            continue
        raise AssertionError(f"timing {bad} accepted")


def test_route_expiries_refuse_bad_input_and_too_long_routes() -> None:
    slow = ChainTiming(1, MAX_BLOCK_TIME, MAX_CONFIRMATIONS, MAX_REGISTER_TIME, MAX_CLOCK_SKEW)
    fast = ChainTiming(2, 1, 0, 0, 0)
    zigzag = [Leg(slow if i % 2 else fast, slow.min_reveal_timeout) for i in range(8)]
    for bad_call in (lambda: route_expiries([], NOW, 0), lambda: route_expiries(zigzag, NOW, -1),
                     lambda: Leg(fast, 0), lambda: Leg(fast, 10, -1)):
        try:
            bad_call()
        except CrossChainError:
            continue
        raise AssertionError("accepted")
    try:
        route_expiries(zigzag, NOW, 0)
    except ExpiryTooFar as exc:
        assert "more than 604800 s" in str(exc)
    else:
        raise AssertionError("a route of eight slow crossings fits in a week?")
