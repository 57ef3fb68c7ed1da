"""The audit log: an append-only, hash-chained record of every balance change.

Each entry's body (canonical JSON: sorted keys, no spaces) names its sequence number, time, the
previous entry's hash and the change itself; its hash is sha256 of that body. A removed entry breaks
the sequence and the `prev` link, an edited one its own hash, a reordered one its sequence number, and
a truncated tail no longer meets the head recorded in the store. Pruning keeps a checkpoint (sequence
number and hash of the newest pruned entry) so the remaining chain still verifies from there.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from channeld.store._errors import InvalidRecord
from channeld.store._keys import Namespace, check_u64

GENESIS_HASH = bytes(32)
EXPORT_FORMAT = "channeld-audit"
EXPORT_VERSION = 1
_KIND = re.compile(r"[a-z][a-z0-9_]{0,31}")
_AMOUNT_LIMIT = 2**256


def _hex(raw: bytes) -> str:
    return "0x" + raw.hex()


def _unhex(text: object, length: int, name: str) -> bytes:
    if not isinstance(text, str) or not text.startswith("0x") or len(text) != 2 + 2 * length:
        raise InvalidRecord(f"{name} must be 0x-hex of {length} bytes")
    try:
        return bytes.fromhex(text[2:])
    except ValueError as exc:
        raise InvalidRecord(f"{name} is not hex") from exc


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One balance change as the caller describes it: who, what, how much, under which proof.

    `who` is the address of the participant that signed or caused the change, `kind` a short
    lower-case word chosen by the protocol layer (e.g. `payment_sent`, `deposit`), `amount` the
    signed change of our balance in the token's smallest unit, `proof_hash` the EIP-712 digest of the
    balance proof that carries it (zero bytes when none), `payment_id` zero bytes when not a payment.
    """

    namespace: Namespace
    channel_id: bytes
    who: bytes
    kind: str
    amount: int
    proof_hash: bytes = GENESIS_HASH
    payment_id: bytes = GENESIS_HASH

    def __post_init__(self) -> None:
        for name, value, length in (("channel_id", self.channel_id, 32), ("who", self.who, 20),
                                    ("proof_hash", self.proof_hash, 32),
                                    ("payment_id", self.payment_id, 32)):
            if not isinstance(value, bytes) or len(value) != length:
                raise InvalidRecord(f"audit {name} must be {length} bytes")
        if not isinstance(self.kind, str) or not _KIND.fullmatch(self.kind):
            raise InvalidRecord(f"audit kind must match {_KIND.pattern}, got {self.kind!r:.40}")
        if not isinstance(self.amount, int) or isinstance(self.amount, bool) \
                or not -_AMOUNT_LIMIT < self.amount < _AMOUNT_LIMIT:
            raise InvalidRecord("audit amount must be an integer of at most 256 bits")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """A stored audit record with its place in the chain."""

    seq: int
    timestamp_ms: int
    record: AuditRecord
    prev_hash: bytes
    hash: bytes

    def body(self) -> dict[str, object]:
        rec = self.record
        return {
            "seq": self.seq, "time_ms": self.timestamp_ms, "prev": _hex(self.prev_hash),
            "chain_id": rec.namespace.chain_id, "contract": _hex(rec.namespace.contract),
            "channel_id": _hex(rec.channel_id), "who": _hex(rec.who), "kind": rec.kind,
            "amount": rec.amount, "proof_hash": _hex(rec.proof_hash), "payment_id": _hex(rec.payment_id),
        }

    def to_json(self) -> bytes:
        """The stored and exported form: the body plus its hash, canonical JSON."""
        head, tail = _canonical_halves(self.record, self.seq, self.timestamp_ms, self.prev_hash)
        return head + b'"hash":"0x' + self.hash.hex().encode() + b'",' + tail


