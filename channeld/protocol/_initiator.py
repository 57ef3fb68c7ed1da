"""The payer's view of one multi-hop payment: try routes in order, one lock at a time.

A route is tried by locking `amount + fees` toward its first hop. The payment succeeds when the target's
secret comes back while our lock is still claimable (then we unlock it). A route fails when our lock
expires unclaimed; only then is the next route tried, with the same secrethash: two live locks for one
secrethash could let the target be paid twice. A route is skipped at once when its fees exceed the
payer's cap or its first channel cannot carry the lock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from channeld.errors import LocalFault
from channeld.limits import LimitContext, RiskLimits
from channeld.protocol._events import (
    ActionExpireLock,
    ActionSendLockedTransfer,
    ActionTick,
    ActionUnlock,
    ContractReceiveSecretRegistered,
)
from channeld.protocol._locks import lock_limit_problem, lock_problem
from channeld.protocol._state import ChannelState, ChannelStatus, balance
from channeld.protocol._transfer import (
    ChannelDo,
    EventRouteFailed,
    EventTransferFailed,
    EventTransferSucceeded,
    LockOutcome,
    TransferEffect,
    encode_route,
)
from channeld.wire import Lock, SecretReveal, secrethash_of

InitiatorTransition = tuple["InitiatorState", list[TransferEffect]]


@dataclass(frozen=True, slots=True)
class Route:
    """A path to the target: our channel to the first hop, the hops' addresses (target last), the total
    fee the mediators take, and `lock_time`: how long after now the lock we send must expire for every
    hop to keep its reveal timeout (`channeld.routing` computes it from the announced reveal timeouts);
    0 when unknown, then each hop is assumed to need our own reveal timeout."""

    channel_id: bytes
    hops: tuple[bytes, ...]
    fees: int
    lock_time: int = 0


@dataclass(frozen=True, slots=True)
class Attempt:
    route: Route
    lock: Lock
    outcome: LockOutcome = LockOutcome.PENDING


@dataclass(frozen=True, slots=True)
class InitiatorState:
    payment_id: int
    initiator: bytes
    amount: int
    secrethash: bytes
    fee_cap: int
    routes: tuple[Route, ...]
    now: int
    attempt: Attempt | None = None
    failures: tuple[str, ...] = ()
    secret: bytes | None = None
    finished: bool = False

    @property
    def target(self) -> bytes:
        return self.routes[0].hops[-1] if self.routes else b""


def start_payment(payment_id: int, initiator: bytes, amount: int, secrethash: bytes, fee_cap: int,
                  routes: tuple[Route, ...], channels: Mapping[bytes, ChannelState],
                  now: int, limits: LimitContext | None = None) -> InitiatorTransition:
    """Pay `amount` to the target of `routes` (tried in order) under the target's `secrethash`.

    `channels` maps our channel ids to their states, to check a route's first channel before locking.
    `limits`: the node's risk limits and ledger; the payment is checked against them before any lock
    is signed, and routes whose first channel holds `limits.max_pending_locks` locks are skipped.
    """
    if type(amount) is not int or amount <= 0 or type(fee_cap) is not int or fee_cap < 0:
        raise LocalFault("amount must be positive and the fee cap non-negative")
    if limits is not None:
        limits.check(amount)
    if not routes or len({r.hops[-1] for r in routes if r.hops}) != 1:
        raise LocalFault("a payment needs at least one route, all to the same target")
    state = InitiatorState(payment_id, initiator, amount, secrethash, fee_cap, routes, now)
    return _next_route(state, channels, 0, None if limits is None else limits.limits)


def _lock_for(state: InitiatorState, route: Route, channel: ChannelState) -> Lock:
    """The lock that lets each hop keep a reveal timeout between its incoming and outgoing expiries."""
    # our own reveal timeout on top: time for the transfer to travel, and for us to register if need be
    hops_need = route.lock_time or len(route.hops) * channel.reveal_timeout
    expiration = state.now + hops_need + channel.reveal_timeout
    # a route needing more than the lock lifetime allows is skipped by `lock_problem` ("too far")
    return Lock(state.amount + route.fees, expiration, state.secrethash)


def _route_problem(state: InitiatorState, route: Route, channel: ChannelState | None,
                   limits: RiskLimits | None = None) -> str | None:
    if route.fees > state.fee_cap:
        return f"route via 0x{route.hops[0].hex()} costs {route.fees} in fees, over the cap {state.fee_cap}"
    if channel is None or channel.status is not ChannelStatus.OPEN:
        return f"channel {route.channel_id.hex()} is not open"
    lock = _lock_for(state, route, channel)
    problem = lock_problem(channel, channel.our, lock) or lock_limit_problem(channel, limits)
    if problem is not None:
        return f"route via 0x{route.hops[0].hex()}: {problem}"
    if balance(channel.our, channel.partner, locked=channel.our.locked + lock.amount) < 0:
        return (f"insufficient capacity toward 0x{route.hops[0].hex()}: {channel.our_balance()} "
                f"< {lock.amount}")
    return None


def _next_route(state: InitiatorState, channels: Mapping[bytes, ChannelState],
                first: int, limits: RiskLimits | None = None) -> InitiatorTransition:
    """Lock on the first usable route from index `first`; none left: the payment failed."""
    failures = list(state.failures)
    for index in range(first, len(state.routes)):
        route = state.routes[index]
        channel = channels.get(route.channel_id)
        problem = _route_problem(state, route, channel, limits)
        if problem is not None:
            failures.append(problem)
            continue
        assert channel is not None
        lock = _lock_for(state, route, channel)
        send = ActionSendLockedTransfer(state.payment_id, lock.amount, lock.expiration, state.secrethash,
                                        state.initiator, route.hops[-1], encode_route(route.hops))
        new = replace(state, routes=state.routes[index:], attempt=Attempt(route, lock),
                      failures=tuple(failures))
        return new, [ChannelDo(route.channel_id, send)]
    new = replace(state, attempt=None, failures=tuple(failures), finished=True)
    return new, [EventTransferFailed(state.payment_id, state.secrethash, tuple(failures))]


def _claimable(state: InitiatorState, attempt: Attempt) -> bool:
    return state.now <= attempt.lock.expiration


def _on_secret(state: InitiatorState, secret: bytes) -> InitiatorTransition:
    attempt = state.attempt
    if secrethash_of(secret) != state.secrethash or state.secret is not None:
        return state, []
    state = replace(state, secret=secret)
    if attempt is None or attempt.outcome is not LockOutcome.PENDING or not _claimable(state, attempt):
        return state, []
    done = replace(state, attempt=replace(attempt, outcome=LockOutcome.UNLOCKED), finished=True)
    succeeded = EventTransferSucceeded(state.payment_id, state.secrethash, state.amount, attempt.route.fees)
    return done, [ChannelDo(attempt.route.channel_id, ActionUnlock(secret, state.payment_id)), succeeded]


def _on_reveal(state: InitiatorState, msg: SecretReveal, channels: Mapping[bytes, ChannelState]
               ) -> InitiatorTransition:
    return _on_secret(state, msg.secret)


def _on_registered(state: InitiatorState, event: ContractReceiveSecretRegistered,
                   channels: Mapping[bytes, ChannelState]) -> InitiatorTransition:
    """A registration in time makes our lock claimable on chain even if we already expired it off-chain
    (the partner refuses that `LockExpired`): the payment went through."""
    attempt = state.attempt
    if secrethash_of(event.secret) != state.secrethash or attempt is None or state.finished:
        return _on_secret(state, event.secret)
    if attempt.outcome is LockOutcome.EXPIRED and event.registered_at <= attempt.lock.expiration:
        done = replace(state, secret=event.secret, attempt=replace(attempt, outcome=LockOutcome.UNLOCKED),
                       finished=True)
        return done, [EventTransferSucceeded(state.payment_id, state.secrethash, state.amount,
                                             attempt.route.fees)]
    return _on_secret(state, event.secret)


def _on_tick(state: InitiatorState, tick: ActionTick, channels: Mapping[bytes, ChannelState]
             ) -> InitiatorTransition:
    """Past our lock's expiration with no secret: take the lock back; a tick later, try the next route
    (by then the channel has dropped the expired lock, so the same secrethash may be locked again)."""
    if tick.now <= state.now:
        return state, []
    state = replace(state, now=tick.now)
    attempt = state.attempt
    if attempt is None or state.finished:
        return state, []
    if attempt.outcome is LockOutcome.EXPIRED:
        return _route_failed(state, attempt, channels)
    if _claimable(state, attempt):
        return state, []
    expired = replace(state, attempt=replace(attempt, outcome=LockOutcome.EXPIRED))
    return expired, [ChannelDo(attempt.route.channel_id, ActionExpireLock(state.secrethash))]


def _route_failed(state: InitiatorState, attempt: Attempt, channels: Mapping[bytes, ChannelState]
                  ) -> InitiatorTransition:
    reason = (f"route via 0x{attempt.route.hops[0].hex()}: no secret came back before the lock expired "
              f"at {attempt.lock.expiration}")
    failed = EventRouteFailed(state.payment_id, state.secrethash, attempt.route.channel_id, reason)
    state = replace(state, attempt=None, failures=(*state.failures, reason))
    if state.secret is not None:
        # a secret known beyond the target lets any hop of a new route claim our lock without paying on
        why = "the secret became known only after our lock expired: locking under it again is unsafe"
        done = replace(state, failures=(*state.failures, why), finished=True)
        return done, [failed, EventTransferFailed(state.payment_id, state.secrethash, done.failures)]
    new, effects = _next_route(state, channels, 1)
    return new, [failed, *effects]


_INITIATOR_HANDLERS: dict[type, Callable[[InitiatorState, Any, Mapping[bytes, ChannelState]],
                                         InitiatorTransition]] = {
    SecretReveal: _on_reveal,
    ContractReceiveSecretRegistered: _on_registered,
    ActionTick: _on_tick,
}


def handle_initiator(state: InitiatorState, event: object, channels: Mapping[bytes, ChannelState]
                     ) -> InitiatorTransition:
    """Apply one input to our payment; `channels` (our channels by id) is read to pick a next route."""
    handler = _INITIATOR_HANDLERS.get(type(event))
    if handler is None:
        raise LocalFault(f"an initiator takes no {type(event).__name__}")
    return handler(state, event, channels)
