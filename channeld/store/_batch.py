"""`Batch`: the typed set of changes that one state transition makes, committed all at once.

A batch only collects and validates; nothing touches the disk until `Store.commit`. Outbox entries
and audit records get their sequence numbers (and audit records their time and hash link) inside the
writer thread at commit time, so concurrent commits still form one gap-free, ordered chain.
"""

from __future__ import annotations

from dataclasses import dataclass

from channeld.store import _keys as keys
from channeld.store._audit import AuditRecord
from channeld.store._errors import InvalidRecord
from channeld.store._keys import ChainCursor, Direction, Namespace

MAX_VALUE_BYTES = 1 << 20


def _check_value(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise InvalidRecord(f"record must be bytes, got {type(value).__name__}")
    if len(value) > MAX_VALUE_BYTES:
        raise InvalidRecord(f"record of {len(value)} bytes exceeds the {MAX_VALUE_BYTES}-byte limit")
    return value


@dataclass(frozen=True, slots=True)
class CommitReceipt:
    """What a commit was assigned: the outbox and audit sequence numbers, in the order queued."""

    outbox_seqs: tuple[int, ...]
    audit_seqs: tuple[int, ...]


class Batch:
    """Puts and deletes against the key layout, plus outbox and audit appends. Not thread-safe."""

    __slots__ = ("_audit", "_ops", "_outbox")

    def __init__(self) -> None:
        self._ops: list[tuple[bytes, bytes | None]] = []
        self._outbox: list[tuple[Namespace, bytes]] = []
        self._audit: list[AuditRecord] = []

    def __len__(self) -> int:
        return len(self._ops) + len(self._outbox) + len(self._audit)

    def _put(self, key: bytes, value: bytes) -> Batch:
        self._ops.append((key, _check_value(value)))
        return self

    def _delete(self, key: bytes) -> Batch:
        self._ops.append((key, None))
        return self

    def put_channel(self, ns: Namespace, channel_id: bytes, record: bytes) -> Batch:
        return self._put(keys.channel_key(ns, channel_id), record)

    def delete_channel(self, ns: Namespace, channel_id: bytes) -> Batch:
        return self._delete(keys.channel_key(ns, channel_id))

    def put_proof(self, ns: Namespace, channel_id: bytes, direction: Direction, record: bytes) -> Batch:
        """Store the newest proof of one direction; it replaces the older one (one row per direction)."""
        return self._put(keys.proof_key(ns, channel_id, direction), record)

    def delete_proof(self, ns: Namespace, channel_id: bytes, direction: Direction) -> Batch:
        return self._delete(keys.proof_key(ns, channel_id, direction))

    def put_lock(self, ns: Namespace, channel_id: bytes, secrethash: bytes, record: bytes) -> Batch:
        return self._put(keys.lock_key(ns, channel_id, secrethash), record)

    def delete_lock(self, ns: Namespace, channel_id: bytes, secrethash: bytes) -> Batch:
        return self._delete(keys.lock_key(ns, channel_id, secrethash))

    def put_payment(self, ns: Namespace, payment_id: bytes, record: bytes) -> Batch:
        return self._put(keys.payment_key(ns, payment_id), record)

    def delete_payment(self, ns: Namespace, payment_id: bytes) -> Batch:
        return self._delete(keys.payment_key(ns, payment_id))

    def put_ledger_row(self, row_id: bytes, record: bytes) -> Batch:
        return self._put(keys.ledger_key(row_id), record)

    def delete_ledger_row(self, row_id: bytes) -> Batch:
        return self._delete(keys.ledger_key(row_id))

    def put_peer(self, pubkey: bytes, record: bytes) -> Batch:
        return self._put(keys.peer_key(pubkey), record)

    def delete_peer(self, pubkey: bytes) -> Batch:
        return self._delete(keys.peer_key(pubkey))

    def set_chain_cursor(self, ns: Namespace, cursor: ChainCursor) -> Batch:
        if not isinstance(cursor, ChainCursor):
            raise InvalidRecord("chain cursor must be a ChainCursor")
        return self._put(keys.chain_cursor_key(ns), cursor.encode())

    def enqueue_outbox(self, ns: Namespace, record: bytes) -> Batch:
        """Queue a transaction to send; its sequence number is assigned at commit (see the receipt)."""
        if not isinstance(ns, Namespace):
            raise InvalidRecord("outbox namespace must be a Namespace")
        self._outbox.append((ns, _check_value(record)))
        return self

    def remove_outbox(self, ns: Namespace, seq: int) -> Batch:
        return self._delete(keys.outbox_key(ns, seq))

    def append_audit(self, record: AuditRecord) -> Batch:
        if not isinstance(record, AuditRecord):
            raise InvalidRecord("audit entries must be AuditRecord instances")
        self._audit.append(record)
        return self
