"""The converter: a mediator whose incoming and outgoing channels are on two chains, in two assets.

Real channel machines on both chains; the converter's machine must never pay downstream more than it is
paid upstream at its rate and fee, move the expiry by the crossing margin, and read each chain's own clock.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channeld import protocol as p
from channeld.errors import LocalFault
from channeld.protocol._crosschain import (
    Asset,
    ChainTick,
    ChainTiming,
    ConversionTerms,
    Converter,
    Leg,
    conversion_route,
    handle_conversion,
    mediator_delta,
    start_conversion,
)
from channeld.protocol._transfer import encode_route
from channeld.wire import SecretReveal, secrethash_of

CONTRACT_A = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
CONTRACT_B = bytes.fromhex("e7f1725e7734ce288f8367e1bb143e90bb3f0512")
SLOW = ChainTiming(31337, 12, 20, 120, 15)
FAST = ChainTiming(10, 2, 30, 30, 5)
Y = Asset(FAST.chain_id, CONTRACT_B, bytes([0x77] * 20))
NOW_A, NOW_B = 1_700_000_000, 1_700_000_004  # the two chains' clocks differ a little
SECRET = p.keccak256(b"converted payment")
PAYER, CONV, SHOP = (p.Signer(p.keccak256(n)) for n in (b"payer", b"conv", b"shop"))
TERMS = ConversionTerms(3, 2, p.FeePolicy(4, 1000))


def channel(chain: ChainTiming, contract: bytes, a: p.Signer, b: p.Signer, deposit: int, now: int,
            reveal_timeout: int) -> tuple[p.ChannelState, p.ChannelState]:
    """Both sides of an open channel where `a` deposited `deposit`."""
    cid = p.keccak256(f"{chain.chain_id}".encode() + a.address + b.address)
    states = []
    for me, other in ((a, b), (b, a)):
        state = p.new_channel(chain.chain_id, contract, cid, 500, me.address, other.public_key,
                              reveal_timeout)
        for event in (p.ActionTick(now), p.ContractReceiveDeposit(a.address, deposit)):
            state, _ = p.handle(state, event, me)
        states.append(state)
    return states[0], states[1]


def received_lock(amount: int, expiration: int, route: tuple[bytes, ...], reveal_timeout: int = 900
                  ) -> tuple[p.ChannelState, p.EventLockReceived]:
    """The converter's channel with the payer on the slow chain, after the payer's lock arrived."""
    payer_side, conv_side = channel(SLOW, CONTRACT_A, PAYER, CONV, 10**9, NOW_A, reveal_timeout)
    send = p.ActionSendLockedTransfer(1, amount, expiration, secrethash_of(SECRET), PAYER.address,
                                      SHOP.address, encode_route(route))
    _, effects = p.handle(payer_side, send, PAYER)
    transfer = next(e.message for e in effects if isinstance(e, p.Send))
    conv_side, effects = p.handle(conv_side, transfer, CONV)
    return conv_side, next(e for e in effects if isinstance(e, p.EventLockReceived))


def converter(deposit: int = 10**9) -> tuple[Converter, p.ChannelState]:
    conv_b, shop_b = channel(FAST, CONTRACT_B, CONV, SHOP, deposit, NOW_B, 300)
    return Converter(Y, TERMS, SLOW, FAST, {SHOP.address: conv_b}), shop_b


ROUTE = conversion_route((), CONV.address, Y, (SHOP.address,))
EXPIRY = NOW_A + 5000


def test_the_converter_forwards_the_converted_amount_earlier_by_the_crossing_margin() -> None:
    payer_channel, received = received_lock(672, EXPIRY, ROUTE)
    conv, _ = converter()
    state, effects = start_conversion(received, payer_channel, conv)
    assert state.inner.refusal is None
    (do,) = effects
    action = do.action
    assert isinstance(action, p.ActionSendLockedTransfer)
    assert do.channel_id == conv.channels_by_partner[SHOP.address].channel_id
    assert action.amount == TERMS.amount_out(672) == 1002  # 672 * 3 // 2 = 1008 = 1002 + 4 + ceil(1.002)
    assert action.expiration == EXPIRY - mediator_delta(Leg(SLOW, 900), Leg(FAST, 300))
    assert action.metadata == SHOP.address
    # the fast chain's channel machine accepts the lock: the converter really can send it
    p.handle(conv.channels_by_partner[SHOP.address], action, CONV)


def test_the_secret_from_downstream_pays_downstream_and_claims_upstream() -> None:
    payer_channel, received = received_lock(672, EXPIRY, ROUTE)
    conv, _ = converter()
    state, _ = start_conversion(received, payer_channel, conv)
    state, effects = handle_conversion(state, SecretReveal(SECRET))
    kinds = {(do.channel_id, type(do.action)) for do in effects if isinstance(do, p.ChannelDo)}
    assert kinds == {(payer_channel.channel_id, p.ActionLearnSecret),
                     (conv.channels_by_partner[SHOP.address].channel_id, p.ActionUnlock)}


def test_only_the_payee_chain_s_clock_expires_the_payee_lock() -> None:
    payer_channel, received = received_lock(672, EXPIRY, ROUTE)
    conv, _ = converter()
    state, _ = start_conversion(received, payer_channel, conv)
    lock = state.inner.payee_lock
    assert lock is not None
    # the payer chain's clock passing the payee lock's expiry means nothing on the payee chain
    assert handle_conversion(state, ChainTick(SLOW.chain_id, lock.expiration + 100)) == (state, [])
    still, effects = handle_conversion(state, ChainTick(FAST.chain_id, lock.expiration))
    assert effects == [] and still.inner.now == lock.expiration
    _, effects = handle_conversion(still, ChainTick(FAST.chain_id, lock.expiration + 1))
    assert [type(do.action) for do in effects if isinstance(do, p.ChannelDo)] == [p.ActionExpireLock]
    with pytest.raises(LocalFault, match="ChainTick"):
        handle_conversion(state, p.ActionTick(NOW_B))


@pytest.mark.parametrize(("amount", "route", "reveal_timeout", "deposit", "why"), [
    (672, (CONV.address, SHOP.address), 900, 10**9, "does not ask us to convert"),
    (672, conversion_route((), CONV.address, Asset(5, CONTRACT_B), (SHOP.address,)), 900, 10**9,
     "does not ask us to convert"),
    (3, ROUTE, 900, 10**9, "does not cover our fee"),
    (672, ROUTE, 200, 10**9, "below the"),
    (672, conversion_route((), CONV.address, Y, (PAYER.address,)), 900, 10**9, "turns back"),
    (672, conversion_route((), CONV.address, Y, (bytes([5] * 20),)), 900, 10**9, "no open channel"),
    (672, ROUTE, 900, 1000, "insufficient capacity"),
])
def test_refusals_forward_nothing(amount: int, route: tuple[bytes, ...], reveal_timeout: int, deposit: int,
                                  why: str) -> None:
    payer_channel, received = received_lock(amount, EXPIRY, route, reveal_timeout)
    state, effects = start_conversion(received, payer_channel, converter(deposit)[0])
    assert effects == [] and state.inner.payee_lock is None
    assert state.inner.refusal is not None and why in state.inner.refusal


def test_a_lock_too_close_to_expiry_for_the_margin_is_refused() -> None:
    payer_channel, received = received_lock(672, NOW_A + 1100, ROUTE)
    state, effects = start_conversion(received, payer_channel, converter()[0])
    assert effects == [] and state.inner.refusal is not None and "too soon" in state.inner.refusal


def test_terms_from_the_wrong_chain_are_refused() -> None:
    payer_channel, received = received_lock(672, EXPIRY, ROUTE)
    conv, _ = converter()
    wrong = Converter(Y, TERMS, FAST, FAST, conv.channels_by_partner)
    state, effects = start_conversion(received, payer_channel, wrong)
    assert effects == [] and state.inner.refusal is not None and "convert from chain" in state.inner.refusal


@settings(max_examples=500, deadline=None)
@given(numerator=st.integers(1, 1 << 127), denominator=st.integers(1, 1 << 127), base=st.integers(0, 10**6),
       ppm=st.integers(0, 10**6), amount_in=st.integers(1, 1 << 200))
def test_never_pays_downstream_more_than_it_is_paid_upstream(numerator: int, denominator: int, base: int,
                                                             ppm: int, amount_in: int) -> None:
    terms = ConversionTerms(numerator, denominator, p.FeePolicy(base, ppm))
    out = terms.amount_out(amount_in)
    # what is forwarded, plus the fee on it, is worth no more than what came in (at the rate, rounded down)
    assert (out + terms.fees.fee(out)) * denominator <= amount_in * numerator or out == 0
    if out > 0:
        assert terms.amount_in(out) <= amount_in
    assert terms.amount_out(terms.amount_in(out + 1)) >= out + 1  # and a payer can always reach more


@settings(max_examples=200, deadline=None)
@given(numerator=st.integers(1, 10**9), denominator=st.integers(1, 10**9), base=st.integers(0, 1000),
       ppm=st.integers(0, 10**6), wanted=st.integers(1, 10**12))
def test_the_least_payment_for_an_amount_is_exact(numerator: int, denominator: int, base: int, ppm: int,
                                                  wanted: int) -> None:
    terms = ConversionTerms(numerator, denominator, p.FeePolicy(base, ppm))
    needed = terms.amount_in(wanted)
    assert terms.amount_out(needed) >= wanted
    assert terms.amount_out(needed - 1) < wanted
