"""Hash time locks in one channel (proto/locks.md): add, unlock and expire locks; claim them on chain.

Our lock messages (`LockedTransfer`, `Unlock`, `LockExpired`) each carry our next proof and are sequenced
and acknowledged exactly like a `Payment`: the receiving side's nonce, signature, hold and duplicate
rules live in `_payments`; this module checks what each message does to the locks. Receiver rules, after
nonce and signature: the lock rules (expiry at most `MAX_LOCK_LIFETIME` ahead, at most `MAX_LOCKS`, no
repeated secrethash: 27; a lock that expires too soon is accepted, see `lock_problem`), a
named lock exists (28), an expiry is really past (29), then the proof's transferred amount, locked amount
and locks root equal exactly what the change implies (21), and capacity (22).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from channeld.limits import RiskLimits, check_pending_locks
from channeld.protocol._common import Transition, partner_proof_for_chain, sign_our_proof, transition
from channeld.protocol._errors import (
    AmountMismatch,
    BadLock,
    IllegalAction,
    InsufficientCapacity,
    LockNotExpired,
    NotEnoughCapacity,
    TooManyInFlight,
    UnknownLock,
)
from channeld.protocol._events import (
    ActionExpireLock,
    ActionLearnSecret,
    ActionSendLockedTransfer,
    ActionUnlock,
    ContractReceiveSecretRegistered,
    ContractSendClose,
    ContractSendRegisterSecret,
    ContractSendUnlock,
    Effect,
    EventLockExpired,
    EventLockReceived,
    EventLockUnlocked,
    Send,
)
from channeld.protocol._signing import Signer, keccak256
from channeld.protocol._state import (
    MAX_IN_FLIGHT,
    MAX_LOCK_LIFETIME,
    MAX_LOCKS,
    UINT256_LIMIT,
    ChannelState,
    ChannelStatus,
    KnownSecret,
    LockMessage,
    Side,
    balance,
)
from channeld.wire import (
    ZERO32,
    BalanceProof,
    Lock,
    LockedTransfer,
    LockExpired,
    PaymentAccepted,
    SecretReveal,
    Unlock,
    secrethash_of,
)

# --- the lock format -----------------------------------------------------------------------------------


def pack_lock(lock: Lock) -> bytes:
    """abi.encodePacked(uint256 amount, uint256 expiration, bytes32 secrethash): 96 bytes."""
    return lock.amount.to_bytes(32, "big") + lock.expiration.to_bytes(32, "big") + lock.secrethash


def pack_locks(locks: tuple[Lock, ...]) -> bytes:
    return b"".join(pack_lock(lock) for lock in locks)


def locks_root(locks: tuple[Lock, ...]) -> bytes:
    """keccak256 of the packed locks in the order they were added; 32 zero bytes for none."""
    return keccak256(pack_locks(locks)) if locks else ZERO32


def find_lock(locks: tuple[Lock, ...], secrethash: bytes) -> Lock | None:
    for lock in locks:
        if lock.secrethash == secrethash:
            return lock
    return None


def _without(locks: tuple[Lock, ...], secrethash: bytes) -> tuple[Lock, ...]:
    return tuple(lock for lock in locks if lock.secrethash != secrethash)


def _locked(locks: tuple[Lock, ...]) -> int:
    return sum(lock.amount for lock in locks)


# everyone knows the zero secret, and the registry refuses it: a lock on its hash could never be claimed
# on chain, so a mediator that paid downstream could be left unable to claim upstream
ZERO_SECRETHASH = secrethash_of(bytes(32))


def lock_problem(state: ChannelState, side: Side, lock: Lock, *, receiving: bool = False) -> str | None:
    """Why `side` may not add `lock` now, or None.

    A receiver does not refuse a lock for expiring too soon (`receiving`): the clocks of the two sides
    differ (a sender that was frozen or offline wakes with a stale chain view, a message waits in a
    socket), and a refused proof can never be replaced, so every later proof of the sender would wait
    behind its nonce and the channel would be stuck. Accepting costs the receiver nothing: the amount is
    the sender's, the mediator forwards and the target reveals only for a lock that still leaves them a
    reveal timeout, and the sender takes it back with `LockExpired`.
    """
    if lock.secrethash == ZERO_SECRETHASH:
        return "the secrethash is sha256 of 32 zero bytes: that secret is known to all"
    if len(side.locks) >= MAX_LOCKS:
        return f"{len(side.locks)} locks are already pending (at most {MAX_LOCKS})"
    if find_lock(side.locks, lock.secrethash) is not None:
        return f"a lock with secrethash {lock.secrethash.hex()} is already pending"
    if not receiving and lock.expiration < state.now + state.reveal_timeout:
        return (f"lock expiration {lock.expiration} is too soon: it must be at least now+reveal timeout "
                f"({state.now}+{state.reveal_timeout})")
    if lock.expiration > state.now + MAX_LOCK_LIFETIME:
        return f"lock expiration {lock.expiration} is too far: at most now+{MAX_LOCK_LIFETIME}"
    return None


def pending_locks(state: ChannelState) -> int:
    """Locks pending in the channel, both directions together (what `limits.max_pending_locks` bounds)."""
    return len(state.our.locks) + len(state.partner.locks)


def lock_limit_problem(state: ChannelState, limits: RiskLimits | None) -> str | None:
    """Why one more lock would take the channel over our `limits.max_pending_locks`, or None."""
    if limits is None or pending_locks(state) < limits.max_pending_locks:
        return None
    return (f"{pending_locks(state) + 1} pending locks in one channel would exceed "
            f"limits.max_pending_locks ({limits.max_pending_locks})")


# --- our side: sending ---------------------------------------------------------------------------------


def _sign_next(state: ChannelState, signer: Signer, transferred: int, locks: tuple[Lock, ...],
               build: Callable[[BalanceProof], LockMessage]) -> Transition:
    """Sign our next proof with these figures, keep it in flight and send it as `build(proof)`."""
    if state.settle is not None:
        raise IllegalAction("cannot change locks: a cooperative settle is in progress")
    if len(state.in_flight) + len(state.locks_in_flight) >= MAX_IN_FLIGHT:
        raise TooManyInFlight(f"{MAX_IN_FLIGHT} proofs already wait for acceptance")
    our = state.our
    proof = sign_our_proof(state, signer, our.nonce + 1, transferred, _locked(locks), locks_root(locks))
    msg = build(proof)
    new = replace(state, our=replace(our, proof=proof, locks=locks),
                  locks_in_flight=(*state.locks_in_flight, msg))
    return transition(state, new, [Send(msg)])


def handle_action_send_locked_transfer(state: ChannelState, action: ActionSendLockedTransfer,
                                       signer: Signer, limits: RiskLimits | None = None) -> Transition:
    valid = (type(action.amount) is int and 0 < action.amount < UINT256_LIMIT
             and type(action.expiration) is int and 0 <= action.expiration < 1 << 64)
    if not valid:
        raise IllegalAction("lock amount must be a positive uint256 and expiration a uint64")
    lock = Lock(action.amount, action.expiration, action.secrethash)
    problem = lock_problem(state, state.our, lock)
    if problem is not None:
        raise IllegalAction(f"cannot lock: {problem}")
    if limits is not None:
        check_pending_locks(limits, pending_locks(state) + 1)  # RiskLimitExceeded before anything is signed
    locks = (*state.our.locks, lock)
    if balance(state.our, state.partner, locked=_locked(locks)) < 0:
        raise NotEnoughCapacity(f"cannot lock {action.amount}: our balance is {state.our_balance()}")
    return _sign_next(state, signer, state.our.transferred, locks, lambda proof: LockedTransfer(
        proof, lock, action.payment_id, action.initiator, action.target, action.metadata))


def handle_action_unlock(state: ChannelState, action: ActionUnlock, signer: Signer) -> Transition:
    secrethash = secrethash_of(action.secret)
    lock = find_lock(state.our.locks, secrethash)
    if lock is None:
        raise IllegalAction(f"no lock of ours is pending for secrethash {secrethash.hex()}")
    locks = _without(state.our.locks, secrethash)
    new, effects = _sign_next(state, signer, state.our.transferred + lock.amount, locks,
                              lambda proof: Unlock(proof, action.secret, action.payment_id))
    return transition(state, _forget(new, secrethash, action.secret), effects[1:])


def handle_action_expire_lock(state: ChannelState, action: ActionExpireLock, signer: Signer) -> Transition:
    lock = find_lock(state.our.locks, action.secrethash)
    if lock is None:
        raise IllegalAction(f"no lock of ours is pending for secrethash {action.secrethash.hex()}")
    problem = _expiry_problem(state, lock)
    if problem is not None:
        raise IllegalAction(f"cannot expire the lock: {problem}")
    locks = _without(state.our.locks, action.secrethash)
    new, effects = _sign_next(state, signer, state.our.transferred, locks,
                              lambda proof: LockExpired(proof, action.secrethash))
    return transition(state, _forget(new, action.secrethash), effects[1:])


def _expiry_problem(state: ChannelState, lock: Lock) -> str | None:
    if state.now <= lock.expiration:
        return f"it expires at {lock.expiration}, now is {state.now}"
    registered = state.registered_at(lock.secrethash)
    if registered is not None and registered <= lock.expiration:
        return f"its secret was registered on chain at {registered}, in time"
    return None


def _forget(state: ChannelState, secrethash: bytes, secret: bytes | None = None) -> ChannelState:
    """Drop secrets and registrations no pending lock of either side needs any more. `secret`: the
    preimage, when the caller has it (an unlock): found by comparison, not by hashing every known one."""
    if not (state.secrets or state.registered):
        return state
    if find_lock(state.our.locks, secrethash) or find_lock(state.partner.locks, secrethash):
        return state
    if secret is None:
        secrets = tuple(s for s in state.secrets if secrethash_of(s.secret) != secrethash)
    else:
        secrets = tuple(s for s in state.secrets if s.secret != secret)
    registered = tuple(r for r in state.registered if r[0] != secrethash)
    if len(secrets) == len(state.secrets) and len(registered) == len(state.registered):
        return state
    return replace(state, secrets=secrets, registered=registered)


# --- the partner's side: receiving (nonce and signature already checked) -------------------------------


def apply_lock_message(state: ChannelState, msg: LockMessage,
                       limits: RiskLimits | None = None) -> tuple[ChannelState, list[Effect]]:
    if isinstance(msg, LockedTransfer):
        return _apply_locked_transfer(state, msg, limits)
    if isinstance(msg, Unlock):
        return _apply_unlock(state, msg)
    return _apply_lock_expired(state, msg)


def _check_figures(proof: BalanceProof, transferred: int, locks: tuple[Lock, ...]) -> None:
    if proof.transferred_amount != transferred:
        raise AmountMismatch(f"transferred amount {proof.transferred_amount} must be {transferred}")
    if proof.locked_amount != _locked(locks):
        raise AmountMismatch(f"locked amount {proof.locked_amount} must be {_locked(locks)}")
    if proof.locks_root != locks_root(locks):
        raise AmountMismatch("locks root does not match the pending locks")


def _accept(state: ChannelState, proof: BalanceProof, locks: tuple[Lock, ...], payment_id: int,
            event: Effect) -> tuple[ChannelState, list[Effect]]:
    new = replace(state, partner=replace(state.partner, proof=proof, locks=locks))
    return new, [Send(PaymentAccepted(state.channel_id, proof.nonce, payment_id)), event]


def _apply_locked_transfer(state: ChannelState, msg: LockedTransfer,
                           limits: RiskLimits | None) -> tuple[ChannelState, list[Effect]]:
    partner, lock = state.partner, msg.lock
    problem = lock_problem(state, partner, lock, receiving=True)
    if problem is not None:
        raise BadLock(problem)
    locks = (*partner.locks, lock)
    _check_figures(msg.balance_proof, partner.transferred, locks)
    if balance(partner, state.our, locked=_locked(locks)) < 0:
        raise InsufficientCapacity(f"lock of {lock.amount} exceeds the partner's balance "
                                   f"{state.partner_balance()}")
    event = EventLockReceived(state.channel_id, msg.payment_id, lock, msg.initiator, msg.target, msg.metadata)
    new, effects = _accept(state, msg.balance_proof, locks, msg.payment_id, event)
    if lock_limit_problem(state, limits) is not None:
        # Over our own `max_pending_locks`, which the partner cannot know: refusing would block every
        # later proof of the partner behind this one (its unlocks, which would free the room, included),
        # so the lock is accepted but not acted on, as one that expires too soon: no payment machine
        # hears of it (nothing is forwarded or claimed) and the partner expires it.
        return new, effects[:1]
    return new, effects


def _apply_unlock(state: ChannelState, msg: Unlock) -> tuple[ChannelState, list[Effect]]:
    partner, secrethash = state.partner, secrethash_of(msg.secret)
    lock = find_lock(partner.locks, secrethash)
    if lock is None:
        raise UnknownLock(f"no pending lock of the partner has secrethash {secrethash.hex()}")
    locks = _without(partner.locks, secrethash)
    _check_figures(msg.balance_proof, partner.transferred + lock.amount, locks)
    event = EventLockUnlocked(state.channel_id, msg.payment_id, secrethash, lock.amount)
    new, effects = _accept(state, msg.balance_proof, locks, msg.payment_id, event)
    return _forget(new, secrethash, msg.secret), effects


def _apply_lock_expired(state: ChannelState, msg: LockExpired) -> tuple[ChannelState, list[Effect]]:
    partner = state.partner
    lock = find_lock(partner.locks, msg.secrethash)
    if lock is None:
        raise UnknownLock(f"no pending lock of the partner has secrethash {msg.secrethash.hex()}")
    problem = _expiry_problem(state, lock)
    if problem is not None:
        raise LockNotExpired(f"lock not expired: {problem}")
    locks = _without(partner.locks, msg.secrethash)
    _check_figures(msg.balance_proof, partner.transferred, locks)
    event = EventLockExpired(state.channel_id, msg.secrethash, lock.amount)
    new, effects = _accept(state, msg.balance_proof, locks, 0, event)
    return _forget(new, msg.secrethash), effects


# --- secrets, and claiming the partner's locks on chain --------------------------------------------------


def handle_action_learn_secret(state: ChannelState, action: ActionLearnSecret, signer: Signer) -> Transition:
    secrethash = secrethash_of(action.secret)
    if find_lock(state.partner.locks, secrethash) is None:
        raise IllegalAction(f"no pending partner lock has secrethash {secrethash.hex()}")
    tell = action.reveal and state.status is ChannelStatus.OPEN
    reveal: list[Effect] = [Send(SecretReveal(action.secret))] if tell else []
    if any(s.secret == action.secret for s in state.secrets):
        return state, reveal  # already known: only the reveal is repeated, for a partner that missed it
    new = replace(state, secrets=(*state.secrets, KnownSecret(action.secret)))
    # neither the clock nor the status moved: of the known secrets, only the new one can have become due
    new, claims = claims_due(new, only=action.secret)
    return transition(state, new, reveal + claims)


def claims_due(state: ChannelState, only: bytes | None = None) -> tuple[ChannelState, list[Effect]]:
    """Register known secrets (`only` this one, if given) on chain when waiting longer could lose the lock.

    Once `now` is within the reveal timeout of a partner lock's expiration (or the channel is closed), the
    partner may never unlock it off-chain: the secret goes to the registry, and the channel is closed so
    that the lock can be claimed with `unlock` after settlement.
    """
    effects: list[Effect] = []
    closing = any(s.registering for s in state.secrets)
    secrets = list(state.secrets)
    for i, known in enumerate(secrets):
        if known.registering or (only is not None and known.secret != only):
            continue
        lock = find_lock(state.partner.locks, secrethash_of(known.secret))
        if lock is None or not _claim_due(state, lock):
            continue
        secrets[i] = replace(known, registering=True)
        effects.append(ContractSendRegisterSecret(known.secret, lock.expiration))
        if state.status is ChannelStatus.OPEN and not closing:
            closing = True
            effects.append(ContractSendClose(state.channel_id, partner_proof_for_chain(state)))
    if not effects:
        return state, []
    return replace(state, secrets=tuple(secrets)), effects


def _claim_due(state: ChannelState, lock: Lock) -> bool:
    if state.registered_at(lock.secrethash) is not None or state.now > lock.expiration:
        return False  # already registered, or too late for a registration to count
    return state.status is not ChannelStatus.OPEN or state.now >= lock.expiration - state.reveal_timeout


def handle_secret_registered(state: ChannelState, event: ContractReceiveSecretRegistered,
                             signer: Signer) -> Transition:
    """Note a registration for any pending lock with this hash; the node reports every registration to
    every channel, so one about none of our locks changes nothing."""
    secrethash = secrethash_of(event.secret)
    theirs = find_lock(state.partner.locks, secrethash) is not None
    if not theirs and find_lock(state.our.locks, secrethash) is None:
        return state, []
    if state.registered_at(secrethash) is not None:
        return state, []
    new = replace(state, registered=(*state.registered, (secrethash, event.registered_at)))
    if theirs and not any(s.secret == event.secret for s in new.secrets):
        new = replace(new, secrets=(*new.secrets, KnownSecret(event.secret, registering=True)))
    return transition(state, new, [])


def settled_unlocks(state: ChannelState) -> list[Effect]:
    """After settlement, the pending locks of each side stay in the contract until someone unlocks them."""
    effects: list[Effect] = []
    for sender, receiver in ((state.partner, state.our), (state.our, state.partner)):
        if sender.locks:
            effects.append(ContractSendUnlock(state.channel_id, sender.address, receiver.address,
                                              pack_locks(sender.locks)))
    return effects