def _canonical_halves(rec: AuditRecord, seq: int, timestamp_ms: int, prev_hash: bytes) -> tuple[bytes, bytes]:
    """`_canonical(body)` split where `"hash"` sorts in, without json.dumps (writer hot path).

    Every value is an integer or a hex string and `kind` is `[a-z0-9_]`, so no escaping is ever
    needed; keys are written in sorted order. A test proves equality with `_canonical`.
    """
    head = (f'{{"amount":{rec.amount},"chain_id":{rec.namespace.chain_id},'
            f'"channel_id":"0x{rec.channel_id.hex()}","contract":"0x{rec.namespace.contract.hex()}",')
    tail = (f'"kind":"{rec.kind}","payment_id":"0x{rec.payment_id.hex()}",'
            f'"prev":"0x{prev_hash.hex()}","proof_hash":"0x{rec.proof_hash.hex()}",'
            f'"seq":{seq},"time_ms":{timestamp_ms},"who":"0x{rec.who.hex()}"}}')
    return head.encode(), tail.encode()


def _canonical(obj: dict[str, object]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _hash_body(body: dict[str, object]) -> bytes:
    return hashlib.sha256(_canonical(body)).digest()


def seal(record: AuditRecord, seq: int, timestamp_ms: int, prev_hash: bytes) -> AuditEntry:
    """Place `record` in the chain after the entry whose hash is `prev_hash`."""
    return decode_entry(seal_encoded(record, seq, timestamp_ms, prev_hash)[1])


def seal_encoded(record: AuditRecord, seq: int, timestamp_ms: int, prev_hash: bytes) -> tuple[bytes, bytes]:
    """The new entry's hash and its stored bytes, encoded once (the writer thread's form of `seal`)."""
    head, tail = _canonical_halves(record, seq, timestamp_ms, prev_hash)
    digest = hashlib.sha256(head + tail).digest()
    return digest, head + b'"hash":"0x' + digest.hex().encode() + b'",' + tail


def decode_entry(raw: bytes) -> AuditEntry:
    """Parse a stored or exported entry; raises `InvalidRecord` on any malformed field."""
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRecord("audit entry is not JSON") from exc
    if not isinstance(obj, dict):
        raise InvalidRecord("audit entry is not a JSON object")
    try:
        ns = Namespace(obj["chain_id"], _unhex(obj["contract"], 20, "contract"))
        record = AuditRecord(ns, _unhex(obj["channel_id"], 32, "channel_id"), _unhex(obj["who"], 20, "who"),
                             obj["kind"], obj["amount"], _unhex(obj["proof_hash"], 32, "proof_hash"),
                             _unhex(obj["payment_id"], 32, "payment_id"))
        return AuditEntry(check_u64("seq", obj["seq"]), check_u64("time_ms", obj["time_ms"]), record,
                          _unhex(obj["prev"], 32, "prev"), _unhex(obj["hash"], 32, "hash"))
    except KeyError as exc:
        raise InvalidRecord(f"audit entry lacks field {exc}") from exc


@dataclass(frozen=True, slots=True)
class ChainPoint:
    """A position in the audit chain: the sequence number and hash of one entry.

    `seq == -1` with the genesis hash means "before the first entry".
    """

    seq: int
    hash: bytes

    def to_json(self) -> dict[str, object]:
        return {"seq": self.seq, "hash": _hex(self.hash)}

    @classmethod
    def from_json(cls, obj: object) -> ChainPoint:
        if not isinstance(obj, dict) or not isinstance(obj.get("seq"), int) or obj["seq"] < -1:
            raise InvalidRecord("chain point must be an object with an integer seq >= -1")
        return cls(obj["seq"], _unhex(obj.get("hash"), 32, "chain point hash"))


START = ChainPoint(-1, GENESIS_HASH)


@dataclass(frozen=True, slots=True)
class AuditVerdict:
    """The outcome of `verify`: `ok`, or the sequence number of the first bad entry and why."""

    ok: bool
    first_bad: int | None = None
    reason: str = ""
    entries: int = 0


def verify_chain(entries: Iterable[tuple[int, bytes]], checkpoint: ChainPoint,
                 head: ChainPoint) -> AuditVerdict:
    """Check (seq from key, stored bytes) pairs in key order, from `checkpoint` to `head`.

    The first bad index is always the seq the chain expected next: the entry that is missing,
    edited, or out of place. A missing tail is reported at the first missing seq.
    """
    expected = checkpoint
    count = 0
    for key_seq, raw in entries:
        bad = _check_one(key_seq, raw, expected)
        if bad:
            return AuditVerdict(False, expected.seq + 1, bad, count)
        expected = ChainPoint(key_seq, decode_entry(raw).hash)
        count += 1
    return end_verdict(expected, head, count)


def end_verdict(expected: ChainPoint, head: ChainPoint, count: int) -> AuditVerdict:
    """The verdict once every entry checked out up to `expected`: does the chain end at the head?"""
    if expected == head:
        return AuditVerdict(True, entries=count)
    if expected.seq < head.seq:
        return AuditVerdict(False, expected.seq + 1, "entries missing before the recorded head", count)
    if expected.seq > head.seq:
        return AuditVerdict(False, head.seq + 1, "entries beyond the recorded head", count)
    return AuditVerdict(False, expected.seq, "last entry does not match the recorded head", count)


def _check_one(key_seq: int, raw: bytes, expected: ChainPoint) -> str:
    if key_seq != expected.seq + 1:
        return f"sequence gap: expected {expected.seq + 1}, found {key_seq}"
    try:
        entry = decode_entry(raw)
    except InvalidRecord as exc:
        return f"unreadable entry: {exc}"
    if entry.seq != key_seq:
        return f"entry claims seq {entry.seq} but is stored at {key_seq}"
    if entry.prev_hash != expected.hash:
        return "prev link does not match the preceding entry's hash"
    if _hash_body(entry.body()) != entry.hash:
        return "entry hash does not match its content"
    return ""


def export_lines(checkpoint: ChainPoint, head: ChainPoint, entries: Iterable[bytes]) -> Iterator[bytes]:
    """JSONL: a header line (format, version, checkpoint, head), then one entry per line."""
    header = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION,
              "checkpoint": checkpoint.to_json(), "head": head.to_json()}
    yield _canonical(header) + b"\n"
    for raw in entries:
        yield raw + b"\n"


