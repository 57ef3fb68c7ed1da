"""Direct payments: we sign our next proof; the partner's proofs are checked and applied in nonce order.

Receiver checks, in this order (proto/state-machine.md): channel binding; nonce below the next one
(duplicate: acknowledged again, or a conflict); signature by the partner's key; nonce ahead of the next
one (held until the gap fills, within a bound); locks unchanged; transferred amount grown by exactly the
payment; the partner's capacity still non-negative.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

from channeld.errors import PeerFault
from channeld.limits import RiskLimits
from channeld.protocol._common import (
    Transition,
    check_binding,
    check_channel_id,
    check_partner_proof_signature,
    locks_root_of,
    sign_our_proof,
    transition,
)
from channeld.protocol._errors import (
    AmountMismatch,
    ConflictingProof,
    IllegalAction,
    IllegalInput,
    InsufficientCapacity,
    NonceGapTooLarge,
    NotEnoughCapacity,
    Refused,
    StateMismatch,
    TooManyInFlight,
    refusal_code,
)
from channeld.protocol._events import (
    ActionPay,
    Effect,
    EventPaymentReceived,
    EventPaymentRefused,
    EventPaymentSent,
    Send,
)
from channeld.protocol._locks import apply_lock_message
from channeld.protocol._signing import Signer
from channeld.protocol._state import (
    MAX_HELD_PROOFS,
    MAX_IN_FLIGHT,
    UINT256_LIMIT,
    ChannelState,
    LockMessage,
    Side,
    balance,
)
from channeld.wire import LockExpired, Payment, PaymentAccepted, PaymentRefused

ProofMessage = Payment | LockMessage


def _evolver(cls: type) -> Callable[..., Any]:
    """A `dataclasses.replace` for one frozen, slotted state class, generated once at import.

    `replace` looks the fields up, builds a keyword dictionary and runs `__init__` on every call: about
    5 µs for a `ChannelState`, paid two or three times per payment. The generated function copies the
    slots directly (less than half of that). Only for classes without `__post_init__`, which it would skip.
    """
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} validates in __post_init__: use dataclasses.replace")
    names = [f.name for f in fields(cls)]
    lines = [f"def evolve(obj, *, {', '.join(f'{n}=KEEP' for n in names)}):", "    new = new_(cls)"]
    lines += [f"    set_(new, {n!r}, obj.{n} if {n} is KEEP else {n})" for n in names]
    lines.append("    return new")
    namespace: dict[str, Any] = {"KEEP": object(), "set_": object.__setattr__, "new_": object.__new__,
                                 "cls": cls}
    exec("\n".join(lines), namespace)  # the source is built above from the class's own field names
    evolve: Callable[..., Any] = namespace["evolve"]
    return evolve


_evolve_state = _evolver(ChannelState)
_evolve_side = _evolver(Side)


def payment_id_of(msg: ProofMessage) -> int:
    """The id an acknowledgement carries (a lock-expired message belongs to no payment: 0)."""
    return 0 if isinstance(msg, LockExpired) else msg.payment_id


def handle_action_pay(state: ChannelState, action: ActionPay, signer: Signer) -> Transition:
    if state.settle is not None:
        raise IllegalAction("cannot pay: a cooperative settle is in progress")
    if len(state.in_flight) + len(state.locks_in_flight) >= MAX_IN_FLIGHT:
        raise TooManyInFlight(f"{MAX_IN_FLIGHT} proofs already wait for acceptance")
    if type(action.amount) is not int or action.amount <= 0:
        raise IllegalAction(f"payment amount must be a positive integer, got {action.amount!r}")
    if action.limits is not None:
        action.limits.check(action.amount)  # RiskLimitExceeded, naming the limit, before anything is signed
    our = state.our
    transferred = our.transferred + action.amount
    if transferred >= UINT256_LIMIT or balance(our, state.partner, transferred=transferred) < 0:
        raise NotEnoughCapacity(f"cannot pay {action.amount}: our balance is {state.our_balance()}")
    proof = sign_our_proof(state, signer, our.nonce + 1, transferred, our.locked, locks_root_of(our.proof))
    payment = Payment(proof, action.payment_id, action.amount, action.metadata)
    new: ChannelState = _evolve_state(state, our=_evolve_side(our, proof=proof),
                                      in_flight=(*state.in_flight, payment))
    return transition(state, new, [Send(payment)])


def handle_payment(state: ChannelState, msg: ProofMessage, signer: Signer,
                   limits: RiskLimits | None = None) -> Transition:
    """A partner message carrying its next proof: a `Payment` or a lock message (sequenced alike).

    `limits` (the node's risk limits) bound the pending locks of any lock this or a held message adds.
    """
    if state.settle is not None:
        raise IllegalInput("payment refused: a cooperative settle is in progress")
    proof = msg.balance_proof
    check_binding(state, proof.chain_id, proof.contract, proof.channel_id)
    expected = state.partner.nonce + 1
    if proof.nonce < expected:
        return _duplicate(state, msg)
    check_partner_proof_signature(state, proof)
    if proof.nonce > expected:
        return _hold(state, msg)
    new, effects = _apply(state, msg, limits)
    new, more = _drain_held(new, limits)
    return transition(state, new, effects + more)


def _duplicate(state: ChannelState, msg: ProofMessage) -> Transition:
    """An already-accepted nonce: the same proof is acknowledged again; a different one is a conflict."""
    proof = msg.balance_proof
    if proof.nonce == state.partner.nonce and proof != state.partner.proof:
        check_partner_proof_signature(state, proof)
        raise ConflictingProof(f"a different proof was already accepted for nonce {proof.nonce}")
    if proof.nonce < state.partner.nonce:
        # older proofs are not kept; acknowledge only one the partner really signed
        check_partner_proof_signature(state, proof)
    ack = PaymentAccepted(state.channel_id, proof.nonce, payment_id_of(msg))
    return state, [Send(ack)]


def _hold(state: ChannelState, msg: ProofMessage) -> Transition:
    nonce = msg.balance_proof.nonce
    nonces = [p.balance_proof.nonce for p in state.held]
    at = bisect.bisect_left(nonces, nonce)
    if at < len(nonces) and nonces[at] == nonce:
        if state.held[at] == msg:
            return state, []
        raise ConflictingProof(f"a different proof is already held for nonce {nonce}")
    if nonce > state.partner.nonce + 1 + MAX_HELD_PROOFS:
        raise NonceGapTooLarge(f"nonce {nonce} is more than {MAX_HELD_PROOFS} ahead of "
                               f"the next expected ({state.partner.nonce + 1})")
    held = (*state.held[:at], msg, *state.held[at:])
    return transition(state, replace(state, held=held), [])


def _apply(state: ChannelState, msg: ProofMessage,
           limits: RiskLimits | None = None) -> tuple[ChannelState, list[Effect]]:
    """Apply the partner's next proof (nonce and signature already checked) or raise a refusal."""
    if not isinstance(msg, Payment):
        return apply_lock_message(state, msg, limits)
    proof, partner = msg.balance_proof, state.partner
    if proof.locked_amount != partner.locked or proof.locks_root != locks_root_of(partner.proof):
        raise AmountMismatch("a direct payment must not change the locked amount or locks root")
    if proof.transferred_amount != partner.transferred + msg.amount:
        raise AmountMismatch(f"transferred amount {proof.transferred_amount} is not the previous "
                             f"{partner.transferred} plus the payment {msg.amount}")
    if balance(partner, state.our, transferred=proof.transferred_amount) < 0:
        raise InsufficientCapacity(f"payment of {msg.amount} exceeds the partner's balance "
                                   f"{state.partner_balance()}")
    new: ChannelState = _evolve_state(state, partner=_evolve_side(partner, proof=proof))
    return new, [Send(PaymentAccepted(state.channel_id, proof.nonce, msg.payment_id)),
                 EventPaymentReceived(msg.payment_id, msg.amount, proof.nonce, msg.metadata)]


def _drain_held(state: ChannelState, limits: RiskLimits | None = None) -> tuple[ChannelState, list[Effect]]:
    """Apply held proofs that became next in line; one that fails now is refused and dropped."""
    effects: list[Effect] = []
    while state.held and state.held[0].balance_proof.nonce <= state.partner.nonce + 1:
        msg, rest = state.held[0], state.held[1:]
        state = replace(state, held=rest)
        if msg.balance_proof.nonce <= state.partner.nonce:
            continue
        try:
            state, applied = _apply(state, msg, limits)
        except Refused as exc:
            effects.append(Send(refusal_for(state, msg, exc)))
            continue
        effects += applied
    return state, effects


def refusal_for(state: ChannelState, msg: ProofMessage, error: PeerFault) -> PaymentRefused:
    """The `PaymentRefused` answering a payment (or lock message) that raised `error` (the node sends it)."""
    reason = str(error).encode("utf-8", "replace")[:1024].decode("utf-8", "ignore")
    return PaymentRefused(state.channel_id, msg.balance_proof.nonce, payment_id_of(msg), refusal_code(error),
                          reason)


def handle_payment_accepted(state: ChannelState, msg: PaymentAccepted, signer: Signer) -> Transition:
    check_channel_id(state, msg.channel_id)
    if msg.nonce > state.our.nonce:
        raise StateMismatch(f"accepted nonce {msg.nonce}, but our latest proof has nonce {state.our.nonce}")
    return accept_up_to(state, msg.nonce)


def accept_up_to(state: ChannelState, nonce: int) -> Transition:
    """Our in-flight payments up to `nonce` are accepted (the partner applies strictly in order)."""
    done = [p for p in state.in_flight if p.balance_proof.nonce <= nonce]
    locks_done = [m for m in state.locks_in_flight if m.balance_proof.nonce <= nonce]
    if not done and not locks_done:
        return state, []
    new: ChannelState = _evolve_state(state, in_flight=state.in_flight[len(done):],
                                      locks_in_flight=state.locks_in_flight[len(locks_done):])
    events = [EventPaymentSent(p.payment_id, p.amount, p.balance_proof.nonce) for p in done]
    return transition(state, new, events)


def unacknowledged(state: ChannelState) -> list[ProofMessage]:
    """Our proofs the partner has not accepted, payments and lock messages together, in nonce order."""
    return sorted((*state.in_flight, *state.locks_in_flight), key=lambda m: m.balance_proof.nonce)


def handle_payment_refused(state: ChannelState, msg: PaymentRefused, signer: Signer) -> Transition:
    check_channel_id(state, msg.channel_id)
    if msg.nonce > state.our.nonce:
        raise StateMismatch(f"refused nonce {msg.nonce}, but our latest proof has nonce {state.our.nonce}")
    for payment in unacknowledged(state):
        if payment.balance_proof.nonce == msg.nonce:
            # the signed proof cannot be taken back: it stays in flight and is offered again on re-establish
            return state, [EventPaymentRefused(payment_id_of(payment), msg.nonce, msg.code, msg.reason)]
    return state, []
