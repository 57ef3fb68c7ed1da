"""A mediator's view of one payment: a lock from the payer (upstream), maybe one to the payee (downstream).

The safety rule: we pay downstream only what we can claim upstream. The outgoing lock expires at least
the payer channel's reveal timeout before the incoming one, so once the secret is known while the
outgoing lock is still claimable (now at or before its expiration, or the secret registered on chain in
time) there remains a full reveal timeout to register the secret upstream; the payer channel's machine
does so (`claims_due`) if the payer has not unlocked by then. After the outgoing lock's expiration
without a timely registration, we never unlock it: we expire it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from channeld.errors import LocalFault
from channeld.limits import RiskLimits
from channeld.protocol._events import (
    ActionExpireLock,
    ActionLearnSecret,
    ActionSendLockedTransfer,
    ActionTick,
    ActionUnlock,
    ContractReceiveSecretRegistered,
    EventLockExpired,
    EventLockReceived,
    EventLockUnlocked,
)
from channeld.protocol._locks import lock_limit_problem, lock_problem
from channeld.protocol._state import ChannelState, ChannelStatus, balance
from channeld.protocol._transfer import (
    BadRoute,
    ChannelDo,
    FeePolicy,
    LockOutcome,
    SendSecretReveal,
    TransferEffect,
    decode_route,
    encode_route,
)
from channeld.wire import Lock, SecretReveal, secrethash_of

MediatorTransition = tuple["MediatorState", list[TransferEffect]]


@dataclass(frozen=True, slots=True)
class MediatorState:
    """One mediated payment. `refusal` says why we did not forward (then there is no payee lock)."""

    secrethash: bytes
    payment_id: int
    payer_channel: bytes
    payer_lock: Lock
    payee_channel: bytes | None
    payee_lock: Lock | None
    now: int
    payer_outcome: LockOutcome = LockOutcome.PENDING
    payee_outcome: LockOutcome = LockOutcome.NONE
    secret: bytes | None = None
    registered_at: int | None = None
    refusal: str | None = None

    @property
    def done(self) -> bool:
        return LockOutcome.PENDING not in (self.payer_outcome, self.payee_outcome)


def start_mediation(received: EventLockReceived, payer: ChannelState,
                    channels_by_partner: Mapping[bytes, ChannelState], fees: FeePolicy,
                    limits: RiskLimits | None = None) -> MediatorTransition:
    """Forward a lock the payer channel `payer` reported, along the route it carries, or refuse to.

    `channels_by_partner` maps partner addresses to our channels with them. A refusal forwards
    nothing: the payer's lock simply expires and the payer takes its amount back. `limits`: the node's
    risk limits; a payee channel already holding `limits.max_pending_locks` locks is not used.
    """
    lock = received.lock
    state = MediatorState(lock.secrethash, received.payment_id, received.channel_id, lock, None, None,
                          payer.now)
    try:
        payee, out = _outgoing(received, payer, channels_by_partner, fees, limits)
    except BadRoute as exc:
        return replace(state, refusal=str(exc)), []
    send = ActionSendLockedTransfer(received.payment_id, out.amount, out.expiration, lock.secrethash,
                                    received.initiator, received.target,
                                    encode_route(decode_route(received.metadata)[1:]))
    new = replace(state, payee_channel=payee.channel_id, payee_lock=out, payee_outcome=LockOutcome.PENDING)
    return new, [ChannelDo(payee.channel_id, send)]


def _outgoing(received: EventLockReceived, payer: ChannelState, channels: Mapping[bytes, ChannelState],
              fees: FeePolicy, limits: RiskLimits | None) -> tuple[ChannelState, Lock]:
    """The channel and lock to forward on, or `BadRoute` saying why not."""
    route = decode_route(received.metadata)
    if route[0] != payer.our.address:
        raise BadRoute(f"the route names 0x{route[0].hex()} where we (0x{payer.our.address.hex()}) belong")
    if len(route) < 2:
        raise BadRoute("we are the route's last hop but not the transfer's target")
    if len(set(route)) != len(route) or route[1] == payer.partner.address:
        raise BadRoute("the route visits a node twice or turns back to the payer")
    payee = channels.get(route[1])
    if payee is None or payee.status is not ChannelStatus.OPEN:
        raise BadRoute(f"no open channel with the next hop 0x{route[1].hex()}")
    amount = fees.amount_out(received.lock.amount)
    if amount <= 0:
        raise BadRoute(f"lock of {received.lock.amount} does not cover our fee")
    out = Lock(amount, received.lock.expiration - payer.reveal_timeout, received.lock.secrethash)
    problem = lock_problem(payee, payee.our, out) or lock_limit_problem(payee, limits)
    if problem is not None:
        raise BadRoute(f"cannot forward: {problem}")
    if balance(payee.our, payee.partner, locked=payee.our.locked + amount) < 0:
        raise BadRoute(f"insufficient capacity toward 0x{route[1].hex()}: {payee.our_balance()} < {amount}")
    return payee, out


def _learn(state: MediatorState, secret: bytes) -> MediatorTransition:
    """The secret is known: reveal it upstream (claim), and pay downstream if that lock is still owed.

    The reveal goes upstream at once, not after the round that stores the secret: it carries nothing we
    signed, and if we crash before the secret is durable our downstream `Unlock` was not sent either, so
    the first node below that stored the secret (at the latest the target) registers it on chain in
    time for every lock above it, ours included (proto/state-machine.md, relaying a reveal). So the
    secret travels back to the payer without waiting for one commit per mediator."""
    if secrethash_of(secret) != state.secrethash:
        raise LocalFault("this secret is not the payment's")
    effects: list[TransferEffect] = []
    if state.secret is None and state.payer_outcome is LockOutcome.PENDING:
        effects += [SendSecretReveal(state.payer_channel, secret),
                    ChannelDo(state.payer_channel, ActionLearnSecret(secret, reveal=False))]
    new = replace(state, secret=secret)
    new, more = _settle_payee(new)
    return new, effects + more


def _payee_claimable(state: MediatorState) -> bool:
    """Whether the payee can still get its lock paid (so paying it off-chain costs us nothing more)."""
    lock = state.payee_lock
    assert lock is not None
    in_time = state.registered_at is not None and state.registered_at <= lock.expiration
    return state.now <= lock.expiration or in_time


def _settle_payee(state: MediatorState) -> MediatorTransition:
    """Unlock the payee's lock once the secret is known, or expire it once it can no longer be claimed."""
    if state.payee_outcome is not LockOutcome.PENDING or state.payee_channel is None:
        return state, []
    assert state.payee_lock is not None
    if _payee_claimable(state):
        if state.secret is None:
            return state, []
        action: ActionUnlock | ActionExpireLock = ActionUnlock(state.secret, state.payment_id)
        outcome = LockOutcome.UNLOCKED
    else:
        action, outcome = ActionExpireLock(state.secrethash), LockOutcome.EXPIRED
    return replace(state, payee_outcome=outcome), [ChannelDo(state.payee_channel, action)]


