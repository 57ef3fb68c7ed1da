"""Withdraw, cooperative settle, unilateral close and the chain's events."""

from __future__ import annotations

from dataclasses import replace

import pytest

from channeld import protocol as p
from channeld import wire
from tests.protocol.pair import CHALLENGE, CHANNEL_ID, NOW, Peer, deliver, make_pair, settle_all
from tests.protocol.test_payments import refuse

LATER = NOW + 3600


def countersigned_withdraw(alice: Peer, bob: Peer, total: int) -> p.ContractSendWithdraw:
    alice.feed(p.ActionWithdraw(total, LATER))
    settle_all(alice, bob)
    submit = alice.effects[-1]
    assert isinstance(submit, p.ContractSendWithdraw)
    return submit


def test_withdraw_is_signed_by_both_and_submitted_by_the_requester() -> None:
    alice, bob = make_pair(1000, 1000)
    submit = countersigned_withdraw(alice, bob, 400)
    digest = p.withdraw_digest(alice.state.chain_id, alice.state.contract, CHANNEL_ID, alice.signer.address,
                               400, LATER, alice.signer.address)
    assert p.recover_address(digest, submit.participant_signature) == alice.signer.address
    assert p.recover_address(digest, submit.partner_signature) == bob.signer.address
    for peer in (alice, bob):
        assert peer.state.total_held() == 1600
    assert alice.state.our_balance() == 600 and bob.state.partner_balance() == 600


def test_chain_withdraw_event_clears_the_pending_terms() -> None:
    alice, bob = make_pair(1000, 1000)
    countersigned_withdraw(alice, bob, 400)
    for peer in (alice, bob):
        peer.feed(p.ContractReceiveWithdraw(alice.signer.address, 400))
    assert alice.state.our.withdraw is None and bob.state.partner.withdraw is None
    assert alice.state.our.withdrawn == 400 and alice.state.our_balance() == 600


def test_withdraw_expires_on_both_sides() -> None:
    alice, bob = make_pair(1000, 1000)
    countersigned_withdraw(alice, bob, 400)
    for peer in (alice, bob):
        effects = peer.feed(p.ActionTick(LATER + 1))
        assert p.EventWithdrawExpired(alice.signer.address, 400) in effects
    assert alice.state.our_balance() == 1000 and bob.state.partner_balance() == 1000


@pytest.mark.parametrize(("total", "expiry", "error"), [
    (0, LATER, p.IllegalAction),                      # not above the current total
    (1001, LATER, p.NotEnoughCapacity),              # more than we hold
    (10, NOW + 10, p.IllegalAction),                 # expires too soon to be mined
    (10, NOW + 10**8, p.IllegalAction),              # binds the channel for too long
])
def test_local_withdraw_refusals(total: int, expiry: int, error: type[Exception]) -> None:
    alice, _ = make_pair(1000, 1000)
    refuse(alice, p.ActionWithdraw(total, expiry), error)


def test_only_one_withdraw_at_a_time() -> None:
    alice, _ = make_pair()
    alice.feed(p.ActionWithdraw(10, LATER))
    refuse(alice, p.ActionWithdraw(20, LATER), p.IllegalAction, "already pending")


def request_from(alice: Peer, total: int, expiry: int = LATER, **changes: object) -> wire.WithdrawRequest:
    digest = p.withdraw_digest(alice.state.chain_id, alice.state.contract, CHANNEL_ID, alice.signer.address,
                               total, expiry, alice.signer.address)
    msg = wire.WithdrawRequest(alice.state.chain_id, alice.state.contract, CHANNEL_ID, alice.signer.address,
                               total, expiry, alice.signer.address, alice.signer.sign(digest))
    return replace(msg, **changes)  # type: ignore[arg-type]


