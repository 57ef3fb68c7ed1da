"""The audit log's binary form: segment headers, entry frames, namespace declarations.

A segment file is a 17-byte header (magic, format version, the sequence number of its first entry)
followed by frames. A frame is one length byte and that many bytes of payload; a length byte of 0
declares a namespace instead (28 bytes follow: chain id and contract) and gives it the segment's next
namespace index. Sequence numbers are not stored: an entry's is its segment's first plus its place.
Nor is the previous hash: it is the preceding entry's stored hash. Every entry stores its own hash,
which is sha256 of the entry's canonical JSON body (`_audit._canonical_halves`, the same body the JSON
export carries), so a frame whose content, place or predecessor changed no longer matches its hash.

Payload: time_ms u64 | namespace index u8 | channel id 32 | who 20 | kind (u8 length, ascii) |
amount (u8: sign bit 0x80, magnitude length; magnitude big-endian) | proof hash (u8 length, bytes
without leading zeros) | payment id (likewise) | hash 32. A payment's frame is about 147 bytes.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from channeld.store._audit import AuditEntry, AuditRecord, _canonical_halves
from channeld.store._errors import InvalidRecord
from channeld.store._keys import Namespace

MAGIC = b"CHDAUDIT"
FORMAT_VERSION = 1
_HEADER = struct.Struct(">8sBQ")
HEADER_SIZE = _HEADER.size
NAMESPACE_DECLARATION = 0
MAX_NAMESPACES = 256
_FIXED = struct.Struct(">QB32s20s")
_HASH_LEN = 32


def segment_header(first_seq: int) -> bytes:
    return _HEADER.pack(MAGIC, FORMAT_VERSION, first_seq)


def read_header(raw: bytes) -> int:
    """The first sequence number a segment header names; `InvalidRecord` if it is not one."""
    if len(raw) < HEADER_SIZE:
        raise InvalidRecord("audit segment is shorter than its header")
    magic, version, first_seq = _HEADER.unpack_from(raw)
    if magic != MAGIC or version != FORMAT_VERSION:
        raise InvalidRecord("not an audit segment of a known format")
    return int(first_seq)


def namespace_frame(ns: Namespace) -> bytes:
    return bytes([NAMESPACE_DECLARATION]) + ns.encode()


def _short(raw: bytes) -> bytes:
    stripped = raw.lstrip(b"\0")
    return bytes([len(stripped)]) + stripped


def seal_frame(record: AuditRecord, seq: int, time_ms: int, prev_hash: bytes,
               ns_index: int) -> tuple[bytes, bytes]:
    """The entry's hash and its frame (length byte included), encoded once (the writer's hot path)."""
    head, tail = _canonical_halves(record, seq, time_ms, prev_hash)
    digest = hashlib.sha256(head + tail).digest()
    return digest, encode_frame(record, time_ms, ns_index, digest)


def encode_frame(record: AuditRecord, time_ms: int, ns_index: int, digest: bytes) -> bytes:
    """An entry's frame with the hash it has (migration copies stored hashes, never recomputes them)."""
    amount = record.amount
    magnitude = abs(amount)
    magnitude_raw = magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "big")
    kind = record.kind.encode()
    payload = b"".join((
        _FIXED.pack(time_ms, ns_index, record.channel_id, record.who),
        bytes([len(kind)]), kind,
        bytes([(0x80 if amount < 0 else 0) | len(magnitude_raw)]), magnitude_raw,
        _short(record.proof_hash), _short(record.payment_id), digest,
    ))
    return bytes([len(payload)]) + payload


class _Cursor:
    __slots__ = ("pos", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.raw):
            raise InvalidRecord("audit frame ends early")
        part = self.raw[self.pos:self.pos + n]
        self.pos += n
        return part

    def short(self, width: int) -> bytes:
        n = self.take(1)[0]
        if n > width:
            raise InvalidRecord(f"audit frame field of {n} bytes exceeds {width}")
        return self.take(n).rjust(width, b"\0")


def decode_payload(payload: bytes, seq: int, prev_hash: bytes, namespaces: list[Namespace]) -> AuditEntry:
    """The entry a payload describes at `seq` after `prev_hash`; `InvalidRecord` if malformed."""
    if len(payload) < _FIXED.size:
        raise InvalidRecord("audit frame is too short")
    time_ms, ns_index, channel_id, who = _FIXED.unpack_from(payload)
    if ns_index >= len(namespaces):
        raise InvalidRecord(f"audit frame names undeclared namespace {ns_index}")
    cursor = _Cursor(payload[_FIXED.size:])
    kind_raw = cursor.take(cursor.take(1)[0])
    amount_head = cursor.take(1)[0]
    magnitude = int.from_bytes(cursor.take(amount_head & 0x3F), "big")
    amount = -magnitude if amount_head & 0x80 else magnitude
    proof_hash, payment_id = cursor.short(32), cursor.short(32)
    digest = cursor.take(_HASH_LEN)
    if cursor.pos != len(cursor.raw):
        raise InvalidRecord("audit frame has trailing bytes")
    try:
        kind = kind_raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise InvalidRecord("audit kind is not ascii") from exc
    record = AuditRecord(namespaces[ns_index], channel_id, who, kind, amount, proof_hash, payment_id)
    return AuditEntry(seq, time_ms, record, prev_hash, digest)


def entry_hash(entry: AuditEntry) -> bytes:
    """What the entry's hash must be, recomputed from its content, place and predecessor."""
    head, tail = _canonical_halves(entry.record, entry.seq, entry.timestamp_ms, entry.prev_hash)
    return hashlib.sha256(head + tail).digest()


@dataclass(frozen=True, slots=True)
class Frame:
    """One entry frame of a segment: its sequence number, byte offset and payload."""

    seq: int
    offset: int
    payload: bytes


def _declared(raw: bytes, declared_before: int) -> Namespace:
    if len(raw) < 28 or declared_before >= MAX_NAMESPACES:
        raise InvalidRecord("torn or excess namespace declaration")
    return Namespace.decode(raw)


def iter_frames(raw: bytes, first_seq: int, namespaces: list[Namespace]) -> Iterator[Frame]:
    """The entry frames of a segment's bytes (header included), declaring namespaces into `namespaces`.

    A torn frame at the end (a write cut short) is yielded as a frame whose payload is too short, so a
    verifier reports it at its sequence number.
    """
    pos, seq = HEADER_SIZE, first_seq
    while pos < len(raw):
        length = raw[pos]
        if length == NAMESPACE_DECLARATION:
            try:
                namespaces.append(_declared(raw[pos + 1:pos + 29], len(namespaces)))
            except InvalidRecord:
                yield Frame(seq, pos, b"")
                return
            pos += 29
            continue
        yield Frame(seq, pos, raw[pos + 1:pos + 1 + length])
        pos += 1 + length
        seq += 1