def _on_reveal(state: MediatorState, msg: SecretReveal) -> MediatorTransition:
    if secrethash_of(msg.secret) != state.secrethash:
        return state, []  # a reveal for another payment is not ours to judge
    return _learn(state, msg.secret)


def _on_registered(state: MediatorState, event: ContractReceiveSecretRegistered) -> MediatorTransition:
    if secrethash_of(event.secret) != state.secrethash or state.registered_at is not None:
        return state, []
    return _learn(replace(state, registered_at=event.registered_at), event.secret)


def _on_tick(state: MediatorState, tick: ActionTick) -> MediatorTransition:
    if tick.now <= state.now:
        return state, []
    return _settle_payee(replace(state, now=tick.now))


def _on_unlocked(state: MediatorState, event: EventLockUnlocked) -> MediatorTransition:
    if event.channel_id != state.payer_channel or event.secrethash != state.secrethash:
        return state, []
    return replace(state, payer_outcome=LockOutcome.UNLOCKED), []


def _on_expired(state: MediatorState, event: EventLockExpired) -> MediatorTransition:
    if event.channel_id != state.payer_channel or event.secrethash != state.secrethash:
        return state, []
    return replace(state, payer_outcome=LockOutcome.EXPIRED), []


_MEDIATOR_HANDLERS: dict[type, Callable[[MediatorState, Any], MediatorTransition]] = {
    SecretReveal: _on_reveal,
    ContractReceiveSecretRegistered: _on_registered,
    ActionTick: _on_tick,
    EventLockUnlocked: _on_unlocked,
    EventLockExpired: _on_expired,
}


def handle_mediator(state: MediatorState, event: object) -> MediatorTransition:
    """Apply one input to a mediated payment: `(new_state, effects)`; an unknown input raises."""
    handler = _MEDIATOR_HANDLERS.get(type(event))
    if handler is None:
        raise LocalFault(f"a mediator takes no {type(event).__name__}")
    return handler(state, event)
