"""Direct payments: each receiver rule, each refusal, pipelining, duplicates and gaps."""

from __future__ import annotations

from dataclasses import replace

import pytest

from channeld import protocol as p
from channeld import wire
from tests.protocol.pair import CHAIN_ID, CHANNEL_ID, CONTRACT, Peer, deliver, make_pair, settle_all


def forge(sender: Peer, nonce: int, transferred: int, amount: int, *, payment_id: int = 1,
          locked: int = 0, chain_id: int = CHAIN_ID, contract: bytes = CONTRACT,
          channel_id: bytes = CHANNEL_ID, signer: p.Signer | None = None) -> wire.Payment:
    """A payment signed by `sender` (or `signer`) with exactly these figures, whatever its state says."""
    root = p.keccak256(b"locks") if locked else wire.ZERO32
    digest = p.balance_proof_digest(chain_id, contract, channel_id, nonce, transferred, locked, root)
    proof = wire.BalanceProof(chain_id, contract, channel_id, nonce, transferred, locked, root,
                              (signer or sender.signer).sign(digest))
    return wire.Payment(proof, payment_id, amount, b"")


def refuse(peer: Peer, event: object, error: type[Exception], match: str | None = None) -> None:
    """The input raises `error` and leaves the peer's state exactly as it was."""
    before, record = peer.state, p.to_record(peer.state)
    with pytest.raises(error, match=match):
        p.handle(peer.state, event, peer.signer)
    assert peer.state is before and p.to_record(peer.state) == record


def test_payment_moves_balance_and_both_sides_agree() -> None:
    alice, bob = make_pair(1000, 500)
    alice.feed(p.ActionPay(7, 300, b"invoice 7"))
    deliver(alice, bob)
    assert bob.state.partner.transferred == 300
    assert bob.effects[-1] == p.EventPaymentReceived(7, 300, 1, b"invoice 7")
    deliver(bob, alice)
    assert alice.state.in_flight == ()
    assert alice.effects[-1] == p.EventPaymentSent(7, 300, 1)
    for peer, ours, theirs in ((alice, 700, 800), (bob, 800, 700)):
        assert (peer.state.our_balance(), peer.state.partner_balance()) == (ours, theirs)


def test_payer_persists_before_sending() -> None:
    alice, _ = make_pair()
    effects = alice.feed(p.ActionPay(1, 10))
    assert [type(e) for e in effects] == [p.Persist, p.Send]
    assert p.from_record(effects[0].record).our.proof == effects[1].message.balance_proof  # type: ignore[union-attr]


def test_receiver_persists_before_acknowledging() -> None:
    alice, bob = make_pair()
    alice.feed(p.ActionPay(1, 10))
    effects = bob.feed(alice.outbox.pop())
    assert [type(e) for e in effects] == [p.Persist, p.Send, p.EventPaymentReceived]
    assert isinstance(effects[1], p.Send) and isinstance(effects[1].message, wire.PaymentAccepted)


def test_payment_received_capacity_counts_what_the_payer_received() -> None:
    alice, bob = make_pair(100, 100)
    bob.feed(p.ActionPay(1, 60))
    settle_all(alice, bob)
    alice.feed(p.ActionPay(2, 160))  # 100 deposit + 60 received
    assert deliver(alice, bob) == []
    assert bob.state.partner_balance() == 0


@pytest.mark.parametrize(("field", "value"), [
    ("chain_id", CHAIN_ID + 1), ("contract", bytes(20)), ("channel_id", bytes(32)),
])
def test_refuses_proof_for_another_channel(field: str, value: object) -> None:
    alice, bob = make_pair()
    refuse(bob, forge(alice, 1, 10, 10, **{field: value}), p.WrongChannel)  # type: ignore[arg-type]


def test_refuses_proof_signed_by_someone_else() -> None:
    alice, bob = make_pair()
    refuse(bob, forge(alice, 1, 10, 10, signer=p.Signer(p.keccak256(b"mallory"))), p.InvalidSignature)


def test_refuses_proof_signed_by_the_receiver_itself() -> None:
    alice, bob = make_pair()
    refuse(bob, forge(alice, 1, 10, 10, signer=bob.signer), p.InvalidSignature)


