"""The journal: a second LevelDB (`<datadir>/journal`) for what the API and wallets need to remember.

It holds every bus event by sequence number (so a stream client or a webhook that reconnects with the
last number it saw gets everything after it, across node restarts) and small JSON records in named
tables: payment requests we issued or paid, idempotency keys, webhooks, watchtowers.

Channel state never lives here: it stays in the store, whose durability rules it follows. Events and
`put(..., sync=False)` go to LevelDB's log without an fsync each; `sync()` forces them to disk, and
closing does. Durable table writes (`put_durable`, `put_soon`, `delete_durable`, and the blocking
`put(..., sync=True)` / `delete` kept for callers outside the payment path) go through one writer thread
(`_journal_writer`) that groups everything handed over during an fsync into the next synced batch; until a
write has landed, reads (`get`, `items`) see it from an overlay, so the loop never waits to read its own
writes. Events are
written in groups: those published in one step of the trio loop (a store round carries out all its
payments' events in one step) are encoded and written as one LevelDB batch when that step ends, which
costs a fifth of a write per event; reads (`events_after`, `last_seq`) write what is pending first.
Events older than `journal.retention` are pruned hourly (`run_pruning`), so the journal stays bounded.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import plyvel
import trio

from channeld.errors import LocalFault
from channeld.node._events import EventBus, NodeEvent
from channeld.node._journal_writer import JournalWriter, Write

JOURNAL_DIR = "journal"
PRUNE_INTERVAL = 3600.0  # seconds between two prunings (and the first runs at start)
PRUNE_BATCH = 10_000  # deletions per LevelDB batch
log = logging.getLogger("channeld.node")
_EVENT = b"e"
_EVENT_END = b"f"  # just past every event key
_TABLE = b"t"
_SEP = b"\x00"


class JournalError(LocalFault):
    """The journal cannot be opened or holds a record that does not decode."""


def _event_key(seq: int) -> bytes:
    return _EVENT + seq.to_bytes(8, "big")


def _published_at(raw: bytes) -> float:
    """The publication time of a journaled event (0: unreadable, so pruned as old)."""
    try:
        at = json.loads(raw).get("at", 0.0)
    except (ValueError, AttributeError):
        return 0.0
    return float(at) if isinstance(at, int | float) else 0.0


def _table_key(table: str, key: str) -> bytes:
    return _TABLE + table.encode() + _SEP + key.encode()


def _trio_token() -> trio.lowlevel.TrioToken | None:
    try:
        return trio.lowlevel.current_trio_token()
    except RuntimeError:
        return None


class Journal:
    def __init__(self, db: plyvel.DB) -> None:
        self._db = db
        self._pending: list[NodeEvent] = []
        self._writer = JournalWriter(db)
        # key -> (hand-off number, value or None for a deletion): table writes not yet landed
        self._unsynced: dict[bytes, tuple[int, bytes | None]] = {}
        self._handoffs = itertools.count()

    @classmethod
    def open(cls, datadir: Path) -> Journal:
        try:
            return cls(plyvel.DB(str(Path(datadir) / JOURNAL_DIR), create_if_missing=True))
        except plyvel.Error as exc:
            raise JournalError(f"cannot open the journal in {datadir}: {exc}") from None

    def close(self) -> None:
        if not self._db.closed:
            self.write_pending()
            self._writer.close()
            self.sync()
            self._db.close()

    def sync(self) -> None:
        self._db.put(b"s", b"", sync=True)  # a synced write flushes every write before it

    # --- events --------------------------------------------------------------------------------------

    def attach(self, bus: EventBus) -> None:
        """Number the bus's events after the last journaled one, and journal every event it publishes."""
        bus.resume_after(self.last_seq())
        bus.sinks.insert(0, self.append)

    def append(self, event: NodeEvent) -> None:
        """Journal `event` when the current step of the trio loop ends (at once outside trio)."""
        self._pending.append(event)
        if len(self._pending) > 1:
            return  # the write is already scheduled
        try:
            token = trio.lowlevel.current_trio_token()
        except RuntimeError:
            self.write_pending()
            return
        token.run_sync_soon(self.write_pending)

    def write_pending(self) -> None:
        """Write the events appended so far, in one batch."""
        pending, self._pending = self._pending, []
        if not pending or self._db.closed:
            return
        with self._db.write_batch() as batch:
            for event in pending:
                batch.put(_event_key(event.seq), json.dumps(event.as_json()).encode())

    def last_seq(self) -> int:
        pending = self._pending  # read, not written: the pruning thread asks too
        if pending:
            return pending[-1].seq
        with self._db.iterator(prefix=_EVENT, reverse=True, include_value=False) as keys:
            for key in keys:
                return int.from_bytes(key[1:], "big")
        return 0

    def events_after(self, seq: int, limit: int = 1000) -> list[dict[str, Any]]:
        """Up to `limit` journaled events with a sequence number above `seq`, oldest first."""
        self.write_pending()
        found: list[dict[str, Any]] = []
        start = _event_key(max(seq, 0) + 1)
        with self._db.iterator(start=start, stop=_EVENT_END) as items:  # plyvel refuses start with prefix
            for _, raw in items:
                found.append(json.loads(raw))
                if len(found) >= limit:
                    break
        return found

    # --- pruning by age ------------------------------------------------------------------------------

    def prune_events(self, before: float) -> int:
        """Delete journaled events published before `before` (unix seconds); return how many.

        Events are in publication order, so deletion stops at the first newer one. The newest event is
        always kept: its number is where the bus resumes numbering after a restart.
        """
        last = self.last_seq()
        doomed: list[bytes] = []
        with self._db.iterator(prefix=_EVENT) as items:
            for key, raw in items:
                if int.from_bytes(key[1:], "big") >= last or _published_at(raw) >= before:
                    break
                doomed.append(key)
        for start in range(0, len(doomed), PRUNE_BATCH):
            with self._db.write_batch() as batch:
                for key in doomed[start:start + PRUNE_BATCH]:
                    batch.delete(key)
        return len(doomed)

    async def run_pruning(self, retention: float, interval: float = PRUNE_INTERVAL) -> None:
        """Forever: prune events older than `retention` seconds (off the trio thread), then wait."""
        while True:
            pruned = await trio.to_thread.run_sync(self.prune_events, time.time() - retention)
            if pruned:
                log.info("pruned %d journal events older than %ss", pruned, retention)
            await trio.sleep(interval)

    # --- tables --------------------------------------------------------------------------------------

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        raw_key = _table_key(table, key)
        pending = self._unsynced.get(raw_key)
        raw = self._db.get(raw_key) if pending is None else pending[1]
        return None if raw is None else self._decode(raw)

    def put(self, table: str, key: str, record: dict[str, Any], *, sync: bool = False) -> None:
        """Write `record`; with `sync`, block until it is on disk (off the payment path only: this stalls
        the trio loop for an fsync; `put_durable` does not)."""
        raw_key, value = _table_key(table, key), json.dumps(record).encode()
        if sync:
            self._write_blocking(((raw_key, value),))
        elif raw_key in self._unsynced:
            self._hand_off(((raw_key, value),), None)  # behind the queued write of this key, not before it
        else:
            self._db.put(raw_key, value)

    def delete(self, table: str, key: str) -> None:
        """Delete durably, blocking like `put(..., sync=True)`."""
        self._write_blocking(((_table_key(table, key), None),))

    def put_soon(self, table: str, key: str, record: dict[str, Any],
                 on_durable: Callable[[], object] | None = None) -> None:
        """Hand `record` to the writer thread; `on_durable` runs on this trio loop once it is on disk (never,
        if the write fails: what depends on it must not happen). Reads see the record at once."""
        self._hand_off(((_table_key(table, key), json.dumps(record).encode()),), on_durable)

    async def put_durable(self, table: str, key: str, record: dict[str, Any]) -> None:
        """Write `record` and wait until it is on disk, without stalling the trio loop."""
        await self._wait_durable(((_table_key(table, key), json.dumps(record).encode()),))

    async def delete_durable(self, table: str, key: str) -> None:
        await self._wait_durable(((_table_key(table, key), None),))

    def delete_soon(self, table: str, key: str) -> None:
        """Hand a deletion to the writer thread (reads miss the record at once)."""
        self._hand_off(((_table_key(table, key), None),), None)

    def items(self, table: str) -> Iterator[tuple[str, dict[str, Any]]]:
        prefix = _TABLE + table.encode() + _SEP
        pending = {k: v for k, (_, v) in list(self._unsynced.items()) if k.startswith(prefix)}
        with self._db.iterator(prefix=prefix) as items:
            for key, raw in items:
                if key not in pending:
                    yield key[len(prefix):].decode(), self._decode(raw)
        for key, value in sorted(pending.items()):
            if value is not None:
                yield key[len(prefix):].decode(), self._decode(value)

    # --- hand-offs to the writer thread ---------------------------------------------------------------

    def _hand_off(self, writes: tuple[Write, ...], on_durable: Callable[[], object] | None,
                  on_error: Callable[[BaseException], None] | None = None) -> None:
        number = next(self._handoffs)
        for key, value in writes:
            self._unsynced[key] = (number, value)

        def landed(error: BaseException | None) -> None:
            for key, _ in writes:
                if self._unsynced.get(key, (None,))[0] == number:
                    del self._unsynced[key]  # a later write of the key stays in the overlay until it lands
            if error is not None:
                if on_error is not None:
                    on_error(error)
            elif on_durable is not None:
                on_durable()

        self._writer.submit(writes, landed, _trio_token())

    async def _wait_durable(self, writes: tuple[Write, ...]) -> None:
        done = trio.Event()
        failures: list[BaseException] = []

        def failed(error: BaseException) -> None:
            failures.append(error)
            done.set()

        self._hand_off(writes, done.set, failed)
        await done.wait()
        if failures:
            raise JournalError(f"journal write failed: {failures[0]}")

    def _write_blocking(self, writes: tuple[Write, ...]) -> None:
        landed = threading.Event()
        failures: list[BaseException] = []

        def done(error: BaseException | None) -> None:
            if error is not None:
                failures.append(error)
            landed.set()

        for key, value in writes:
            self._unsynced[key] = (next(self._handoffs), value)
        self._writer.submit(writes, done, None)
        landed.wait()
        for key, _ in writes:
            self._unsynced.pop(key, None)  # this thread waited, so nothing queued later is pending
        if failures:
            raise JournalError(f"journal write failed: {failures[0]}")

    @staticmethod
    def _decode(raw: bytes) -> dict[str, Any]:
        try:
            record = json.loads(raw)
        except ValueError as exc:
            raise JournalError(f"journal record does not decode: {exc}") from None
        if not isinstance(record, dict):
            raise JournalError("journal record is not an object")
        return record
