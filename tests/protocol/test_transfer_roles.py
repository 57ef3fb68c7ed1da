"""The payment roles one rule at a time: target reveal conditions, mediator refusals, initiator edges,
fees and route metadata."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channeld import protocol as p
from channeld import wire
from channeld.errors import LocalFault
from channeld.wire import Lock, secrethash_of
from tests.protocol.network import REVEAL, Network, channel_id_of
from tests.protocol.pair import NOW

SECRET = b"\x33" * 32
HASH = secrethash_of(SECRET)
CH1, CH2 = b"\x01" * 32, b"\x02" * 32


def lock_event(channel: bytes, amount: int, expiration: int = NOW + 1000) -> p.EventLockReceived:
    return p.EventLockReceived(channel, 1, Lock(amount, expiration, HASH), bytes(20), bytes(20), b"")


# --- target -------------------------------------------------------------------------------------------


def test_target_reveals_once_partial_locks_add_up_to_the_amount() -> None:
    state = p.issue_request(SECRET, 50, NOW + 3600, NOW, REVEAL)
    state, effects = p.handle_target(state, lock_event(CH1, 30))
    assert effects == [] and not state.revealed
    state, effects = p.handle_target(state, lock_event(CH2, 20))
    assert effects == [p.ChannelDo(cid, p.ActionLearnSecret(SECRET)) for cid in (CH1, CH2)]
    state, effects = p.handle_target(state, p.EventLockUnlocked(CH1, 1, HASH, 30))
    assert effects == [] and not state.complete
    state, effects = p.handle_target(state, p.EventLockUnlocked(CH2, 1, HASH, 20))
    assert effects == [p.EventTransferReceived(HASH, 50)] and state.complete and state.locks == ()


def test_target_does_not_count_a_lock_it_could_not_claim_in_time() -> None:
    state = p.issue_request(SECRET, 50, NOW + 3600, NOW, REVEAL)
    state, effects = p.handle_target(state, lock_event(CH1, 50, NOW + REVEAL - 1))
    assert effects == [] and not state.revealed


def test_target_refuses_locks_for_an_expired_request() -> None:
    state = p.issue_request(SECRET, 50, NOW + 10, NOW, REVEAL)
    state, _ = p.handle_target(state, p.ActionTick(NOW + 11))
    state, effects = p.handle_target(state, lock_event(CH1, 50))
    assert effects == [] and not state.revealed and "expired" in state.refusals[0]


def test_target_claims_a_late_lock_once_the_secret_is_out() -> None:
    state = p.issue_request(SECRET, 50, NOW + 3600, NOW, REVEAL)
    state, _ = p.handle_target(state, lock_event(CH1, 50))
    _, effects = p.handle_target(state, lock_event(CH2, 5))
    assert effects == [p.ChannelDo(CH2, p.ActionLearnSecret(SECRET))]


def test_target_refuses_bad_requests_and_foreign_inputs() -> None:
    for secret, amount, expires in ((b"x", 1, NOW + 1), (bytes(32), 1, NOW + 1), (SECRET, 0, NOW + 1),
                                    (SECRET, 1, NOW)):
        with pytest.raises(LocalFault):
            p.issue_request(secret, amount, expires, NOW)
    state = p.issue_request(SECRET, 50, NOW + 3600, NOW)
    with pytest.raises(LocalFault):
        p.handle_target(state, wire.SecretReveal(SECRET))
    other = p.EventLockReceived(CH1, 1, Lock(5, NOW + 1000, bytes(32)), bytes(20), bytes(20), b"")
    with pytest.raises(LocalFault, match="not for this request"):
        p.handle_target(state, other)


# --- mediator -----------------------------------------------------------------------------------------


def mediator_setup(fees: p.FeePolicy | None = None, deposit_bc: int = 1000) -> Network:
    net = Network("ABCD", {"B": fees or p.FeePolicy()})  # D: a node B has no channel with
    net.open("A", "B")
    net.open("B", "C", deposit_bc, 1000)
    return net


def incoming(net: Network, amount: int, route: list[str],
             expiration: int | None = None) -> p.EventLockReceived:
    exp = net.now + 3 * REVEAL if expiration is None else expiration
    metadata = p.encode_route(tuple(net.nodes[n].address for n in route))
    return p.EventLockReceived(channel_id_of("A", "B"), 9, Lock(amount, exp, HASH), net.nodes["A"].address,
                               net.nodes[route[-1]].address, metadata)


@pytest.mark.parametrize(("route", "amount", "kwargs", "why"), [
    (["C", "B"], 10, {}, "where we"),
    (["B"], 10, {}, "last hop"),
    (["B", "A", "C"], 10, {}, "turns back to the payer"),
    (["B", "C", "B", "C"], 10, {}, "visits a node twice"),
    (["B", "D"], 10, {}, "no open channel"),
    (["B", "C"], 2, {"fees": p.FeePolicy(2, 0)}, "does not cover our fee"),
    (["B", "C"], 10, {"deposit_bc": 5}, "insufficient capacity"),
])
def test_mediator_refuses_to_forward(route: list[str], amount: int, kwargs: dict[str, object],
                                     why: str) -> None:
    net = mediator_setup(**kwargs)  # type: ignore[arg-type]
    b = net.nodes["B"]
    event = incoming(net, amount, route)
    state, effects = p.start_mediation(event, b.channels[channel_id_of("A", "B")], b.by_partner(), b.fees)
    assert effects == [] and state.refusal is not None and why in state.refusal
    assert state.payee_outcome is p.LockOutcome.NONE


def test_mediator_refuses_when_the_incoming_lock_leaves_no_reveal_timeout_downstream() -> None:
    net = mediator_setup()
    b = net.nodes["B"]
    event = incoming(net, 10, ["B", "C"], expiration=net.now + 2 * REVEAL - 1)
    state, effects = p.start_mediation(event, b.channels[channel_id_of("A", "B")], b.by_partner(), b.fees)
    assert effects == [] and state.refusal is not None and "too soon" in state.refusal


def test_mediator_forwards_with_its_fee_and_a_shorter_expiry() -> None:
    net = mediator_setup(p.FeePolicy(1, 10_000))
    b = net.nodes["B"]
    event = incoming(net, 102, ["B", "C"])
    state, effects = p.start_mediation(event, b.channels[channel_id_of("A", "B")], b.by_partner(), b.fees)
    (do,) = effects
    assert isinstance(do, p.ChannelDo) and isinstance(do.action, p.ActionSendLockedTransfer)
    assert (do.action.amount, do.action.expiration) == (100, event.lock.expiration - REVEAL)
    assert p.decode_route(do.action.metadata) == (net.nodes["C"].address,)
    assert state.payee_lock == Lock(100, event.lock.expiration - REVEAL, HASH)
    same, nothing = p.handle_mediator(state, wire.SecretReveal(b"\x00" * 32))
    assert same is state and nothing == []
    with pytest.raises(LocalFault):
        p.handle_mediator(state, p.ActionPay(1, 1))


# --- initiator ----------------------------------------------------------------------------------------


def test_initiator_refuses_bad_arguments() -> None:
    net = mediator_setup()
    a = net.nodes["A"]
    route = net.route("A", ["B", "C"], 10)
    other = p.Route(route.channel_id, (net.nodes["B"].address,), 0)
    for amount, cap, routes in ((0, 1, (route,)), (1, -1, (route,)), (1, 1, ()), (1, 1, (route, other))):
        with pytest.raises(LocalFault):
            p.start_payment(1, a.address, amount, HASH, cap, routes, a.channels, net.now)


def test_initiator_ignores_a_secret_after_its_lock_expired() -> None:
    net = mediator_setup()
    net.nodes["C"].silent = True
    net.pay("A", [["B", "C"]], 10, HASH)
    net.pump()
    state = net.nodes["A"].payments[HASH]
    assert isinstance(state, p.InitiatorState) and state.attempt is not None
    late, effects = p.handle_initiator(state, p.ActionTick(state.attempt.lock.expiration + 1), {})
    assert effects == [p.ChannelDo(state.attempt.route.channel_id, p.ActionExpireLock(HASH))]
    _, effects = p.handle_initiator(late, wire.SecretReveal(SECRET), {})
    assert effects == []


# --- fees and routes ----------------------------------------------------------------------------------


@given(base=st.integers(0, 10**6), ppm=st.integers(0, 10**6), amount=st.integers(1, 10**30))
def test_amount_out_inverts_amount_in(base: int, ppm: int, amount: int) -> None:
    policy = p.FeePolicy(base, ppm)
    assert policy.amount_out(policy.amount_in(amount)) == amount
    assert policy.amount_out(policy.amount_in(amount) - 1) == amount - 1  # one unit short: one unit less


def test_fee_policy_and_route_validation() -> None:
    for base, ppm in ((-1, 0), (0, -1), (0, 10**6 + 1)):
        with pytest.raises(p.BadFeePolicy):
            p.FeePolicy(base, ppm)
    assert p.FeePolicy(5, 0).amount_out(5) == 0
    for metadata in (b"", b"\x00" * 19, b"\x00" * 41):
        with pytest.raises(p.BadRoute):
            p.decode_route(metadata)
    for hops in ((), (b"\x00" * 19,), (b"\x00" * 20,) * 52):
        with pytest.raises(LocalFault):
            p.encode_route(hops)


def expired_attempt() -> tuple[Network, p.InitiatorState]:
    """A pays C through B on one of two routes; C never answers; A's lock has just been expired."""
    net = Network("ABCD")
    for a, b in ("AB", "BC", "AD", "DC"):
        net.open(a, b)
    net.nodes["C"].silent = True
    net.pay("A", [["B", "C"], ["D", "C"]], 10, HASH)
    net.pump()
    state = net.nodes["A"].payments[HASH]
    assert isinstance(state, p.InitiatorState) and state.attempt is not None
    expired, effects = p.handle_initiator(state, p.ActionTick(state.attempt.lock.expiration + 1), {})
    assert effects == [p.ChannelDo(state.attempt.route.channel_id, p.ActionExpireLock(HASH))]
    return net, expired


