"""Every lock rule of the channel machine and each refusal (proto/locks.md, proto/state-machine.md)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_abi.packed import encode_packed

from channeld import protocol as p
from channeld import wire
from channeld.wire import Lock, secrethash_of
from tests.protocol.pair import CHAIN_ID, CHANNEL_ID, CONTRACT, NOW, Peer, deliver, make_pair, settle_all
from tests.protocol.test_payments import refuse

SECRET = b"\x11" * 32
HASH = secrethash_of(SECRET)
EXPIRY = NOW + 3600


def secret(i: int) -> bytes:
    return (i + 1).to_bytes(32, "big")  # never the zero secret


def send_lock(peer: Peer, amount: int = 10, secret_: bytes = SECRET, expiration: int = EXPIRY,
              payment_id: int = 1) -> wire.LockedTransfer:
    peer.feed(p.ActionSendLockedTransfer(payment_id, amount, expiration, secrethash_of(secret_),
                                         peer.signer.address, bytes(20)))
    msg = peer.outbox[-1]
    assert isinstance(msg, wire.LockedTransfer)
    return msg


def proof(sender: Peer, nonce: int, transferred: int, locked: int, root: bytes) -> wire.BalanceProof:
    digest = p.balance_proof_digest(CHAIN_ID, CONTRACT, CHANNEL_ID, nonce, transferred, locked, root)
    return wire.BalanceProof(CHAIN_ID, CONTRACT, CHANNEL_ID, nonce, transferred, locked, root,
                             sender.signer.sign(digest))


def forged_transfer(sender: Peer, lock: Lock, *, nonce: int = 1, transferred: int = 0,
                    locks: tuple[Lock, ...] | None = None, locked: int | None = None) -> wire.LockedTransfer:
    """A locked transfer signed by `sender` with exactly these figures (defaults: the honest ones)."""
    committed = (lock,) if locks is None else locks
    amount = sum(x.amount for x in committed) if locked is None else locked
    bp = proof(sender, nonce, transferred, amount, p.locks_root(committed))
    return wire.LockedTransfer(bp, lock, 1, sender.signer.address, bytes(20), b"")


def locked_pair(amount: int = 10, deposit: int = 1000) -> tuple[Peer, Peer]:
    """Alice has locked `amount` for Bob under HASH, accepted by both."""
    alice, bob = make_pair(deposit, deposit)
    send_lock(alice, amount)
    settle_all(alice, bob)
    return alice, bob


# --- the lock format ----------------------------------------------------------------------------------


def test_packed_lock_and_locks_root_match_abi_encode_packed() -> None:
    locks = (Lock(10, EXPIRY, HASH), Lock(2**200, 2**63, secrethash_of(secret(2))))
    packed = b"".join(encode_packed(["uint256", "uint256", "bytes32"], [x.amount, x.expiration, x.secrethash])
                      for x in locks)
    assert p.pack_locks(locks) == packed and len(p.pack_lock(locks[0])) == 96
    assert p.locks_root(locks) == p.keccak256(packed)
    assert p.locks_root(()) == bytes(32)
    assert p.locks_root(locks[::-1]) != p.locks_root(locks)  # order is part of the commitment


# --- sending and receiving a lock ---------------------------------------------------------------------


def test_locked_transfer_is_accepted_and_counts_against_the_sender() -> None:
    alice, bob = make_pair(1000, 1000)
    msg = send_lock(alice, 40)
    assert msg.balance_proof.locked_amount == 40 and msg.balance_proof.locks_root == p.locks_root((msg.lock,))
    effects = bob.feed(alice.outbox.pop())
    assert [type(e) for e in effects] == [p.Persist, p.Send, p.EventLockReceived]
    assert bob.state.partner.locks == (msg.lock,)
    assert (bob.state.partner_balance(), bob.state.our_balance()) == (960, 1000)
    deliver(bob, alice)
    assert alice.state.locks_in_flight == () and alice.state.our_balance() == 960


def test_unlock_turns_the_lock_into_a_transfer() -> None:
    alice, bob = locked_pair(40)
    alice.feed(p.ActionUnlock(SECRET, 1))
    settle_all(alice, bob)
    assert bob.effects[-1] == p.EventLockUnlocked(CHANNEL_ID, 1, HASH, 40)
    for peer, ours, theirs in ((alice, 960, 1040), (bob, 1040, 960)):
        assert (peer.state.our_balance(), peer.state.partner_balance()) == (ours, theirs)
    assert bob.state.partner.locks == () and bob.state.partner.locked == 0
    assert bob.state.partner.proof is not None and bob.state.partner.proof.locks_root == bytes(32)


def test_expired_lock_is_removed_and_the_amount_returns() -> None:
    alice, bob = locked_pair(40)
    for peer in (alice, bob):
        peer.feed(p.ActionTick(EXPIRY + 1))
    alice.feed(p.ActionExpireLock(HASH))
    settle_all(alice, bob)
    assert bob.effects[-1] == p.EventLockExpired(CHANNEL_ID, HASH, 40)
    assert alice.state.our_balance() == bob.state.partner_balance() == 1000
    assert bob.state.partner.locks == ()


def test_locks_are_kept_in_the_order_they_were_added() -> None:
    alice, bob = make_pair()
    for i in range(3):
        send_lock(alice, 5 + i, secret(i))
    settle_all(alice, bob)
    assert [x.amount for x in bob.state.partner.locks] == [5, 6, 7]
    alice.feed(p.ActionUnlock(secret(1)))
    settle_all(alice, bob)
    assert [x.amount for x in bob.state.partner.locks] == [5, 7]
    assert bob.state.partner.proof is not None
    assert bob.state.partner.proof.locks_root == p.locks_root(bob.state.partner.locks)


# --- receiver refusals --------------------------------------------------------------------------------


def test_refuses_a_wrong_locked_amount() -> None:
    alice, bob = make_pair()
    lock = Lock(10, EXPIRY, HASH)
    refuse(bob, forged_transfer(alice, lock, locked=11), p.AmountMismatch, "locked amount")


def test_refuses_a_locks_root_that_does_not_commit_to_the_locks() -> None:
    alice, bob = make_pair()
    lock = Lock(10, EXPIRY, HASH)
    other = Lock(10, EXPIRY + 1, HASH)
    refuse(bob, forged_transfer(alice, lock, locks=(other,)), p.AmountMismatch, "locks root")


def test_refuses_a_locked_transfer_that_moves_transferred() -> None:
    alice, bob = make_pair()
    refuse(bob, forged_transfer(alice, Lock(10, EXPIRY, HASH), transferred=5), p.AmountMismatch)


@pytest.mark.parametrize(("expiration", "match"), [
    (NOW + p.DEFAULT_REVEAL_TIMEOUT - 1, "too soon"),
    (NOW, "too soon"),
    (NOW + p.MAX_LOCK_LIFETIME + 1, "too far"),
])
def test_a_sender_refuses_to_lock_too_soon_or_too_far(expiration: int, match: str) -> None:
    alice, _ = make_pair()
    refuse(alice, p.ActionSendLockedTransfer(1, 10, expiration, HASH, bytes(20), bytes(20)), p.IllegalAction,
           match)


def test_a_receiver_refuses_an_expiry_too_far() -> None:
    alice, bob = make_pair()
    refuse(bob, forged_transfer(alice, Lock(10, NOW + p.MAX_LOCK_LIFETIME + 1, HASH)), p.BadLock, "too far")


@pytest.mark.parametrize("expiration", [NOW + p.DEFAULT_REVEAL_TIMEOUT - 1, NOW - 1])
def test_a_receiver_accepts_a_lock_that_expires_too_soon_for_it(expiration: int) -> None:
    """Its clock may run ahead of the sender's: refusing the proof would stick the channel (a refused nonce
    is never replaced); the sender takes the lock back with `LockExpired` once it sees it expired."""
    alice, bob = make_pair()
    lock = Lock(10, expiration, HASH)
    effects = bob.feed(forged_transfer(alice, lock))
    assert wire.PaymentAccepted(CHANNEL_ID, 1, 1) in [e.message for e in effects if isinstance(e, p.Send)]
    assert bob.state.partner.locks == (lock,)


def test_refuses_a_lock_on_the_hash_of_the_zero_secret() -> None:
    alice, bob = make_pair()
    zero = secrethash_of(bytes(32))
    refuse(bob, forged_transfer(alice, Lock(10, EXPIRY, zero)), p.BadLock, "known to all")
    refuse(alice, p.ActionSendLockedTransfer(1, 10, EXPIRY, zero, bytes(20), bytes(20)), p.IllegalAction,
           "known to all")


def test_accepts_the_expiry_bounds_themselves() -> None:
    for expiration in (NOW + p.DEFAULT_REVEAL_TIMEOUT, NOW + p.MAX_LOCK_LIFETIME):
        alice, bob = make_pair()
        bob.feed(forged_transfer(alice, Lock(10, expiration, HASH)))
        assert len(bob.state.partner.locks) == 1


def test_refuses_more_than_32_pending_locks() -> None:
    alice, bob = make_pair()
    for i in range(p.MAX_LOCKS):
        send_lock(alice, 1, secret(i))
    settle_all(alice, bob)
    assert len(bob.state.partner.locks) == 32
    refuse(alice, p.ActionSendLockedTransfer(1, 1, EXPIRY, secrethash_of(secret(99)), bytes(20), bytes(20)),
           p.IllegalAction, "at most 32")
    locks = bob.state.partner.locks
    extra = Lock(1, EXPIRY, secrethash_of(secret(99)))
    refuse(bob, forged_transfer(alice, extra, nonce=33, locks=(*locks, extra)), p.BadLock, "at most 32")


def test_refuses_a_second_lock_with_the_same_secrethash() -> None:
    alice, bob = locked_pair(10)
    lock = Lock(5, EXPIRY, HASH)
    first = bob.state.partner.locks[0]
    refuse(bob, forged_transfer(alice, lock, nonce=2, locks=(first, lock)), p.BadLock, "already pending")


def test_refuses_a_lock_beyond_the_senders_capacity() -> None:
    alice, bob = make_pair(100, 100)
    refuse(bob, forged_transfer(alice, Lock(101, EXPIRY, HASH)), p.InsufficientCapacity)
    refuse(alice, p.ActionSendLockedTransfer(1, 101, EXPIRY, HASH, bytes(20), bytes(20)), p.NotEnoughCapacity)


def test_refuses_an_unlock_with_an_unknown_secret() -> None:
    alice, bob = locked_pair(10)
    bp = proof(alice, 2, 10, 0, bytes(32))
    refuse(bob, wire.Unlock(bp, secret(7), 1), p.UnknownLock)
    refuse(alice, p.ActionUnlock(secret(7)), p.IllegalAction, "no lock of ours")


def test_refuses_an_unlock_that_does_not_move_exactly_the_lock_amount() -> None:
    alice, bob = locked_pair(10)
    refuse(bob, wire.Unlock(proof(alice, 2, 9, 0, bytes(32)), SECRET, 1), p.AmountMismatch, "transferred")
    refuse(bob, wire.Unlock(proof(alice, 2, 10, 10, p.locks_root(bob.state.partner.locks)), SECRET, 1),
           p.AmountMismatch, "locked amount")


def test_refuses_a_lock_expired_before_the_expiration() -> None:
    alice, bob = locked_pair(10)
    bob.feed(p.ActionTick(EXPIRY))  # expiration itself: a registration now would still count
    refuse(bob, wire.LockExpired(proof(alice, 2, 0, 0, bytes(32)), HASH), p.LockNotExpired, "expires at")
    refuse(alice, p.ActionExpireLock(HASH), p.IllegalAction, "expires at")


def test_refuses_a_lock_expired_whose_secret_was_registered_in_time() -> None:
    alice, bob = locked_pair(10)
    for peer in (alice, bob):
        peer.feed(p.ContractReceiveSecretRegistered(SECRET, EXPIRY))
        peer.feed(p.ActionTick(EXPIRY + 100))
    refuse(bob, wire.LockExpired(proof(alice, 2, 0, 0, bytes(32)), HASH), p.LockNotExpired, "registered")
    refuse(alice, p.ActionExpireLock(HASH), p.IllegalAction, "registered")


def test_refuses_a_lock_expired_for_an_unknown_lock_or_with_wrong_figures() -> None:
    alice, bob = locked_pair(10)
    bob.feed(p.ActionTick(EXPIRY + 1))
    refuse(bob, wire.LockExpired(proof(alice, 2, 0, 0, bytes(32)), secrethash_of(secret(5))), p.UnknownLock)
    refuse(bob, wire.LockExpired(proof(alice, 2, 10, 0, bytes(32)), HASH), p.AmountMismatch)
    refuse(alice, p.ActionExpireLock(secrethash_of(secret(5))), p.IllegalAction)


def test_lock_refusal_codes() -> None:
    assert [p.refusal_code(e("x")) for e in (p.BadLock, p.UnknownLock, p.LockNotExpired)] == [27, 28, 29]


def test_lock_messages_are_illegal_once_closed() -> None:
    alice, bob = make_pair()
    bob.feed(p.ContractReceiveClosed(alice.signer.address, NOW + 500))
    refuse(bob, forged_transfer(alice, Lock(10, EXPIRY, HASH)), p.IllegalInput, "CLOSED")
    refuse(bob, p.ActionSendLockedTransfer(1, 1, EXPIRY, HASH, bytes(20), bytes(20)), p.IllegalAction)


def test_lock_refused_while_a_cooperative_settle_is_in_progress_and_settle_needs_no_locks() -> None:
    alice, _bob = make_pair()
    alice.feed(p.ActionCooperativeSettle())
    refuse(alice, p.ActionSendLockedTransfer(1, 1, EXPIRY, HASH, bytes(20), bytes(20)), p.IllegalAction)
    alice2, _bob2 = locked_pair(10)
    refuse(alice2, p.ActionCooperativeSettle(), p.IllegalAction, "locks are pending")


# --- sequencing: lock messages share the proof pipeline with payments ----------------------------------


def test_lock_messages_out_of_order_are_held_then_applied() -> None:
    alice, bob = make_pair()
    send_lock(alice, 10)
    alice.feed(p.ActionPay(2, 5))
    first, second = alice.outbox
    bob.feed(second)
    assert bob.state.held == (second,) and bob.state.partner.nonce == 0
    bob.feed(first)
    assert bob.state.partner.nonce == 2 and bob.state.partner.locks and bob.state.held == ()
    assert bob.state.partner.proof is not None and bob.state.partner.proof.locked_amount == 10


def test_a_duplicate_locked_transfer_is_acknowledged_again_and_changes_nothing() -> None:
    alice, bob = make_pair()
    msg = send_lock(alice, 10)
    bob.feed(msg)
    state = bob.state
    effects = bob.feed(msg)
    assert bob.state is state and effects == [p.Send(wire.PaymentAccepted(CHANNEL_ID, 1, 1))]


def test_reestablish_resends_payments_and_lock_messages_in_nonce_order() -> None:
    alice, _bob = make_pair()
    alice.feed(p.ActionPay(1, 5))
    send_lock(alice, 10)
    alice.feed(p.ActionPay(3, 5))
    sent = list(alice.outbox)
    alice.outbox.clear()
    alice.feed(wire.Reestablish(CHAIN_ID, CONTRACT, CHANNEL_ID, 0, 0))
    assert alice.outbox == sent
    alice.outbox.clear()
    alice.feed(wire.Reestablish(CHAIN_ID, CONTRACT, CHANNEL_ID, 0, 2))
    assert alice.outbox == sent[2:] and alice.state.locks_in_flight == ()


def test_a_refused_lock_message_is_reported_and_stays_in_flight() -> None:
    alice, _ = make_pair()
    send_lock(alice, 10, payment_id=9)
    effects = alice.feed(wire.PaymentRefused(CHANNEL_ID, 1, 9, 27, "bad lock"))
    assert effects == [p.EventPaymentRefused(9, 1, 27, "bad lock")]
    assert len(alice.state.locks_in_flight) == 1


def test_held_lock_message_that_fails_is_refused_with_its_code() -> None:
    alice, bob = make_pair()
    bad = forged_transfer(alice, Lock(10, NOW + p.MAX_LOCK_LIFETIME + 1, HASH), nonce=2, transferred=5)
    alice.feed(p.ActionPay(1, 5))
    bob.feed(bad)
    effects = bob.feed(alice.outbox[-1])
    sent = [e.message for e in effects if isinstance(e, p.Send)]
    refusals = [m for m in sent if isinstance(m, wire.PaymentRefused)]
    assert [(r.nonce, r.code) for r in refusals] == [(2, 27)]


# --- secrets and the chain ----------------------------------------------------------------------------


def test_learning_a_secret_reveals_it_to_the_payer_and_keeps_it() -> None:
    _, bob = locked_pair(10)
    effects = bob.feed(p.ActionLearnSecret(SECRET))
    assert p.Send(wire.SecretReveal(SECRET)) in effects
    assert bob.state.secrets == (p.KnownSecret(SECRET),)
    again = bob.feed(p.ActionLearnSecret(SECRET))
    assert again == [p.Send(wire.SecretReveal(SECRET))]  # repeated reveal, no new state
    refuse(bob, p.ActionLearnSecret(secret(3)), p.IllegalAction, "no pending partner lock")


def test_secret_is_registered_once_when_the_payer_does_not_unlock_in_time() -> None:
    _alice, bob = locked_pair(10)
    bob.feed(p.ActionLearnSecret(SECRET))
    assert bob.feed(p.ActionTick(EXPIRY - p.DEFAULT_REVEAL_TIMEOUT - 1)) == []  # nothing due yet
    effects = bob.feed(p.ActionTick(EXPIRY - p.DEFAULT_REVEAL_TIMEOUT))
    claims = [e for e in effects if not isinstance(e, p.Persist)]
    assert claims == [p.ContractSendRegisterSecret(SECRET, EXPIRY),
                      p.ContractSendClose(CHANNEL_ID, bob.state.partner.proof)]
    later = bob.feed(p.ActionTick(EXPIRY - 10))
    assert not any(isinstance(e, (p.ContractSendRegisterSecret, p.ContractSendClose)) for e in later)


def test_no_registration_once_the_lock_has_expired() -> None:
    _alice, bob = locked_pair(10)
    bob.feed(p.ActionTick(EXPIRY + 1))
    effects = bob.feed(p.ActionLearnSecret(SECRET))
    assert not any(isinstance(e, p.ContractSendRegisterSecret) for e in effects)


def test_a_closed_channel_registers_a_learned_secret_at_once() -> None:
    alice, bob = locked_pair(10)
    bob.feed(p.ContractReceiveClosed(alice.signer.address, NOW + 500))
    effects = bob.feed(p.ActionLearnSecret(SECRET))
    claims = [e for e in effects if not isinstance(e, p.Persist)]
    assert claims == [p.ContractSendRegisterSecret(SECRET, EXPIRY)]


def test_chain_registration_is_noted_for_pending_locks_only() -> None:
    alice, bob = locked_pair(10)
    state = bob.state
    assert bob.feed(p.ContractReceiveSecretRegistered(secret(4), NOW)) == [] and bob.state is state
    bob.feed(p.ContractReceiveSecretRegistered(SECRET, NOW + 5))
    assert bob.state.registered_at(HASH) == NOW + 5
    assert bob.state.secrets == (p.KnownSecret(SECRET, registering=True),)
    alice.feed(p.ContractReceiveSecretRegistered(SECRET, NOW + 5))
    assert alice.state.registered_at(HASH) == NOW + 5 and alice.state.secrets == ()


def test_unlock_forgets_the_secret_and_registration() -> None:
    alice, bob = locked_pair(10)
    bob.feed(p.ContractReceiveSecretRegistered(SECRET, NOW + 5))
    alice.feed(p.ActionUnlock(SECRET))
    settle_all(alice, bob)
    assert bob.state.secrets == () and bob.state.registered == ()


def test_settlement_unlocks_each_sides_pending_locks_on_chain() -> None:
    alice, bob = locked_pair(10)
    send_lock(bob, 7, secret(8))
    settle_all(alice, bob)
    bob.feed(p.ContractReceiveClosed(alice.signer.address, NOW + 500))
    effects = bob.feed(p.ContractReceiveSettled(990, 1003))
    a, b = alice.signer.address, bob.signer.address
    assert [e for e in effects if isinstance(e, p.ContractSendUnlock)] == [
        p.ContractSendUnlock(CHANNEL_ID, a, b, p.pack_locks(bob.state.partner.locks)),
        p.ContractSendUnlock(CHANNEL_ID, b, a, p.pack_locks(bob.state.our.locks)),
    ]


def test_lock_record_round_trips() -> None:
    _alice, bob = locked_pair(10)
    bob.feed(p.ActionLearnSecret(SECRET))
    send_lock(bob, 3, secret(5))
    assert p.from_record(p.to_record(bob.state)) == bob.state


def test_new_channel_refuses_a_bad_reveal_timeout() -> None:
    signer = p.Signer(p.keccak256(b"x"))
    other = p.Signer(p.keccak256(b"y"))
    for bad in (0, -1, p.MAX_LOCK_LIFETIME):
        with pytest.raises(p.IllegalAction):
            p.new_channel(CHAIN_ID, CONTRACT, CHANNEL_ID, 500, signer.address, other.public_key, bad)
    assert replace(make_pair()[0].state).reveal_timeout == p.DEFAULT_REVEAL_TIMEOUT
