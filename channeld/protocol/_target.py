"""The payee's view of one payment request: reveal the secret only when it is safe and deserved.

We issue a request for `amount` under `secrethash = sha256(secret)` valid until `expires_at`, and keep the
secret. The secret is revealed (to every payer channel holding a lock for it) only for a request we
issued, while it is unexpired, and once the locks received for it, each still claimable, add up to the
full amount. Revealing asks each payer to unlock; the channel machine keeps the secret to register it on
chain if a payer does not unlock in time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from channeld.errors import LocalFault
from channeld.protocol._events import (
    ActionLearnSecret,
    ActionTick,
    ContractReceiveSecretRegistered,
    EventLockExpired,
    EventLockReceived,
    EventLockUnlocked,
)
from channeld.protocol._state import DEFAULT_REVEAL_TIMEOUT
from channeld.protocol._transfer import ChannelDo, EventTransferReceived, TransferEffect
from channeld.wire import Lock, secrethash_of

TargetTransition = tuple["TargetState", list[TransferEffect]]


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """What we ask a payer for (an invoice): the hash to lock under, the amount, and until when."""

    secrethash: bytes
    amount: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class TargetState:
    request: PaymentRequest
    secret: bytes
    now: int
    locks: tuple[tuple[bytes, Lock], ...] = ()  # (payer channel id, lock) still pending
    revealed: bool = False
    paid: int = 0
    refusals: tuple[str, ...] = ()
    reveal_timeout: int = DEFAULT_REVEAL_TIMEOUT

    @property
    def complete(self) -> bool:
        return self.paid >= self.request.amount


def issue_request(secret: bytes, amount: int, expires_at: int, now: int,
                  reveal_timeout: int = DEFAULT_REVEAL_TIMEOUT) -> TargetState:
    """A new payment request; the caller draws `secret` (32 random bytes) and publishes `request`.

    A lock counts toward the amount only while it outlives `now` by `reveal_timeout` (our own time to
    get the secret registered on chain should the payer not unlock).
    """
    if type(secret) is not bytes or len(secret) != 32 or secret == bytes(32):
        raise LocalFault("a secret is 32 bytes, not all zero (the registry refuses that one)")
    if type(amount) is not int or amount <= 0 or type(expires_at) is not int or expires_at <= now:
        raise LocalFault("a request needs a positive amount and an expiry in the future")
    return TargetState(PaymentRequest(secrethash_of(secret), amount, expires_at), secret, now,
                       reveal_timeout=reveal_timeout)


def _on_lock(state: TargetState, event: EventLockReceived) -> TargetTransition:
    lock = event.lock
    if lock.secrethash != state.request.secrethash:
        raise LocalFault("this lock is not for this request")
    if state.now > state.request.expires_at and not state.revealed:
        refusal = f"lock of {lock.amount} arrived after the request expired at {state.request.expires_at}"
        return replace(state, refusals=(*state.refusals, refusal)), []
    state = replace(state, locks=(*state.locks, (event.channel_id, lock)))
    if state.revealed:
        # the secret is out already: claim this lock as well while it can still be claimed
        ok = _safe(state, lock)
        return state, [ChannelDo(event.channel_id, ActionLearnSecret(state.secret))] if ok else []
    return _maybe_reveal(state)


def _safe(state: TargetState, lock: Lock) -> bool:
    """Whether we could still register the secret on chain in time if the payer does not unlock."""
    return lock.expiration >= state.now + state.reveal_timeout


def _maybe_reveal(state: TargetState) -> TargetTransition:
    """Reveal while the request is unexpired, once the safely claimable locks cover the full amount."""
    claimable = [(cid, lock) for cid, lock in state.locks if _safe(state, lock)]
    if state.revealed or state.now > state.request.expires_at:
        return state, []
    if sum(lock.amount for _, lock in claimable) + state.paid < state.request.amount:
        return state, []
    effects: list[TransferEffect] = [ChannelDo(cid, ActionLearnSecret(state.secret)) for cid, _ in claimable]
    return replace(state, revealed=True), effects


def _on_unlocked(state: TargetState, event: EventLockUnlocked) -> TargetTransition:
    pending = tuple(x for x in state.locks if not (x[0] == event.channel_id
                                                    and x[1].secrethash == event.secrethash))
    paid = state.paid + event.amount
    new = replace(state, locks=pending, paid=paid)
    if state.complete or not new.complete:
        return new, []
    return new, [EventTransferReceived(state.request.secrethash, paid)]


def _on_expired(state: TargetState, event: EventLockExpired) -> TargetTransition:
    pending = tuple(x for x in state.locks if not (x[0] == event.channel_id
                                                    and x[1].secrethash == event.secrethash))
    return replace(state, locks=pending), []


def _on_tick(state: TargetState, tick: ActionTick) -> TargetTransition:
    return (replace(state, now=tick.now), []) if tick.now > state.now else (state, [])


def _on_registered(state: TargetState, event: ContractReceiveSecretRegistered) -> TargetTransition:
    """Our own secret reached the registry (we or a payer registered it): our channels hold the claim."""
    return state, []


_TARGET_HANDLERS: dict[type, Callable[[TargetState, Any], TargetTransition]] = {
    ContractReceiveSecretRegistered: _on_registered,
    EventLockReceived: _on_lock,
    EventLockUnlocked: _on_unlocked,
    EventLockExpired: _on_expired,
    ActionTick: _on_tick,
}


def handle_target(state: TargetState, event: object) -> TargetTransition:
    """Apply one input to a payment request of ours: `(new_state, effects)`; an unknown input raises."""
    handler = _TARGET_HANDLERS.get(type(event))
    if handler is None:
        raise LocalFault(f"a target takes no {type(event).__name__}")
    return handler(state, event)
