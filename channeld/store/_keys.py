"""The key layout: one tag byte per table, then the (chain id, contract) namespace, then the row id.

Chain-scoped tables carry the namespace right after the tag, so every row of one deployment sits in
one contiguous key range and a second chain is just another range (no migration). Node-scoped
tables (meta, peers, audit log) are not chain-scoped: a peer's transport identity and the audit
chain are shared by all chains; each audit entry names its namespace in its body instead.
The full table is documented in docs/storage.md; the tags below are part of the on-disk format and
never change meaning.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from channeld.store._errors import InvalidRecord

CHAIN_ID_MAX = 2**64 - 1
SEQ_MAX = 2**64 - 1
_U64 = struct.Struct(">Q")


class Table(enum.IntEnum):
    META = 0x00
    CHANNEL = 0x01
    PROOF = 0x02
    LOCK = 0x03
    PAYMENT = 0x04
    PEER = 0x05
    CHAIN_CURSOR = 0x06
    OUTBOX = 0x07
    AUDIT = 0x08  # schema 1 only: entries now live in the audit log's segment files
    AUDIT_PENDING = 0x09  # audit frames of rounds not yet fsynced in their segment (see _auditlog)
    RISK_LEDGER = 0x0A  # the risk limits' hourly buckets: a row per peer and one for the total


NAMESPACED_TABLES = frozenset(
    {Table.CHANNEL, Table.PROOF, Table.LOCK, Table.PAYMENT, Table.CHAIN_CURSOR, Table.OUTBOX}
)


class Direction(enum.IntEnum):
    """Which side signed a balance proof: the one we sent, or the one our partner sent us."""

    OUTGOING = 0
    INCOMING = 1


def _check_bytes(name: str, value: object, length: int) -> bytes:
    if not isinstance(value, bytes) or len(value) != length:
        raise InvalidRecord(f"{name} must be {length} bytes, got {value!r:.80}")
    return value


def check_u64(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= SEQ_MAX:
        raise InvalidRecord(f"{name} must be an integer in [0, 2**64), got {value!r:.80}")
    return value


@dataclass(frozen=True, slots=True)
class Namespace:
    """One channel contract on one chain: the scope of every channel-related key."""

    chain_id: int
    contract: bytes

    def __post_init__(self) -> None:
        check_u64("chain_id", self.chain_id)
        if self.chain_id == 0:
            raise InvalidRecord("chain_id must be positive")
        _check_bytes("contract address", self.contract, 20)

    def encode(self) -> bytes:
        return _U64.pack(self.chain_id) + self.contract

    @classmethod
    def decode(cls, raw: bytes) -> Namespace:
        return cls(_U64.unpack(raw[:8])[0], raw[8:28])

    def __str__(self) -> str:
        return f"{self.chain_id}:0x{self.contract.hex()}"


NAMESPACE_LEN = 28


def table_prefix(table: Table, ns: Namespace | None = None) -> bytes:
    """The key prefix of a whole table, or of one namespace's rows in a chain-scoped table."""
    if (table in NAMESPACED_TABLES) != (ns is not None):
        raise InvalidRecord(f"table {table.name} {'needs' if ns is None else 'takes no'} namespace")
    return bytes([table]) + (ns.encode() if ns is not None else b"")


def meta_key(name: bytes) -> bytes:
    return bytes([Table.META]) + name


def channel_key(ns: Namespace, channel_id: bytes) -> bytes:
    return table_prefix(Table.CHANNEL, ns) + _check_bytes("channel_id", channel_id, 32)


def proof_key(ns: Namespace, channel_id: bytes, direction: Direction) -> bytes:
    direction = Direction(direction)
    return table_prefix(Table.PROOF, ns) + _check_bytes("channel_id", channel_id, 32) + bytes([direction])


def lock_prefix(ns: Namespace, channel_id: bytes) -> bytes:
    return table_prefix(Table.LOCK, ns) + _check_bytes("channel_id", channel_id, 32)


def lock_key(ns: Namespace, channel_id: bytes, secrethash: bytes) -> bytes:
    return lock_prefix(ns, channel_id) + _check_bytes("secrethash", secrethash, 32)


def payment_key(ns: Namespace, payment_id: bytes) -> bytes:
    return table_prefix(Table.PAYMENT, ns) + _check_bytes("payment_id", payment_id, 32)


def ledger_key(row_id: bytes) -> bytes:
    return table_prefix(Table.RISK_LEDGER) + _check_bytes("ledger row id", row_id, 32)


def peer_key(pubkey: bytes) -> bytes:
    pubkey = _check_bytes("peer public key", pubkey, 33)
    if pubkey[0] not in (2, 3):
        raise InvalidRecord("peer public key must be a compressed secp256k1 point (0x02/0x03 prefix)")
    return table_prefix(Table.PEER) + pubkey


def chain_cursor_key(ns: Namespace) -> bytes:
    return table_prefix(Table.CHAIN_CURSOR, ns)


def outbox_key(ns: Namespace, seq: int) -> bytes:
    return table_prefix(Table.OUTBOX, ns) + _U64.pack(check_u64("outbox seq", seq))


def audit_key(seq: int) -> bytes:
    return table_prefix(Table.AUDIT) + _U64.pack(check_u64("audit seq", seq))


def decode_seq(key: bytes) -> int:
    """The trailing big-endian u64 of an outbox or audit key."""
    return int(_U64.unpack(key[-8:])[0])


@dataclass(frozen=True, slots=True)
class ChainCursor:
    """How far the chain follower got: the last fully processed block, by number and hash."""

    block_number: int
    block_hash: bytes

    def __post_init__(self) -> None:
        check_u64("block_number", self.block_number)
        _check_bytes("block_hash", self.block_hash, 32)

    def encode(self) -> bytes:
        return _U64.pack(self.block_number) + self.block_hash

    @classmethod
    def decode(cls, raw: bytes) -> ChainCursor:
        if len(raw) != 40:
            raise InvalidRecord(f"chain cursor record must be 40 bytes, got {len(raw)}")
        return cls(_U64.unpack(raw[:8])[0], raw[8:])