def test_partner_withdraw_refusals() -> None:
    alice, bob = make_pair(1000, 1000)
    refuse(bob, request_from(alice, 1001), p.BadWithdraw, "exceeds")
    refuse(bob, request_from(alice, 10, NOW + 5), p.BadWithdraw, "expiry")
    refuse(bob, request_from(alice, 0), p.BadWithdraw, "must exceed")
    refuse(bob, request_from(alice, 10, total_withdraw=11), p.InvalidSignature)
    refuse(bob, request_from(alice, 10, participant=bob.signer.address), p.WrongChannel)
    refuse(bob, request_from(alice, 10, channel_id=bytes(32)), p.WrongChannel)


def test_repeated_withdraw_request_gets_the_same_countersignature() -> None:
    alice, bob = make_pair()
    request = request_from(alice, 10)
    first = bob.feed(request)[-1]
    state = bob.state
    assert bob.feed(request) == [first] and bob.state is state


def test_withdraw_signature_must_match_our_request() -> None:
    alice, bob = make_pair()
    alice.feed(p.ActionWithdraw(10, LATER))
    deliver(alice, bob)
    signature = bob.outbox.pop()
    assert isinstance(signature, wire.WithdrawSignature)
    refuse(alice, replace(signature, total_withdraw=11), p.BadWithdraw)
    refuse(alice, replace(signature, signature=alice.state.our.withdraw.participant_signature),  # type: ignore[union-attr]
           p.InvalidSignature)
    alice.feed(signature)
    assert alice.feed(signature) == []


def test_cooperative_settle_pays_out_the_latest_balances() -> None:
    alice, bob = make_pair(1000, 500)
    alice.feed(p.ActionPay(1, 300))
    bob.feed(p.ActionPay(2, 50))
    settle_all(alice, bob)
    bob.feed(p.ActionCooperativeSettle())
    settle_all(alice, bob)
    submit = bob.effects[-1]
    assert isinstance(submit, p.ContractSendCooperativeSettle)
    payout = {submit.participant1: submit.amount1, submit.participant2: submit.amount2}
    assert payout == {alice.signer.address: 750, bob.signer.address: 750}
    digest = p.cooperative_settle_digest(alice.state.chain_id, alice.state.contract, CHANNEL_ID,
                                         submit.participant1, submit.amount1, submit.receiver1,
                                         submit.participant2, submit.amount2, submit.receiver2)
    assert p.recover_address(digest, submit.signature1) == submit.participant1
    assert p.recover_address(digest, submit.signature2) == submit.participant2


def test_no_payments_once_a_settle_is_agreed() -> None:
    alice, bob = make_pair()
    alice.feed(p.ActionCooperativeSettle())
    deliver(alice, bob)
    refuse(bob, p.ActionPay(1, 1), p.IllegalAction)
    refuse(alice, p.ActionPay(1, 1), p.IllegalAction)


def test_settle_refused_while_payments_are_in_flight() -> None:
    alice, bob = make_pair()
    alice.feed(p.ActionPay(1, 10))
    refuse(alice, p.ActionCooperativeSettle(), p.IllegalAction, "not yet accepted")
    deliver(alice, bob)
    bob.outbox.clear()
    bob.feed(p.ActionCooperativeSettle())
    request = bob.outbox.pop()
    refuse(alice, request, p.BadSettle, "not yet accepted")


def test_settle_with_other_amounts_is_refused() -> None:
    alice, bob = make_pair(1000, 1000)
    alice.feed(p.ActionCooperativeSettle())
    request = alice.outbox.pop()
    assert isinstance(request, wire.SettleRequest)
    greedy = replace(request, amount1=request.amount1 + 1, amount2=request.amount2 - 1)
    refuse(bob, greedy, p.BadSettle, "differ")
    refuse(bob, replace(request, receiver1=bytes(20), receiver2=bytes(20)), p.BadSettle)
    refuse(bob, replace(request, signature=bob.signer.sign(b"\x01" * 32)), p.InvalidSignature)


