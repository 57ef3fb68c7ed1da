"""The audit log's files: append-only segments beside the state store, reconciled with it on open.

History does not live in the state store (LevelDB): each writer round appends its audit frames to the
active segment (`<store>/audit/<first seq>.seg`) right after the round's LevelDB batch is durable. That
batch carries the same frames under a pending key (segment, offset), the new chain head and the log's
durable end (`audit_tail`), so the store is the truth: on open, every pending round is written again at
its offset (a write the page cache lost), and bytes past the durable end (a round whose batch never
landed) are cut off. The writer fdatasyncs the active segment every `SYNC_INTERVAL` (and on rotation and
close); a later round deletes the pending keys the sync covered, so the store holds only the last
fraction of a second of history. Segments rotate at `SEGMENT_BYTES` (and at an open past `REUSE_BYTES`);
pruning deletes whole segments and rewrites the one the cut falls in, after moving the checkpoint in the
store.
"""

from __future__ import annotations

import itertools
import os
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import plyvel
from plyvel._plyvel import Snapshot

from channeld.store import _keys as keys
from channeld.store._audit import (
    START,
    AuditEntry,
    AuditRecord,
    AuditVerdict,
    ChainPoint,
    decode_point,
    end_verdict,
)
from channeld.store._auditframe import (
    HEADER_SIZE,
    MAX_NAMESPACES,
    decode_payload,
    entry_hash,
    iter_frames,
    namespace_frame,
    read_header,
    seal_frame,
    segment_header,
)
from channeld.store._backup import fsync_dir
from channeld.store._errors import InvalidRecord, StoreUnavailable
from channeld.store._keys import Namespace, Table

LOG_DIR = "audit"
SEGMENT_BYTES = 64 << 20
SYNC_INTERVAL = 0.5  # seconds of history at most in the store's pending keys
REUSE_BYTES = 1 << 20  # at open, a tail segment smaller than this is appended to, not rotated away
AUDIT_HEAD_KEY = keys.meta_key(b"audit_head")
AUDIT_CHECKPOINT_KEY = keys.meta_key(b"audit_checkpoint")
AUDIT_TAIL_KEY = keys.meta_key(b"audit_tail")
PENDING_PREFIX = bytes([Table.AUDIT_PENDING])
_PAIR = struct.Struct(">QQ")

Write = tuple[bytes, bytes | None]


def pending_key(segment: int, offset: int) -> bytes:
    return PENDING_PREFIX + _PAIR.pack(segment, offset)


def stored_point(db: plyvel.DB, key: bytes) -> ChainPoint:
    raw = db.get(key)
    return START if raw is None else decode_point(raw)


def segment_path(directory: Path, first_seq: int) -> Path:
    return directory / f"{first_seq:020d}.seg"


def list_segments(directory: Path) -> list[int]:
    found = []
    for path in directory.glob("*.seg"):
        if path.stem.isdigit():
            found.append(int(path.stem))
    return sorted(found)


