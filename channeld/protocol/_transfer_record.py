"""A mediated payment's state (initiator, mediator or target) as one compact msgpack record, and back.

The node stores it, keyed by secrethash, in the same write as the channel records its effects touch, so
that a restart resumes every payment where it stood. Layout (version 1): `[1, kind, fields...]` with kind
1 initiator, 2 mediator, 3 target; uint256 amounts as 32 big-endian bytes, a lock as `[amount,
expiration, secrethash]`, a route as `[channel_id, [hop, ...], fees, lock_time]`, enums as integers,
absent values as nil. A new layout gets a new version and a migration here; old records stay readable.
"""

from __future__ import annotations

from typing import Any

import msgpack

from channeld.protocol._initiator import Attempt, InitiatorState, Route
from channeld.protocol._mediator import MediatorState
from channeld.protocol._record import CorruptRecord
from channeld.protocol._target import PaymentRequest, TargetState
from channeld.protocol._transfer import LockOutcome
from channeld.wire import Lock

TRANSFER_RECORD_VERSION = 1
_INITIATOR, _MEDIATOR, _TARGET = 1, 2, 3
TransferState = InitiatorState | MediatorState | TargetState


def _u(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _int(value: Any) -> int:
    if type(value) is not bytes or len(value) != 32:
        raise CorruptRecord("uint256 field is not 32 bytes")
    return int.from_bytes(value, "big")


def _lock(lock: Lock | None) -> list[Any] | None:
    return None if lock is None else [_u(lock.amount), lock.expiration, lock.secrethash]


def _lock_of(f: Any) -> Lock | None:
    return None if f is None else Lock(_int(f[0]), f[1], f[2])


def _route(route: Route) -> list[Any]:
    return [route.channel_id, list(route.hops), _u(route.fees), route.lock_time]


def _route_of(f: Any) -> Route:
    return Route(f[0], tuple(f[1]), _int(f[2]), f[3])


def transfer_to_record(state: TransferState) -> bytes:
    if isinstance(state, InitiatorState):
        a = state.attempt
        attempt = None if a is None else [_route(a.route), _lock(a.lock), int(a.outcome)]
        fields = [_INITIATOR, state.payment_id, state.initiator, _u(state.amount), state.secrethash,
                  _u(state.fee_cap), [_route(r) for r in state.routes], state.now, attempt,
                  list(state.failures), state.secret, state.finished]
    elif isinstance(state, MediatorState):
        fields = [_MEDIATOR, state.secrethash, state.payment_id, state.payer_channel, _lock(state.payer_lock),
                  state.payee_channel, _lock(state.payee_lock), state.now, int(state.payer_outcome),
                  int(state.payee_outcome), state.secret, state.registered_at, state.refusal]
    else:
        r = state.request
        fields = [_TARGET, [r.secrethash, _u(r.amount), r.expires_at], state.secret, state.now,
                  [[cid, _lock(lock)] for cid, lock in state.locks], state.revealed, _u(state.paid),
                  list(state.refusals), state.reveal_timeout]
    return msgpack.packb([TRANSFER_RECORD_VERSION, *fields], use_bin_type=True)


def transfer_from_record(record: bytes) -> TransferState:
    try:
        fields = msgpack.unpackb(record, raw=False, use_list=True, strict_map_key=True)
        if type(fields) is not list or len(fields) < 2 or fields[0] != TRANSFER_RECORD_VERSION:
            raise CorruptRecord("a transfer record is an array starting with version 1")
        kind, rest = fields[1], fields[2:]
        if kind == _INITIATOR:
            return _initiator(rest)
        if kind == _MEDIATOR:
            return _mediator(rest)
        if kind == _TARGET:
            return _target(rest)
        raise CorruptRecord(f"unknown transfer kind {kind!r}")
    except CorruptRecord:
        raise
    except (ValueError, TypeError, IndexError, KeyError, msgpack.ExtraData) as exc:
        raise CorruptRecord(f"transfer record does not parse: {exc}") from None


def _initiator(f: list[Any]) -> InitiatorState:
    (payment_id, initiator, amount, secrethash, fee_cap, routes, now, attempt, failures, secret,
     finished) = f
    at = None
    if attempt is not None:
        lock = _lock_of(attempt[1])
        if lock is None:
            raise CorruptRecord("an attempt's lock is missing")
        at = Attempt(_route_of(attempt[0]), lock, LockOutcome(attempt[2]))
    return InitiatorState(payment_id, initiator, _int(amount), secrethash, _int(fee_cap),
                          tuple(_route_of(r) for r in routes), now, at, tuple(failures), secret,
                          bool(finished))


def _mediator(f: list[Any]) -> MediatorState:
    (secrethash, payment_id, payer_channel, payer_lock, payee_channel, payee_lock, now, payer_outcome,
     payee_outcome, secret, registered_at, refusal) = f
    lock = _lock_of(payer_lock)
    if lock is None:
        raise CorruptRecord("a mediator record needs the payer's lock")
    return MediatorState(secrethash, payment_id, payer_channel, lock, payee_channel, _lock_of(payee_lock),
                         now, LockOutcome(payer_outcome), LockOutcome(payee_outcome), secret, registered_at,
                         refusal)


def _target(f: list[Any]) -> TargetState:
    request, secret, now, locks, revealed, paid, refusals, reveal_timeout = f
    held = []
    for cid, lock in locks:
        parsed = _lock_of(lock)
        if parsed is None:
            raise CorruptRecord("a target's lock is missing")
        held.append((cid, parsed))
    return TargetState(PaymentRequest(request[0], _int(request[1]), request[2]), secret, now, tuple(held),
                       bool(revealed), _int(paid), tuple(refusals), reveal_timeout)