def test_unilateral_close_by_partner_triggers_update_then_settle() -> None:
    alice, bob = make_pair()
    alice.feed(p.ActionPay(1, 100))
    settle_all(alice, bob)
    bob.feed(p.ActionClose())
    assert bob.effects[-1] == p.ContractSendClose(CHANNEL_ID, alice.state.our.proof)
    deadline = NOW + CHALLENGE
    effects = alice.feed(p.ContractReceiveClosed(bob.signer.address, deadline))
    assert effects[1:] == []  # alice received nothing from bob: nothing of bob's to submit
    effects = bob.feed(p.ContractReceiveClosed(bob.signer.address, deadline))
    assert not any(isinstance(e, p.ContractSendUpdateProof) for e in effects)
    refuse(alice, p.ActionPay(2, 1), p.IllegalAction, "CLOSED")
    assert p.ContractSendSettle(CHANNEL_ID) not in alice.feed(p.ActionTick(deadline))
    effects = alice.feed(p.ActionTick(deadline + 1))
    assert p.ContractSendSettle(CHANNEL_ID) in effects
    assert p.ContractSendSettle(CHANNEL_ID) not in alice.feed(p.ActionTick(deadline + 2))
    alice.feed(p.ContractReceiveSettled(900, 1100))
    assert alice.state.status is p.ChannelStatus.SETTLED
    refuse(alice, p.ActionClose(), p.IllegalAction, "SETTLED")


def test_non_closer_submits_the_closers_latest_proof() -> None:
    alice, bob = make_pair()
    alice.feed(p.ActionPay(1, 100))
    settle_all(alice, bob)
    effects = bob.feed(p.ContractReceiveClosed(alice.signer.address, NOW + CHALLENGE))
    assert effects[-1] == p.ContractSendUpdateProof(CHANNEL_ID, alice.state.our.proof,  # type: ignore[arg-type]
                                                    NOW + CHALLENGE)


def test_partner_message_after_close_is_an_illegal_input() -> None:
    alice, bob = make_pair()
    alice.feed(p.ActionPay(1, 10))
    bob.feed(p.ContractReceiveClosed(bob.signer.address, NOW + CHALLENGE))
    refuse(bob, alice.outbox.pop(), p.IllegalInput, "Payment is not allowed while the channel is CLOSED")


def test_chain_events_for_strangers_are_local_faults() -> None:
    alice, _ = make_pair()
    for event in (p.ContractReceiveDeposit(bytes(20), 5), p.ContractReceiveWithdraw(bytes(20), 5),
                  p.ContractReceiveClosed(bytes(20), NOW)):
        refuse(alice, event, p.IllegalAction, "not a participant")


def test_deposit_totals_only_grow() -> None:
    alice, _ = make_pair(1000, 1000)
    state = alice.state
    assert alice.feed(p.ContractReceiveDeposit(alice.signer.address, 900)) == []
    assert alice.state is state
    alice.feed(p.ContractReceiveDeposit(alice.signer.address, 1500))
    assert alice.state.our.deposit == 1500


@pytest.mark.parametrize("event", [
    p.ContractReceiveDeposit(b"", -1), p.ContractReceiveWithdraw(b"", 2**256), p.ActionTick(-5),
    p.ActionTick(1.5),  # type: ignore[arg-type]
])
def test_out_of_range_chain_inputs_are_local_faults(event: object) -> None:
    alice, _ = make_pair()
    if isinstance(event, p.ContractReceiveDeposit | p.ContractReceiveWithdraw):
        event = replace(event, participant=alice.signer.address)
    refuse(alice, event, p.IllegalAction, "must be an integer")


def test_a_tick_that_only_moves_the_clock_is_not_persisted() -> None:
    """Ticks come every block for every channel: only a material change may cost a store write."""
    alice, _ = make_pair(1000, 1000)
    new, effects = p.handle(alice.state, p.ActionTick(LATER), alice.signer)
    assert effects == [] and new.now == LATER
    assert replace(new, now=alice.state.now) == alice.state


def test_a_tick_that_expires_a_withdraw_is_persisted_first() -> None:
    alice, bob = make_pair(1000, 1000)
    countersigned_withdraw(alice, bob, 400)
    new, effects = p.handle(alice.state, p.ActionTick(LATER + 1), alice.signer)
    assert isinstance(effects[0], p.Persist) and effects[0].record == p.to_record(new)
    assert new.our.withdraw is None