def test_refuses_tampered_amount_after_signing() -> None:
    alice, bob = make_pair()
    msg = forge(alice, 1, 10, 10)
    tampered = replace(msg, balance_proof=replace(msg.balance_proof, transferred_amount=5), amount=5)
    refuse(bob, tampered, p.InvalidSignature)


def test_refuses_transferred_not_grown_by_exactly_the_payment() -> None:
    alice, bob = make_pair()
    refuse(bob, forge(alice, 1, 10, 9), p.AmountMismatch, "plus the payment")


def test_refuses_a_decrease_of_transferred() -> None:
    alice, bob = make_pair()
    bob.feed(forge(alice, 1, 50, 50))
    refuse(bob, forge(alice, 2, 40, 10), p.AmountMismatch)


def test_refuses_a_direct_payment_that_changes_locks() -> None:
    alice, bob = make_pair()
    refuse(bob, forge(alice, 1, 10, 10, locked=5), p.AmountMismatch, "locked amount")


def test_refuses_payment_beyond_the_payers_capacity() -> None:
    alice, bob = make_pair(100, 100)
    refuse(bob, forge(alice, 1, 101, 101), p.InsufficientCapacity)


def test_capacity_counts_a_pending_withdraw() -> None:
    alice, bob = make_pair(100, 100)
    alice.feed(p.ActionWithdraw(60, bob.state.now + 3600))
    settle_all(alice, bob)
    assert bob.state.partner.withdraw is not None
    refuse(bob, forge(alice, 1, 41, 41), p.InsufficientCapacity)
    with pytest.raises(p.NotEnoughCapacity):
        p.handle(alice.state, p.ActionPay(1, 41), alice.signer)


def test_pay_more_than_we_have_is_a_local_fault_and_changes_nothing() -> None:
    alice, _ = make_pair(100, 100)
    refuse(alice, p.ActionPay(1, 101), p.NotEnoughCapacity)
    refuse(alice, p.ActionPay(1, 0), p.IllegalAction)
    refuse(alice, p.ActionPay(1, 2**256), p.NotEnoughCapacity)


def test_pipelined_payments_are_accepted_in_order() -> None:
    alice, bob = make_pair()
    for i in range(1, 6):
        alice.feed(p.ActionPay(i, i))
    assert [m.balance_proof.nonce for m in alice.outbox] == [1, 2, 3, 4, 5]  # type: ignore[attr-defined]
    assert len(alice.state.in_flight) == 5
    settle_all(alice, bob)
    assert bob.state.partner.transferred == 15 and alice.state.in_flight == ()
    assert [e.payment_id for e in alice.effects if isinstance(e, p.EventPaymentSent)] == [1, 2, 3, 4, 5]


def test_out_of_order_proofs_are_held_and_applied_when_the_gap_fills() -> None:
    alice, bob = make_pair()
    for i in range(1, 4):
        alice.feed(p.ActionPay(i, 10))
    first, second, third = alice.outbox
    bob.feed(third)
    bob.feed(second)
    assert bob.state.partner.nonce == 0 and len(bob.state.held) == 2
    assert not bob.outbox, "nothing is acknowledged before it is applied"
    bob.feed(first)
    assert bob.state.partner.nonce == 3 and bob.state.held == ()
    assert [m.nonce for m in bob.outbox] == [1, 2, 3]  # type: ignore[attr-defined]


def test_duplicate_payment_is_acknowledged_again_without_change() -> None:
    alice, bob = make_pair()
    alice.feed(p.ActionPay(1, 10))
    msg = alice.outbox[0]
    bob.feed(msg)
    state = bob.state
    effects = bob.feed(msg)
    assert bob.state is state
    assert effects == [p.Send(wire.PaymentAccepted(CHANNEL_ID, 1, 1))]


def test_duplicate_held_payment_is_idempotent() -> None:
    alice, bob = make_pair()
    alice.feed(p.ActionPay(1, 10))
    alice.feed(p.ActionPay(2, 10))
    bob.feed(alice.outbox[1])
    state = bob.state
    assert bob.feed(alice.outbox[1]) == [] and bob.state is state