def verify_jsonl(lines: Iterable[bytes]) -> AuditVerdict:
    """Verify an exported audit log offline, with no store at hand."""
    it = iter(lines)
    try:
        header = json.loads(next(it))
    except (StopIteration, ValueError) as exc:
        raise InvalidRecord("audit export has no readable header line") from exc
    if not isinstance(header, dict) or header.get("format") != EXPORT_FORMAT \
            or header.get("version") != EXPORT_VERSION:
        raise InvalidRecord("not a channeld audit export of a known version")
    checkpoint = ChainPoint.from_json(header.get("checkpoint"))
    head = ChainPoint.from_json(header.get("head"))
    return verify_chain(_seq_pairs(it), checkpoint, head)


def _seq_pairs(lines: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    for position, line in enumerate(lines):
        raw = line.rstrip(b"\n")
        try:
            seq = json.loads(raw)["seq"]
        except (ValueError, KeyError, TypeError):
            seq = -2 - position  # unreadable: make it fail as a gap at this position
        yield (seq if isinstance(seq, int) else -2 - position), raw


def encode_point(point: ChainPoint) -> bytes:
    """Binary form kept under the meta keys: seq + 1 as a big-endian u64, then the hash."""
    return (point.seq + 1).to_bytes(8, "big") + point.hash


def decode_point(raw: bytes) -> ChainPoint:
    if len(raw) != 40:
        raise InvalidRecord(f"stored chain point must be 40 bytes, got {len(raw)}")
    return ChainPoint(int.from_bytes(raw[:8], "big") - 1, raw[8:])