def _create_segment(directory: Path, first_seq: int) -> int:
    """A new, synced, empty segment; returns a write descriptor."""
    fd = os.open(segment_path(directory, first_seq), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.pwrite(fd, segment_header(first_seq), 0)
    os.fsync(fd)
    fsync_dir(directory)
    return fd


@dataclass(slots=True)
class AuditRound:
    """The frames one writer round appends, and the chain head after them."""

    head: ChainPoint
    known: dict[Namespace, int]
    frames: bytearray = field(default_factory=bytearray)
    declared: list[Namespace] = field(default_factory=list)

    def add(self, record: AuditRecord, seq: int, now_ms: int) -> None:
        index = self.known.get(record.namespace)
        if index is None:
            index = self._declare(record.namespace)
        digest, frame = seal_frame(record, seq, now_ms, self.head.hash, index)
        self.frames += frame
        self.head = ChainPoint(seq, digest)

    def _declare(self, ns: Namespace) -> int:
        if ns in self.declared:
            return len(self.known) + self.declared.index(ns)
        self.declared.append(ns)
        self.frames += namespace_frame(ns)
        return len(self.known) + len(self.declared) - 1


@dataclass(frozen=True, slots=True)
class LogView:
    """What readers see: open descriptors of every segment with the bytes valid in each, the checkpoint
    and the head those bytes end at. Descriptors stay readable if pruning unlinks the files."""

    segments: tuple[tuple[int, int, int], ...]  # (first seq, fd, end offset)
    checkpoint: ChainPoint
    head: ChainPoint

    def close(self) -> None:
        for _, fd, _ in self.segments:
            os.close(fd)


class AuditLog:
    """The segments of one store. Appends and rotation happen on the writer thread only."""

    def __init__(self, directory: Path, segments: list[int], head: ChainPoint, checkpoint: ChainPoint,
                 end: int = HEADER_SIZE, known: dict[Namespace, int] | None = None) -> None:
        self.directory = directory
        self._segments = segments
        self._fd = os.open(segment_path(directory, segments[-1]), os.O_RDWR)
        self._end = end
        self._known: dict[Namespace, int] = {} if known is None else known
        self._head = head
        self._checkpoint = checkpoint
        self._lock = threading.Lock()  # guards what readers see: segments, end, head, checkpoint
        self._unsynced: list[bytes] = []  # pending keys of rounds not yet fsynced in their segment
        self._synced: list[bytes] = []  # pending keys the next round deletes
        self._last_sync = time.monotonic()
        self._rotate_requested = False
        self._tail_moved = False

    # --- the writer thread ---------------------------------------------------------------------------

    def begin_round(self, head: ChainPoint) -> AuditRound:
        """Rotate when due; then a round that appends after `head` (the writer's durable head)."""
        if self._rotate_requested or self._end >= SEGMENT_BYTES or len(self._known) >= MAX_NAMESPACES - 8:
            self._rotate(head)
        return AuditRound(head, self._known)

    def round_writes(self, audit: AuditRound) -> list[Write]:
        """What the round's LevelDB batch carries for the log (pending frames, tail, spent pending keys)."""
        writes: list[Write] = [(key, None) for key in self._synced]
        if audit.frames:
            writes.append((pending_key(self._segments[-1], self._end), bytes(audit.frames)))
            self._tail_moved = True
        if self._tail_moved:
            writes.append((AUDIT_TAIL_KEY, _PAIR.pack(self._segments[-1], self._end + len(audit.frames))))
        return writes

    def finish_round(self, audit: AuditRound) -> None:
        """After the round's batch is durable: append its frames (a pending key covers them until synced)."""
        self._synced.clear()
        self._tail_moved = False
        if not audit.frames:
            return
        key = pending_key(self._segments[-1], self._end)
        os.pwrite(self._fd, audit.frames, self._end)
        for ns in audit.declared:
            self._known[ns] = len(self._known)
        with self._lock:
            self._end += len(audit.frames)
            self._head = audit.head
        self._unsynced.append(key)
        if time.monotonic() - self._last_sync >= SYNC_INTERVAL:
            self._sync()

    def request_rotation(self) -> None:
        self._rotate_requested = True

    def _sync(self) -> None:
        os.fdatasync(self._fd)
        self._last_sync = time.monotonic()
        self._synced += self._unsynced
        self._unsynced.clear()

    def _rotate(self, head: ChainPoint) -> None:
        self._rotate_requested = False
        if head.seq + 1 == self._segments[-1]:
            return  # the active segment is still empty
        self._sync()
        fd = _create_segment(self.directory, head.seq + 1)
        os.close(self._fd)
        self._fd = fd
        self._known = {}
        with self._lock:
            self._segments.append(head.seq + 1)
            self._end = HEADER_SIZE
        self._tail_moved = True

    def close(self, db: plyvel.DB) -> None:
        """Sync the active segment and drop every pending key (the writer has stopped)."""
        if self._fd < 0:
            return
        self._sync()
        os.close(self._fd)
        self._fd = -1
        if self._synced and not db.closed:
            with db.write_batch(sync=True) as batch:
                for key in self._synced:
                    batch.delete(key)
        self._synced.clear()

    # --- readers -------------------------------------------------------------------------------------

    def view(self) -> LogView:
        with self._lock:
            segments, end = list(self._segments), self._end
            opened = []
            try:
                for n, first in enumerate(segments):
                    fd = os.open(segment_path(self.directory, first), os.O_RDONLY)
                    opened.append((first, fd, end if n == len(segments) - 1 else os.fstat(fd).st_size))
            except OSError as exc:
                for _, fd, _ in opened:
                    os.close(fd)
                raise StoreUnavailable(f"cannot read the audit log: {exc}") from exc
            return LogView(tuple(opened), self._checkpoint, self._head)

    def checkpoint(self) -> ChainPoint:
        return self._checkpoint

    # --- pruning (a maintenance thread, under the store's prune lock) ---------------------------------

    def active_first(self) -> int:
        with self._lock:
            return self._segments[-1]

    def drop_through(self, cut: ChainPoint) -> None:
        """Delete what the new checkpoint `cut` (already durable in the store) makes history."""
        with self._lock:
            self._checkpoint = cut
            sealed = list(itertools.pairwise(self._segments))
        for first, next_first in sealed:
            if next_first <= cut.seq + 1:
                segment_path(self.directory, first).unlink(missing_ok=True)
                self._forget(first)
            elif first <= cut.seq:
                self._rewrite_from(first, cut.seq + 1)

    def _forget(self, first: int) -> None:
        with self._lock:
            self._segments.remove(first)

    def _rewrite_from(self, first: int, new_first: int) -> None:
        """Replace a sealed segment by one holding its entries from `new_first` on (same frames)."""
        raw = segment_path(self.directory, first).read_bytes()
        namespaces: list[Namespace] = []
        kept = bytearray()
        for frame in iter_frames(raw, read_header(raw), namespaces):
            if frame.seq >= new_first:
                kept += raw[frame.offset:]
                break
        body = b"".join(namespace_frame(ns) for ns in namespaces) + kept
        tmp = self.directory / f"{new_first:020d}.tmp"
        with open(tmp, "wb") as out:
            out.write(segment_header(new_first) + body)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, segment_path(self.directory, new_first))
        fsync_dir(self.directory)
        with self._lock:
            self._segments[self._segments.index(first)] = new_first
        segment_path(self.directory, first).unlink(missing_ok=True)
        fsync_dir(self.directory)


