"""The writer thread: group commit of durable batches, with a cheap hand-off from trio.

Committers put a batch and a waiter on a `SimpleQueue` (no thread-pool round trip). The writer
takes everything queued since its last fsync, merges it into one LevelDB WriteBatch written with
sync=True, then wakes the waiters: one `run_sync_soon` per trio run for the whole group, or a
`threading.Event` for callers outside trio. While one fsync runs, the next group accumulates, so
the number of fsyncs per second stays roughly constant while commits per fsync grow with load.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import outcome
import plyvel
import trio
from plyvel._plyvel import WriteBatch

from channeld.errors import LocalFault
from channeld.store import _keys as keys
from channeld.store._audit import ChainPoint, encode_point
from channeld.store._auditlog import AUDIT_HEAD_KEY, AuditLog, AuditRound
from channeld.store._batch import Batch, CommitReceipt
from channeld.store._errors import StoreClosed, StoreUnavailable, plyvel_message

OUTBOX_NEXT_KEY = keys.meta_key(b"outbox_next")
_STOP = None  # queued by close(): everything queued before it is still written


class _TrioWaiter:
    __slots__ = ("result", "task", "token")

    def __init__(self, token: trio.lowlevel.TrioToken, task: trio.lowlevel.Task) -> None:
        self.token = token
        self.task = task
        self.result: outcome.Outcome[CommitReceipt] | None = None


class _ThreadWaiter:
    __slots__ = ("event", "result")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.result: outcome.Outcome[CommitReceipt] | None = None


class PendingCommit:
    """A batch queued by `Store.submit`; `wait_durable` returns once it is fsynced.

    Lets one task queue state n + 1 while state n is still being written (batches become durable
    in submission order), and another task wait for each before sending what depends on it.
    """

    __slots__ = ("_event", "result", "token")

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self.token = token
        self._event = trio.Event()
        self.result: outcome.Outcome[CommitReceipt] | None = None

    def is_durable(self) -> bool:
        return isinstance(self.result, outcome.Value)

    async def wait_durable(self) -> CommitReceipt:
        """Wait for the outcome; cancelling the wait does not affect the write. Repeatable."""
        await self._event.wait()
        if isinstance(self.result, outcome.Value):
            receipt: CommitReceipt = self.result.value
            return receipt
        assert isinstance(self.result, outcome.Error)
        raise StoreUnavailable(str(self.result.error))


_Waiter = _TrioWaiter | _ThreadWaiter | PendingCommit


@dataclass(frozen=True, slots=True)
class WriterStatistics:
    """Counters since open: commits acknowledged, fsynced groups, the largest group, time in writes."""

    commits: int
    groups: int
    largest_group: int
    write_seconds: float


def _wake_trio(waiters: list[_TrioWaiter | PendingCommit]) -> None:
    for waiter in waiters:
        if isinstance(waiter, PendingCommit):
            waiter._event.set()
        else:
            assert waiter.result is not None
            trio.lowlevel.reschedule(waiter.task, waiter.result)


def _abort_refused(_: object) -> trio.lowlevel.Abort:
    # Once queued, a batch will be written; the caller must learn whether it is durable, so the
    # wait cannot be cancelled half-way. A pending cancel is delivered at the next checkpoint.
    return trio.lowlevel.Abort.FAILED


class GroupCommitWriter:
    """Owns every write to the database after open."""

    def __init__(self, db: plyvel.DB, audit_log: AuditLog, audit_head: ChainPoint, outbox_next: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._log = audit_log
        self._audit_head = audit_head
        self._outbox_next = outbox_next
        self._clock = clock
        self._last_ms = 0
        self._queue: queue.SimpleQueue[tuple[Batch, _Waiter] | None] = queue.SimpleQueue()
        self._submit_lock = threading.Lock()
        self._closed = False
        self._broken: str | None = None
        self._stats = WriterStatistics(0, 0, 0, 0.0)
        self._thread = threading.Thread(target=self._run, name="channeld-store-writer", daemon=True)
        self._thread.start()

    async def commit(self, batch: Batch) -> CommitReceipt:
        # A cancel that arrived before the batch is queued wins: nothing is written.
        await trio.lowlevel.checkpoint_if_cancelled()
        waiter = _TrioWaiter(trio.lowlevel.current_trio_token(), trio.lowlevel.current_task())
        self._submit(batch, waiter)
        result: CommitReceipt = await trio.lowlevel.wait_task_rescheduled(_abort_refused)
        return result

    def submit(self, batch: Batch) -> PendingCommit:
        pending = PendingCommit(trio.lowlevel.current_trio_token())
        self._submit(batch, pending)
        return pending

    def commit_sync(self, batch: Batch) -> CommitReceipt:
        if threading.current_thread() is self._thread:
            raise LocalFault("commit_sync called from the writer thread would deadlock")
        waiter = _ThreadWaiter()
        self._submit(batch, waiter)
        waiter.event.wait()
        assert waiter.result is not None
        return waiter.result.unwrap()

    def _submit(self, batch: Batch, waiter: _Waiter) -> None:
        with self._submit_lock:
            if self._closed:
                raise StoreClosed("the store is closed")
            self._queue.put((batch, waiter))

    def close(self) -> None:
        """Finish every queued commit, then stop the thread. Idempotent."""
        with self._submit_lock:
            if not self._closed:
                self._closed = True
                self._queue.put(_STOP)
        self._thread.join()

    def statistics(self) -> WriterStatistics:
        return self._stats

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            group = [first]
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                group.append(item)
            self._process(group)

    def _process(self, group: list[tuple[Batch, _Waiter]]) -> None:
        started = time.perf_counter()
        try:
            receipts = self._write_group([batch for batch, _ in group])
            results: list[outcome.Outcome[CommitReceipt]] = [outcome.Value(r) for r in receipts]
        except Exception as exc:
            # A thread that dies leaves its waiters hanging, so even a bug is reported to them; the
            # store then refuses further writes. Each waiter gets its own exception object.
            if not isinstance(exc, StoreUnavailable):
                self._broken = f"internal error in the writer: {exc!r}"
            results = [outcome.Error(StoreUnavailable(str(exc))) for _ in group]
        elapsed = time.perf_counter() - started
        stats = self._stats
        self._stats = WriterStatistics(stats.commits + len(group), stats.groups + 1,
                                       max(stats.largest_group, len(group)), stats.write_seconds + elapsed)
        self._wake([waiter for _, waiter in group], results)

    def _wake(self, waiters: list[_Waiter], results: list[outcome.Outcome[CommitReceipt]]) -> None:
        by_token: dict[trio.lowlevel.TrioToken, list[_TrioWaiter | PendingCommit]] = {}
        for waiter, result in zip(waiters, results, strict=True):
            waiter.result = result
            if isinstance(waiter, _ThreadWaiter):
                waiter.event.set()
            else:
                by_token.setdefault(waiter.token, []).append(waiter)
        for token, trio_waiters in by_token.items():
            # If the run that waited is gone, nobody is left to tell.
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(_wake_trio, trio_waiters)

    def _write_group(self, batches: list[Batch]) -> list[CommitReceipt]:
        if self._broken is not None:
            raise StoreUnavailable(f"store refuses writes after an earlier failure: {self._broken}")
        self._last_ms = max(self._last_ms, int(self._clock() * 1000))
        try:
            audit = self._log.begin_round(self._audit_head)
        except OSError as exc:
            raise StoreUnavailable(f"cannot start a new audit log segment: {exc}") from exc
        staging = _Staging(self._db.write_batch(sync=True), audit, self._outbox_next, self._last_ms)
        receipts = [staging.stage(batch) for batch in batches]
        write_batch = staging.write_batch
        if audit.head != self._audit_head:
            write_batch.put(AUDIT_HEAD_KEY, encode_point(audit.head))
        if staging.outbox_next != self._outbox_next:
            write_batch.put(OUTBOX_NEXT_KEY, staging.outbox_next.to_bytes(8, "big"))
        for key, value in self._log.round_writes(audit):
            if value is None:
                write_batch.delete(key)
            else:
                write_batch.put(key, value)
        try:
            write_batch.write()
        except plyvel.Error as exc:
            self._broken = plyvel_message(exc)
            raise StoreUnavailable(f"write failed and is not acknowledged (LevelDB applies a batch "
                                   f"wholly or not at all): {self._broken}") from exc
        # Only a durable group moves the chain head and the outbox counter.
        self._audit_head, self._outbox_next = audit.head, staging.outbox_next
        try:
            self._log.finish_round(audit)
        except OSError as exc:
            # The round is durable (its frames are in the store under a pending key, which the next
            # open writes into the log): acknowledge it, but take no more writes until then.
            self._broken = f"audit log append failed: {exc}"
        return receipts


@dataclass(slots=True)
class _Staging:
    """One group being merged into a single WriteBatch, with the sequence numbers it assigns."""

    write_batch: WriteBatch
    audit: AuditRound
    outbox_next: int
    now_ms: int

    def stage(self, batch: Batch) -> CommitReceipt:
        for key, value in batch._ops:
            if value is None:
                self.write_batch.delete(key)
            else:
                self.write_batch.put(key, value)
        outbox_seqs = []
        for ns, record in batch._outbox:
            self.write_batch.put(keys.outbox_key(ns, self.outbox_next), record)
            outbox_seqs.append(self.outbox_next)
            self.outbox_next += 1
        audit_seqs = []
        for audit_record in batch._audit:
            seq = self.audit.head.seq + 1
            self.audit.add(audit_record, seq, self.now_ms)
            audit_seqs.append(seq)
        return CommitReceipt(tuple(outbox_seqs), tuple(audit_seqs))
