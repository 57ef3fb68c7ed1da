"""The journal's writer thread: durable table writes off the trio loop, grouped into one fsync.

An fsync on the trio loop stalls every payment and every peer of the node for the disk's latency (a
millisecond on a quiet disk, far more on a busy one), and a routed payment needs several durable journal
records. Callers hand their writes to this thread through a `SimpleQueue` (no thread-pool round trip);
the thread takes everything queued while the previous fsync ran and writes it as one synced LevelDB
batch, so a burst of payments costs one fsync, not one each. Completions go back to each trio run with
one `run_sync_soon` per group; callers outside trio are called on the writer thread.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

import plyvel
import trio

log = logging.getLogger("channeld.node")

# what a completion receives: None once the writes are durable, else the error that stopped them
Completion = Callable[[BaseException | None], None]
Write = tuple[bytes, bytes | None]  # (key, value); a None value deletes the key


@dataclass(frozen=True, slots=True)
class _Job:
    writes: tuple[Write, ...]
    token: trio.lowlevel.TrioToken | None
    done: Completion


@dataclass(frozen=True, slots=True)
class JournalWriterStatistics:
    groups: int  # synced batches written
    jobs: int  # hand-offs they carried


def _finish(jobs: list[_Job], error: BaseException | None) -> None:
    for job in jobs:
        job.done(error)


class JournalWriter:
    def __init__(self, db: plyvel.DB) -> None:
        self._db = db
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._groups = 0
        self._jobs = 0
        self._thread = threading.Thread(target=self._run, name="channeld-journal-writer", daemon=True)
        self._thread.start()

    def submit(self, writes: tuple[Write, ...], done: Completion,
               token: trio.lowlevel.TrioToken | None) -> None:
        """Queue `writes` (in order after everything queued before); `done` runs once they are durable: on
        `token`'s trio loop, or on the writer thread when `token` is None."""
        self._queue.put(_Job(writes, token, done))

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def statistics(self) -> JournalWriterStatistics:
        return JournalWriterStatistics(self._groups, self._jobs)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            group: list[_Job] = []
            item = self._queue.get()
            while True:
                if item is None:
                    stopping = True
                else:
                    group.append(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if group:
                self._write(group)

    def _write(self, group: list[_Job]) -> None:
        error: BaseException | None = None
        try:
            with self._db.write_batch(sync=True) as batch:
                for job in group:
                    for key, value in job.writes:
                        if value is None:
                            batch.delete(key)
                        else:
                            batch.put(key, value)
        except (plyvel.Error, RuntimeError) as exc:  # RuntimeError: the database was closed under us
            log.error("journal write of %d records failed: %s", len(group), exc)
            error = exc
        self._groups += 1
        self._jobs += len(group)
        self._wake(group, error)

    @staticmethod
    def _wake(group: list[_Job], error: BaseException | None) -> None:
        by_token: dict[trio.lowlevel.TrioToken, list[_Job]] = {}
        for job in group:
            if job.token is None:
                job.done(error)
            else:
                by_token.setdefault(job.token, []).append(job)
        for token, jobs in by_token.items():
            # a loop that ended has nobody waiting for these any more (the writes themselves landed)
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(_finish, jobs, error)