def test_older_duplicate_is_acknowledged_only_if_really_signed() -> None:
    alice, bob = make_pair()
    bob.feed(forge(alice, 1, 10, 10))
    bob.feed(forge(alice, 2, 20, 10))
    assert bob.feed(forge(alice, 1, 10, 10))[0] == p.Send(wire.PaymentAccepted(CHANNEL_ID, 1, 1))
    refuse(bob, forge(alice, 1, 10, 10, signer=bob.signer), p.InvalidSignature)


def test_conflicting_proof_for_an_accepted_nonce_is_refused() -> None:
    alice, bob = make_pair()
    bob.feed(forge(alice, 1, 10, 10))
    refuse(bob, forge(alice, 1, 20, 20), p.ConflictingProof)


def test_conflicting_held_proof_is_refused() -> None:
    alice, bob = make_pair()
    bob.feed(forge(alice, 3, 30, 10))
    refuse(bob, forge(alice, 3, 40, 10), p.ConflictingProof)


def test_gap_beyond_the_hold_bound_is_refused() -> None:
    alice, bob = make_pair()
    refuse(bob, forge(alice, p.MAX_HELD_PROOFS + 2, 10, 10), p.NonceGapTooLarge)
    bob.feed(forge(alice, p.MAX_HELD_PROOFS + 1, 10, 10))
    assert len(bob.state.held) == 1


def test_held_proof_that_fails_when_its_turn_comes_is_refused_and_dropped() -> None:
    alice, bob = make_pair()
    bob.feed(forge(alice, 2, 25, 10, payment_id=2))  # 10 + 10 would be 20, not 25
    effects = bob.feed(forge(alice, 1, 10, 10, payment_id=1))
    sent = [e.message for e in effects if isinstance(e, p.Send)]
    assert sent[0] == wire.PaymentAccepted(CHANNEL_ID, 1, 1)
    assert isinstance(sent[1], wire.PaymentRefused) and sent[1].code == p.AmountMismatch.code
    assert bob.state.held == () and bob.state.partner.nonce == 1


def test_accepted_for_a_nonce_we_never_signed_is_refused() -> None:
    alice, _ = make_pair()
    alice.feed(p.ActionPay(1, 10))
    refuse(alice, wire.PaymentAccepted(CHANNEL_ID, 2, 1), p.StateMismatch)
    refuse(alice, wire.PaymentAccepted(bytes(32), 1, 1), p.WrongChannel)


def test_duplicate_acceptance_is_idempotent() -> None:
    alice, bob = make_pair()
    alice.feed(p.ActionPay(1, 10))
    settle_all(alice, bob)
    state = alice.state
    assert alice.feed(wire.PaymentAccepted(CHANNEL_ID, 1, 1)) == [] and alice.state is state


def test_refusal_keeps_the_proof_in_flight_and_notifies() -> None:
    alice, _bob = make_pair()
    alice.feed(p.ActionPay(9, 10))
    effects = alice.feed(wire.PaymentRefused(CHANNEL_ID, 1, 9, 7, "no capacity"))
    assert effects == [p.EventPaymentRefused(9, 1, 7, "no capacity")]
    assert len(alice.state.in_flight) == 1
    refuse(alice, wire.PaymentRefused(CHANNEL_ID, 2, 9, 7, "x"), p.StateMismatch)


def test_refusal_for_builds_the_answer_with_the_errors_code() -> None:
    alice, bob = make_pair(10, 10)
    msg = forge(alice, 1, 11, 11, payment_id=4)
    with pytest.raises(p.InsufficientCapacity) as caught:
        p.handle(bob.state, msg, bob.signer)
    answer = p.refusal_for(bob.state, msg, caught.value)
    assert (answer.nonce, answer.payment_id, answer.code) == (1, 4, p.InsufficientCapacity.code)
    with pytest.raises(p.InvalidSignature) as bad_sig:
        p.handle(bob.state, forge(alice, 1, 1, 1, signer=bob.signer), bob.signer)
    assert p.refusal_code(bad_sig.value) == 26


def test_too_many_in_flight() -> None:
    alice, _ = make_pair(10**6, 0)
    for i in range(p.MAX_IN_FLIGHT):
        alice.feed(p.ActionPay(i, 1))
    refuse(alice, p.ActionPay(99, 1), p.TooManyInFlight)
