"""The schema steps of the store (registered on `MIGRATIONS`), each with a test in tests/store/.

1 -> 2: the audit log leaves the state store. Release 1 kept one canonical-JSON entry per key under
table 0x08; the step turns them into segment frames (the stored hashes copied, never recomputed, so an
entry tampered with before the migration still fails verification after it) and puts those frames under
pending keys with the log's durable end. Opening the store then writes them into the segment files
exactly as it repairs a log after a crash (`_auditlog.open_log`), and deletes the pending keys.
"""

from __future__ import annotations

import struct

import plyvel
from plyvel._plyvel import WriteBatch

from channeld.store._audit import decode_entry
from channeld.store._auditframe import HEADER_SIZE, encode_frame, namespace_frame
from channeld.store._auditlog import AUDIT_CHECKPOINT_KEY, AUDIT_TAIL_KEY, pending_key, stored_point
from channeld.store._keys import Namespace, Table, table_prefix
from channeld.store._schema import MIGRATIONS

CHUNK_BYTES = 256 << 10


@MIGRATIONS.register(1)
def audit_log_out_of_the_state_store(db: plyvel.DB, batch: WriteBatch) -> None:
    first = stored_point(db, AUDIT_CHECKPOINT_KEY).seq + 1
    known: dict[Namespace, int] = {}
    offset, chunk_start, chunk = HEADER_SIZE, HEADER_SIZE, bytearray()
    for key, raw in db.iterator(prefix=table_prefix(Table.AUDIT)):
        entry = decode_entry(raw)
        ns = entry.record.namespace
        if ns not in known:
            known[ns] = len(known)
            chunk += namespace_frame(ns)
        chunk += encode_frame(entry.record, entry.timestamp_ms, known[ns], entry.hash)
        batch.delete(key)
        if len(chunk) >= CHUNK_BYTES:
            batch.put(pending_key(first, chunk_start), bytes(chunk))
            offset = chunk_start = chunk_start + len(chunk)
            chunk = bytearray()
    if chunk:
        batch.put(pending_key(first, chunk_start), bytes(chunk))
        offset = chunk_start + len(chunk)
    batch.put(AUDIT_TAIL_KEY, struct.pack(">QQ", first, offset))