def test_initiator_counts_a_registration_in_time_as_success_even_after_expiring() -> None:
    net, state = expired_attempt()
    assert state.attempt is not None
    in_time = p.ContractReceiveSecretRegistered(SECRET, state.attempt.lock.expiration)
    done, effects = p.handle_initiator(state, in_time, net.nodes["A"].channels)
    assert done.finished and effects == [p.EventTransferSucceeded(1, HASH, 10, 0)]


def test_initiator_never_locks_again_under_a_secret_that_became_known() -> None:
    net, state = expired_attempt()
    assert state.attempt is not None
    late = p.ContractReceiveSecretRegistered(SECRET, state.attempt.lock.expiration + 1)
    state, effects = p.handle_initiator(state, late, net.nodes["A"].channels)
    assert effects == [] and state.secret == SECRET
    done, effects = p.handle_initiator(state, p.ActionTick(state.now + 1), net.nodes["A"].channels)
    assert [type(e) for e in effects] == [p.EventRouteFailed, p.EventTransferFailed]
    assert not any(isinstance(e, p.ChannelDo) for e in effects) and done.finished


def test_initiator_retries_the_next_route_when_no_secret_is_known() -> None:
    net, state = expired_attempt()
    _, effects = p.handle_initiator(state, p.ActionTick(state.now + 1), net.nodes["A"].channels)
    assert isinstance(effects[0], p.EventRouteFailed) and isinstance(effects[1], p.ChannelDo)
    assert effects[1].channel_id == channel_id_of("A", "D")


def test_initiator_skips_a_route_whose_hops_need_locks_beyond_the_lifetime_limit() -> None:
    net = mediator_setup()
    a = net.nodes["A"]
    route = net.route("A", ["B", "C"], 10)
    too_long = p.Route(route.channel_id, route.hops, route.fees, p.MAX_LOCK_LIFETIME)
    state, effects = p.start_payment(1, a.address, 10, HASH, 10, (too_long, route), a.channels, net.now)
    assert "too far" in state.failures[0]
    (do,) = effects
    assert isinstance(do, p.ChannelDo) and isinstance(do.action, p.ActionSendLockedTransfer)
    assert do.action.expiration == net.now + 3 * REVEAL
