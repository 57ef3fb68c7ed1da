"""What the tower keeps per channel, and its byte encoding (msgpack arrays led by a record version).

Addresses are stored as 20 bytes, uint256 values as 32 big-endian bytes (msgpack integers stop at 64
bits). A record that does not decode raises `CorruptTowerRecord`: a damaged database is reported, never
half-read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
from eth_utils import to_checksum_address

from channeld.chain import SubmittedTx, TxRequest
from channeld.chain.contract import (
    ChannelState,
    Closing,
    InvalidCallArgument,
    OnChainChannel,
    Settlement,
    StoredProof,
    StoredProofFields,
)
from channeld.watchtower._errors import CorruptTowerRecord

RECORD_VERSION = 1


@dataclass(frozen=True, slots=True)
class HeldProof(StoredProofFields):
    """The newest proof the tower holds from one pusher for one channel: signed by the pusher's partner
    (`signature`), with the pusher's `BalanceProofUpdate` authorization over the same fields."""

    pusher: bytes
    nonce: int
    transferred_amount: int
    locked_amount: int
    locks_root: bytes
    signature: bytes
    authorization: bytes


@dataclass(frozen=True, slots=True)
class Dispute:
    """A close the tower must answer: submit the held proof with `nonce` before `settle_time`."""

    channel_id: bytes
    nonce: int
    settle_time: int
    tx_hash: bytes = b""
    submissions: int = 0


def _u256(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _int(raw: Any) -> int:
    if type(raw) is bytes and len(raw) == 32:
        return int.from_bytes(raw, "big")
    if type(raw) is int and raw >= 0:
        return raw
    raise ValueError(f"not an unsigned integer: {raw!r:.40}")


def _addr(raw: Any) -> str:
    if type(raw) is not bytes or len(raw) != 20:
        raise ValueError("not a 20-byte address")
    return to_checksum_address(raw)


def _addr_bytes(address: str) -> bytes:
    return bytes.fromhex(address[2:])


def _pack(fields: list[Any]) -> bytes:
    return msgpack.packb([RECORD_VERSION, *fields], use_bin_type=True)


def _unpack(raw: bytes, what: str, size: int) -> list[Any]:
    try:
        value = msgpack.unpackb(raw, raw=False, strict_map_key=True)
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise CorruptTowerRecord(f"{what} record is not msgpack: {type(exc).__name__}") from None
    if type(value) is not list or len(value) != size + 1 or value[0] != RECORD_VERSION:
        raise CorruptTowerRecord(f"{what} record has an unknown layout or version")
    return value[1:]


def _proof_fields(proof: StoredProof) -> list[Any]:
    return [proof.nonce, _u256(proof.transferred_amount), _u256(proof.locked_amount), proof.locks_root]


def _proof_from(raw: Any) -> StoredProof:
    nonce, transferred, locked, root = raw
    return StoredProof(_int(nonce), _int(transferred), _int(locked), bytes(root))


def encode_channel(channel: OnChainChannel) -> bytes:
    state, closing, settled = channel.state, channel.closing, channel.settled
    return _pack([
        channel.channel_id, _addr_bytes(state.participant1), _addr_bytes(state.participant2),
        _addr_bytes(state.token), state.challenge_period, _u256(state.deposit1), _u256(state.deposit2),
        _u256(state.withdrawn1), _u256(state.withdrawn2),
        None if closing is None else [_addr_bytes(closing.closer), closing.settle_time,
                                      _proof_fields(closing.proof1), _proof_fields(closing.proof2)],
        None if settled is None else [_u256(settled.amount1), _u256(settled.locked1),
                                      _u256(settled.amount2), _u256(settled.locked2)],
        channel.cooperative,
    ])


def decode_channel(raw: bytes) -> OnChainChannel:
    fields = _unpack(raw, "channel", 12)
    try:
        cid, p1, p2, token, period, d1, d2, w1, w2, closing, settled, cooperative = fields
        state = ChannelState(_addr(p1), _addr(p2), _addr(token), _int(period), _int(d1), _int(d2),
                             _int(w1), _int(w2))
        return OnChainChannel(
            bytes(cid), state,
            None if closing is None else Closing(_addr(closing[0]), _int(closing[1]),
                                                 _proof_from(closing[2]), _proof_from(closing[3])),
            None if settled is None else Settlement(*(_int(v) for v in settled)),
            bool(cooperative),
        )
    except (ValueError, TypeError, IndexError, InvalidCallArgument) as exc:
        raise CorruptTowerRecord(f"channel record does not decode: {exc}") from None


def encode_held(held: HeldProof) -> bytes:
    return _pack([held.pusher, held.nonce, _u256(held.transferred_amount), _u256(held.locked_amount),
                  held.locks_root, held.signature, held.authorization])


def decode_held(raw: bytes) -> HeldProof:
    fields = _unpack(raw, "proof", 7)
    try:
        pusher, nonce, transferred, locked, root, signature, authorization = fields
        held = HeldProof(bytes(pusher), _int(nonce), _int(transferred), _int(locked), bytes(root),
                         bytes(signature), bytes(authorization))
    except (ValueError, TypeError) as exc:
        raise CorruptTowerRecord(f"proof record does not decode: {exc}") from None
    if len(held.pusher) != 20 or len(held.locks_root) != 32 or len(held.signature) != 65 \
            or len(held.authorization) != 65:
        raise CorruptTowerRecord("proof record has a field of the wrong size")
    return held


def encode_dispute(dispute: Dispute) -> bytes:
    return _pack([dispute.channel_id, dispute.nonce, dispute.settle_time, dispute.tx_hash,
                  dispute.submissions])


def decode_dispute(raw: bytes) -> Dispute:
    fields = _unpack(raw, "dispute", 5)
    try:
        cid, nonce, settle_time, tx_hash, submissions = fields
        return Dispute(bytes(cid), _int(nonce), _int(settle_time), bytes(tx_hash), _int(submissions))
    except (ValueError, TypeError) as exc:
        raise CorruptTowerRecord(f"dispute record does not decode: {exc}") from None


def encode_flight(versions: Sequence[SubmittedTx]) -> bytes:
    """Every version sent with one nonce (oldest first): any of them may be the one mined."""
    first = versions[0]
    request = first.request
    return _pack([first.nonce, None if request.to is None else _addr_bytes(request.to), request.data,
                  _u256(request.value), first.gas_limit,
                  [[v.tx_hash, _u256(v.max_fee), _u256(v.priority_fee)] for v in versions]])


def decode_flight(raw: bytes) -> tuple[SubmittedTx, ...]:
    fields = _unpack(raw, "transaction", 6)
    try:
        nonce, to, data, value, gas, versions = fields
        request = TxRequest(None if to is None else _addr(to), bytes(data), _int(value), _int(gas))
        found = tuple(SubmittedTx(request, _int(nonce), bytes(tx_hash), _int(gas), _int(max_fee), _int(tip),
                                  0.0) for tx_hash, max_fee, tip in versions)
    except (ValueError, TypeError) as exc:
        raise CorruptTowerRecord(f"transaction record does not decode: {exc}") from None
    if not found or any(len(tx.tx_hash) != 32 for tx in found):
        raise CorruptTowerRecord("transaction record has no version or a hash of the wrong size")
    return found