def walk(view: LogView) -> Iterator[tuple[int, AuditEntry | str]]:
    """(seq, entry) in chain order after the view's checkpoint, each entry's prev the hash stored before
    it; (seq, reason) where the files cannot say what comes next, and then nothing more."""
    expected = view.checkpoint
    for first, fd, end in view.segments:
        raw = os.pread(fd, end, 0)
        try:
            if read_header(raw) != first:
                raise InvalidRecord("segment header names another first entry than its file name")
        except InvalidRecord as exc:
            yield expected.seq + 1, f"unreadable segment {first}: {exc}"
            return
        if first > expected.seq + 1:
            yield expected.seq + 1, f"sequence gap: segment starts at {first}"
            return
        namespaces: list[Namespace] = []
        for frame in iter_frames(raw, first, namespaces):
            if frame.seq <= expected.seq:
                continue  # left over from pruning: history before the checkpoint
            try:
                entry = decode_payload(frame.payload, frame.seq, expected.hash, namespaces)
            except InvalidRecord as exc:
                yield frame.seq, f"unreadable entry: {exc}"
                return
            yield frame.seq, entry
            expected = ChainPoint(frame.seq, entry.hash)


def open_log(store_path: Path, db: plyvel.DB) -> AuditLog:
    """Reconcile the segments with the store (the truth), drop spent pending keys, and go on appending to a
    small tail segment (many restarts make no pile of tiny files) or start a fresh one."""
    directory = store_path / LOG_DIR
    directory.mkdir(exist_ok=True)
    head, checkpoint = stored_point(db, AUDIT_HEAD_KEY), stored_point(db, AUDIT_CHECKPOINT_KEY)
    raw_tail = db.get(AUDIT_TAIL_KEY)
    tail_segment, tail_end = (head.seq + 1, HEADER_SIZE) if raw_tail is None else _PAIR.unpack(raw_tail)
    pending = list(db.iterator(prefix=PENDING_PREFIX))
    try:
        _replay(directory, pending, tail_segment, tail_end)
        segments = _tidy(directory, tail_segment, tail_end, checkpoint)
        known = _reusable(directory, segments, tail_segment, tail_end, head)
        if known is None:
            os.close(_create_segment(directory, head.seq + 1))
            segments.append(head.seq + 1)
            tail_end, known = HEADER_SIZE, {}
    except OSError as exc:
        raise StoreUnavailable(f"cannot reconcile the audit log in {directory}: {exc}") from exc
    with db.write_batch(sync=True) as batch:
        for key, _ in pending:
            batch.delete(key)
        batch.put(AUDIT_TAIL_KEY, _PAIR.pack(segments[-1], tail_end))
    return AuditLog(directory, segments, head, checkpoint, tail_end, known)


def _reusable(directory: Path, segments: list[int], tail_segment: int, tail_end: int,
              head: ChainPoint) -> dict[Namespace, int] | None:
    """The namespace table of the tail segment if appending to it is right: small, whole, ending at the
    head; None to rotate instead."""
    path = segment_path(directory, tail_segment)
    if not segments or segments[-1] != tail_segment or tail_end > REUSE_BYTES:
        return None
    if path.stat().st_size != tail_end:
        return None
    namespaces: list[Namespace] = []
    frames = sum(1 for _ in iter_frames(path.read_bytes(), tail_segment, namespaces))
    if tail_segment + frames - 1 != head.seq:
        return None
    return {ns: index for index, ns in enumerate(namespaces)}


