"""`Store`: opens a data directory, serves reads, and funnels every write through the writer thread."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, TypeVar

import plyvel

from channeld.store import _keys as keys
from channeld.store import _migrations  # noqa: F401  (registers the schema steps)
from channeld.store._audit import AuditEntry, AuditVerdict, ChainPoint, encode_point, export_lines
from channeld.store._auditlog import (
    AUDIT_CHECKPOINT_KEY,
    AUDIT_HEAD_KEY,
    AuditLog,
    LogView,
    backup_records,
    entries,
    open_log,
    stored_point,
    verify_view,
)
from channeld.store._auditreverse import SegmentIndexes, newest_first
from channeld.store._backup import write_backup
from channeld.store._batch import Batch, CommitReceipt
from channeld.store._errors import StoreError, StoreLocked, StoreUnavailable, plyvel_message
from channeld.store._keys import ChainCursor, Direction, Namespace, Table
from channeld.store._schema import MIGRATIONS, SCHEMA_VERSION, MigrationRegistry, prepare, read_version
from channeld.store._writer import OUTBOX_NEXT_KEY, GroupCommitWriter, PendingCommit, WriterStatistics

_T = TypeVar("_T")


def open_db(path: Path) -> plyvel.DB:
    """Open (creating if missing) a LevelDB, mapping its failures to typed errors."""
    try:
        return plyvel.DB(str(path), create_if_missing=True, paranoid_checks=True)
    except plyvel.IOError as exc:
        message = plyvel_message(exc)
        if "LOCK" in message and ("already held" in message or "unavailable" in message):
            raise StoreLocked(f"data directory {path} is in use by another process or store") from exc
        raise StoreUnavailable(f"cannot open data directory {path}: {message}") from exc
    except plyvel.Error as exc:
        raise StoreError(f"cannot open data directory {path}: {plyvel_message(exc)}") from exc


class Store:
    """The node's LevelDB. Reads are direct; writes are `Batch`es committed durably (fsync)."""

    def __init__(self, path: Path, db: plyvel.DB, audit_log: AuditLog, writer: GroupCommitWriter) -> None:
        self.path = path
        self._db = db
        self._log = audit_log
        self._segment_indexes = SegmentIndexes()  # for newest-first reads; O(segments) memory
        self._writer = writer
        self._prune_lock = threading.Lock()

    @classmethod
    def open(cls, path: str | Path, *, schema_version: int = SCHEMA_VERSION,
             migrations: MigrationRegistry = MIGRATIONS, clock: Callable[[], float] = time.time) -> Store:
        """Open or create the store in `path`, migrating an older schema; refuse a locked directory."""
        path = Path(path)
        db = open_db(path)
        try:
            prepare(db, schema_version, migrations)
            outbox_raw = db.get(OUTBOX_NEXT_KEY)
            outbox_next = 0 if outbox_raw is None else int.from_bytes(outbox_raw, "big")
            audit_log = open_log(path, db)
            writer = GroupCommitWriter(db, audit_log, stored_point(db, AUDIT_HEAD_KEY), outbox_next, clock)
        except plyvel.Error as exc:
            db.close()
            raise StoreUnavailable(f"cannot prepare data directory {path}: {plyvel_message(exc)}") from exc
        except BaseException:
            db.close()
            raise
        return cls(path, db, audit_log, writer)

    def close(self) -> None:
        """Finish queued commits and release the directory lock. Idempotent."""
        self._writer.close()
        if not self._db.closed:
            self._log.close(self._db)
            with contextlib.suppress(plyvel.Error):
                # LevelDB keeps every overwritten channel row and spent pending key in its log and young
                # levels until a compaction: megabytes that say nothing about the node's state. Dropping
                # them here keeps the directory at the size of the live rows and makes the next open
                # replay no log.
                self._db.compact_range(start=b"", stop=b"\xff")  # (no bounds compacts nothing in plyvel)
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # Writes -----------------------------------------------------------------------------------

    async def commit(self, batch: Batch) -> CommitReceipt:
        """Return once `batch` is durable (fsynced), all of it, or raise and have none of it.

        Cancellation is honoured only before the batch is queued; once queued the call waits for
        the outcome (about one fsync), so a caller never loses track of whether its state is durable.
        """
        return await self._writer.commit(batch)

    def submit(self, batch: Batch) -> PendingCommit:
        """Queue `batch` without waiting (trio only); batches become durable in submission order.

        The caller must not act on the batch's state until `await pending.wait_durable()` returns.
        """
        return self._writer.submit(batch)

    def commit_sync(self, batch: Batch) -> CommitReceipt:
        """`commit` for code outside trio (tools, migrations, tests); blocks the calling thread."""
        return self._writer.commit_sync(batch)

    def statistics(self) -> WriterStatistics:
        return self._writer.statistics()

    @property
    def schema_version(self) -> int | None:
        return read_version(self._db)

    # Reads ------------------------------------------------------------------------------------

    def get_channel(self, ns: Namespace, channel_id: bytes) -> bytes | None:
        return self._db.get(keys.channel_key(ns, channel_id))

    def iter_channels(self, ns: Namespace) -> Iterator[tuple[bytes, bytes]]:
        """(channel id, record) of every channel in `ns`, in channel-id order."""
        prefix = keys.table_prefix(Table.CHANNEL, ns)
        for key, value in self._db.iterator(prefix=prefix):
            yield key[len(prefix):], value

    def get_proof(self, ns: Namespace, channel_id: bytes, direction: Direction) -> bytes | None:
        return self._db.get(keys.proof_key(ns, channel_id, direction))

    def iter_locks(self, ns: Namespace, channel_id: bytes) -> Iterator[tuple[bytes, bytes]]:
        """(secrethash, record) of every pending lock of one channel."""
        prefix = keys.lock_prefix(ns, channel_id)
        for key, value in self._db.iterator(prefix=prefix):
            yield key[len(prefix):], value

    def get_payment(self, ns: Namespace, payment_id: bytes) -> bytes | None:
        return self._db.get(keys.payment_key(ns, payment_id))

    def iter_payments(self, ns: Namespace) -> Iterator[tuple[bytes, bytes]]:
        prefix = keys.table_prefix(Table.PAYMENT, ns)
        for key, value in self._db.iterator(prefix=prefix):
            yield key[len(prefix):], value

    def iter_ledger_rows(self) -> Iterator[tuple[bytes, bytes]]:
        prefix = keys.table_prefix(Table.RISK_LEDGER)
        for key, value in self._db.iterator(prefix=prefix):
            yield key[len(prefix):], value

    def get_peer(self, pubkey: bytes) -> bytes | None:
        return self._db.get(keys.peer_key(pubkey))

    def iter_peers(self) -> Iterator[tuple[bytes, bytes]]:
        for key, value in self._db.iterator(prefix=keys.table_prefix(Table.PEER)):
            yield key[1:], value

    def get_chain_cursor(self, ns: Namespace) -> ChainCursor | None:
        raw = self._db.get(keys.chain_cursor_key(ns))
        return None if raw is None else ChainCursor.decode(raw)

    def iter_outbox(self, ns: Namespace) -> Iterator[tuple[int, bytes]]:
        """(seq, record) of every queued transaction of `ns`, oldest first."""
        for key, value in self._db.iterator(prefix=keys.table_prefix(Table.OUTBOX, ns)):
            yield keys.decode_seq(key), value

    def namespaces(self) -> list[Namespace]:
        """Every namespace that has at least one channel."""
        found: list[Namespace] = []
        table = bytes([Table.CHANNEL])
        start = table
        while True:
            key = next(self._db.iterator(start=start, stop=bytes([Table.CHANNEL + 1]), include_value=False),
                       None)
            if key is None:
                return found
            ns_raw = key[1:1 + keys.NAMESPACE_LEN]
            found.append(Namespace.decode(ns_raw))
            start = table + ns_raw + b"\xff" * 32 + b"\x00"

    # Audit log --------------------------------------------------------------------------------

    def audit_head(self) -> ChainPoint:
        return stored_point(self._db, AUDIT_HEAD_KEY)

    def audit_checkpoint(self) -> ChainPoint:
        return self._log.checkpoint()

    def iter_audit(self) -> Iterator[AuditEntry]:
        """Every entry after the checkpoint, oldest first (read from the segment files)."""
        view = self._log.view()
        try:
            yield from entries(view)
        finally:
            view.close()

    def iter_audit_newest(self, before_seq: int | None = None) -> Iterator[AuditEntry]:
        """The entries after the checkpoint numbered below `before_seq` (every one, if None), newest
        first. Reads only the spans of the segments it yields from: the newest `n` entries cost about
        the same after a million entries as after a hundred. Runs in the calling thread (blocking file
        reads): call it off the trio loop."""
        view = self._log.view()
        try:
            yield from newest_first(view, self._segment_indexes, before_seq)
        finally:
            view.close()

    def verify_audit(self) -> AuditVerdict:
        """Check the whole chain, from the prune checkpoint to the head, across every segment."""
        return self._with_view(verify_view)

    def export_audit(self, out: BinaryIO) -> int:
        """Write the audit log as JSONL (header line, then entries); return entries."""

        def write(view: LogView) -> int:
            count = 0
            for line in export_lines(view.checkpoint, view.head, (e.to_json() for e in entries(view))):
                out.write(line)
                count += 1
            return count - 1

        return self._with_view(write)

    def _with_view(self, use: Callable[[LogView], _T]) -> _T:
        view = self._log.view()
        try:
            return use(view)
        finally:
            view.close()

    def prune_audit(self, older_than_ms: int) -> int:
        """Drop entries stamped before `older_than_ms`, keeping a checkpoint; return how many.

        Runs in the calling thread (call it through `trio.to_thread.run_sync` from trio). The new
        checkpoint is made durable in the store first, then whole segments are deleted and the one the
        cut falls in is rewritten, so the chain verifies at every step; appends are unaffected.
        """
        with self._prune_lock:
            before = self._log.checkpoint()
            cut = self._last_before(older_than_ms)
            if cut is None:
                return 0
            if cut.seq >= self._log.active_first():
                self._log.request_rotation()
                self.commit_sync(Batch())  # the writer rotates at the start of its next round
            batch = Batch()
            batch._ops.append((AUDIT_CHECKPOINT_KEY, encode_point(cut)))
            self.commit_sync(batch)
            self._log.drop_through(cut)
            return cut.seq - before.seq

    def _last_before(self, older_than_ms: int) -> ChainPoint | None:
        last = None
        for entry in self.iter_audit():
            if entry.timestamp_ms >= older_than_ms:
                break
            last = ChainPoint(entry.seq, entry.hash)
        return last

    # Backup -----------------------------------------------------------------------------------

    def backup(self, path: str | Path) -> int:
        """Write a consistent snapshot of the running store to `path`; return the record count.

        Runs in the calling thread; commits continue meanwhile and are not part of the snapshot.
        """
        with self._prune_lock:  # pruning would move the checkpoint past what the snapshot expects
            return write_backup(self._db, Path(path), lambda snap: backup_records(snap, self._log))
