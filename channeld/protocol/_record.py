"""A channel's state as one compact msgpack record, and back (the store keeps the latest per channel).

Layout (schema 2): `[2, chain_id, contract, channel_id, challenge_period, our_side, partner_side,
partner_public_key, status, now, closer, settle_deadline, settle_submitted, settle, in_flight, held,
reveal_timeout, locks_in_flight, secrets, registered]` where a side is `[address, deposit, withdrawn, proof,
withdraw, locks]`, a lock `[amount, expiration, secrethash]`, a secret `[secret, registering]`, a
registration `[secrethash, time]`; uint256 values are 32 big-endian bytes as on the wire, proofs use their
wire layout, and payments and lock messages are their encoded wire bytes.

Schema 1 (before locks) had 5-field sides and ended at `held`; its migration adds no locks, the default
reveal timeout and empty lock lists. A new layout gets a new schema number and a migration in
`_MIGRATIONS`; old records stay readable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack

from channeld.errors import LocalFault
from channeld.protocol._state import (
    DEFAULT_REVEAL_TIMEOUT,
    ChannelState,
    ChannelStatus,
    KnownSecret,
    LockMessage,
    SettleTerms,
    Side,
    WithdrawTerms,
)
from channeld.wire import (
    BalanceProof,
    DecodeError,
    Lock,
    LockedTransfer,
    LockExpired,
    Message,
    Payment,
    Unlock,
    decode,
    encode,
)

SCHEMA_VERSION = 2


class CorruptRecord(LocalFault):
    """A stored record that does not parse: the store is damaged or from an unknown future version."""


def _u(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _int(value: bytes) -> int:
    if type(value) is not bytes or len(value) != 32:
        raise CorruptRecord("uint256 field is not 32 bytes")
    return int.from_bytes(value, "big")


def _opt_bytes(value: Any) -> bytes | None:
    if value is not None and type(value) is not bytes:
        raise CorruptRecord("expected bytes or nil")
    return value


# Wire bytes of messages kept in records. A payment stays in flight over many records (up to 64 at a
# time, re-encoded whenever its channel is written), so its bytes are computed once. Keyed by identity:
# the entry holds the message itself, so its id cannot be reused while cached; emptied when full.
_ENCODED: dict[int, tuple[Message, bytes]] = {}
_ENCODED_LIMIT = 8192


def _encoded(msg: Message) -> bytes:
    found = _ENCODED.get(id(msg))
    if found is not None and found[0] is msg:
        return found[1]
    if len(_ENCODED) >= _ENCODED_LIMIT:
        _ENCODED.clear()
    data = encode(msg)
    _ENCODED[id(msg)] = (msg, data)
    return data


def to_record(state: ChannelState) -> bytes:
    settle = None if state.settle is None else _settle_fields(state.settle)
    return msgpack.packb([
        SCHEMA_VERSION, state.chain_id, state.contract, state.channel_id, state.challenge_period,
        _side_fields(state.our), _side_fields(state.partner), state.partner_public_key,
        int(state.status), state.now, state.closer, state.settle_deadline, state.settle_submitted,
        settle, [_encoded(p) for p in state.in_flight], [_encoded(p) for p in state.held],
        state.reveal_timeout, [_encoded(m) for m in state.locks_in_flight],
        [[s.secret, s.registering] for s in state.secrets], [list(r) for r in state.registered],
    ], use_bin_type=True)


def from_record(record: bytes) -> ChannelState:
    try:
        fields = msgpack.unpackb(record, raw=False, use_list=True, strict_map_key=True)
        if type(fields) is not list or not fields or type(fields[0]) is not int:
            raise CorruptRecord("a channel record is an array starting with its schema version")
        while fields[0] != SCHEMA_VERSION:
            migrate = _MIGRATIONS.get(fields[0])
            if migrate is None:
                raise CorruptRecord(f"unknown channel record schema {fields[0]}")
            fields = migrate(fields)
        return _state_from_fields(fields[1:])
    except CorruptRecord:
        raise
    except (ValueError, TypeError, IndexError, DecodeError, msgpack.ExtraData) as exc:
        raise CorruptRecord(f"channel record does not parse: {exc}") from None


def _state_from_fields(f: list[Any]) -> ChannelState:
    (chain_id, contract, channel_id, challenge_period, our, partner, partner_key, status, now, closer,
     deadline, settle_submitted, settle, in_flight, held, reveal_timeout, locks_in_flight, secrets,
     registered) = f
    return ChannelState(
        chain_id=chain_id, contract=contract, channel_id=channel_id, challenge_period=challenge_period,
        our=_side_from_fields(our), partner=_side_from_fields(partner), partner_public_key=partner_key,
        status=ChannelStatus(status), now=now, closer=_opt_bytes(closer), settle_deadline=deadline,
        settle_submitted=bool(settle_submitted),
        settle=None if settle is None else _settle_from_fields(settle),
        in_flight=tuple(_payment(p) for p in in_flight), held=tuple(_proof_message(p) for p in held),
        reveal_timeout=reveal_timeout, locks_in_flight=tuple(_lock_message(m) for m in locks_in_flight),
        secrets=tuple(KnownSecret(_bytes(s), bool(r)) for s, r in secrets),
        registered=tuple((_bytes(h), at) for h, at in registered))


def _bytes(value: Any) -> bytes:
    if type(value) is not bytes:
        raise CorruptRecord("expected bytes")
    return value


def _payment(data: bytes) -> Payment:
    msg = decode(data)
    if not isinstance(msg, Payment):
        raise CorruptRecord("a stored payment is not a Payment message")
    return msg


def _lock_message(data: bytes) -> LockMessage:
    msg = decode(data)
    if not isinstance(msg, (LockedTransfer, Unlock, LockExpired)):
        raise CorruptRecord("a stored lock message is not LockedTransfer, Unlock or LockExpired")
    return msg


def _proof_message(data: bytes) -> Payment | LockMessage:
    msg = decode(data)
    if isinstance(msg, Payment):
        return msg
    return _lock_message(data)


def _side_fields(side: Side) -> list[Any]:
    proof = None if side.proof is None else side.proof.to_wire()
    w = side.withdraw
    withdraw = None if w is None else [w.participant, _u(w.total_withdraw), w.expiry, w.receiver,
                                       w.participant_signature, w.partner_signature]
    locks = [[_u(lock.amount), lock.expiration, lock.secrethash] for lock in side.locks]
    return [side.address, _u(side.deposit), _u(side.withdrawn), proof, withdraw, locks]


def _side_from_fields(f: list[Any]) -> Side:
    address, deposit, withdrawn, proof, withdraw, locks = f
    w = None
    if withdraw is not None:
        participant, total, expiry, receiver, sig, partner_sig = withdraw
        w = WithdrawTerms(participant, _int(total), expiry, receiver, sig, _opt_bytes(partner_sig))
    bp = None if proof is None else BalanceProof.from_wire_fields("stored proof", proof)
    return Side(address=address, deposit=_int(deposit), withdrawn=_int(withdrawn), proof=bp, withdraw=w,
                locks=tuple(Lock(_int(a), e, _bytes(h)) for a, e, h in locks))


def _settle_fields(s: SettleTerms) -> list[Any]:
    return [s.participant1, _u(s.amount1), s.receiver1, s.participant2, _u(s.amount2), s.receiver2,
            s.signature1, s.signature2, s.requested_by_us]


def _settle_from_fields(f: list[Any]) -> SettleTerms:
    p1, a1, r1, p2, a2, r2, s1, s2, ours = f
    return SettleTerms(p1, _int(a1), r1, p2, _int(a2), r2, _opt_bytes(s1), _opt_bytes(s2), bool(ours))


# schema number -> function turning such a record's fields into the next schema's fields
def _from_schema1(fields: list[Any]) -> list[Any]:
    """Schema 1 predates locks: sides gain an empty lock list; the state gains the lock fields' defaults."""
    if len(fields) != 16:
        raise CorruptRecord(f"a schema 1 record has 16 fields, not {len(fields)}")
    fields = [2, *fields[1:]]
    for side in (5, 6):
        fields[side] = [*fields[side], []]
    return [*fields, DEFAULT_REVEAL_TIMEOUT, [], [], []]


_MIGRATIONS: dict[int, Callable[[list[Any]], list[Any]]] = {1: _from_schema1}