def _replay(directory: Path, pending: list[tuple[bytes, bytes]], tail_segment: int, tail_end: int) -> None:
    """Write every pending round again at its offset, then cut the tail segment at the durable end."""
    fds: dict[int, int] = {}
    try:
        for key, frames in pending:
            segment, offset = _PAIR.unpack(key[1:])
            if segment not in fds:
                fds[segment] = _open_for_repair(directory, segment)
            os.pwrite(fds[segment], frames, offset)
        if tail_segment not in fds:
            fds[tail_segment] = _open_for_repair(directory, tail_segment)
        if os.fstat(fds[tail_segment]).st_size > tail_end:
            os.ftruncate(fds[tail_segment], tail_end)  # a round whose batch never became durable
        for fd in fds.values():
            os.fsync(fd)
    finally:
        for fd in fds.values():
            os.close(fd)
    fsync_dir(directory)


def _open_for_repair(directory: Path, segment: int) -> int:
    path = segment_path(directory, segment)
    if path.exists():
        return os.open(path, os.O_RDWR)
    return _create_segment(directory, segment)


def _tidy(directory: Path, tail_segment: int, tail_end: int, checkpoint: ChainPoint) -> list[int]:
    """Remove segments past the durable tail, an empty tail, and segments wholly before the checkpoint."""
    segments = list_segments(directory)
    for first in segments:
        if first > tail_segment or (first == tail_segment and tail_end <= HEADER_SIZE):
            segment_path(directory, first).unlink()
    kept = [first for first in segments if first < tail_segment or (first == tail_segment
                                                                      and tail_end > HEADER_SIZE)]
    for first, next_first in itertools.pairwise(kept):
        if next_first <= checkpoint.seq + 1:
            segment_path(directory, first).unlink()
    for tmp in directory.glob("*.tmp"):
        tmp.unlink()
    return [first for n, first in enumerate(kept) if n == len(kept) - 1 or kept[n + 1] > checkpoint.seq + 1]


def verify_view(view: LogView) -> AuditVerdict:
    """Check the chain in `view` from its checkpoint to its head; the first bad entry and why."""
    expected, count = view.checkpoint, 0
    for seq, item in walk(view):
        if isinstance(item, str):
            return AuditVerdict(False, seq, item, count)
        if entry_hash(item) != item.hash:
            return AuditVerdict(False, seq, "entry hash does not match its content, place or predecessor",
                                count)
        expected = ChainPoint(seq, item.hash)
        count += 1
    return end_verdict(expected, view.head, count)


def entries(view: LogView) -> Iterator[AuditEntry]:
    """The entries of `view`, oldest first; `InvalidRecord` where the files stop making sense."""
    for seq, item in walk(view):
        if isinstance(item, str):
            raise InvalidRecord(f"audit log entry {seq}: {item}")
        yield item


BACKUP_CHUNK = 512 << 10


def backup_records(snap: Snapshot, log: AuditLog) -> Iterator[tuple[bytes, bytes]]:
    """The snapshot's records, then the log's bytes up to the snapshot's tail as pending rounds.

    The view is taken after the snapshot, so it holds every round the snapshot has (a round reaches
    the files only after its batch); a pending key the emitted bytes already cover is left out.
    """
    raw_tail = snap.get(AUDIT_TAIL_KEY)
    tail_segment, tail_end = _PAIR.unpack(raw_tail) if raw_tail is not None else (0, HEADER_SIZE)
    view = log.view()
    try:
        covered = _covered(view, tail_segment, tail_end)
        for key, value in snap.iterator():
            if not key.startswith(PENDING_PREFIX) or _PAIR.unpack(key[1:]) >= covered:
                yield key, value
        for first, fd, end in view.segments:
            stop = min(end, covered[1]) if first == covered[0] else end
            if first > covered[0]:
                break
            for offset in range(HEADER_SIZE, stop, BACKUP_CHUNK):
                yield pending_key(first, offset), os.pread(fd, min(BACKUP_CHUNK, stop - offset), offset)
    finally:
        view.close()


def _covered(view: LogView, tail_segment: int, tail_end: int) -> tuple[int, int]:
    """(segment, offset) up to which the view holds the snapshot's log bytes."""
    for first, _, end in view.segments:
        if first == tail_segment:
            return first, min(end, tail_end)
    return tail_segment, HEADER_SIZE
