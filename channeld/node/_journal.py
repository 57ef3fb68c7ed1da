"""The journal: a second LevelDB (`<datadir>/journal`) for what the API and wallets need to remember.

It holds every bus event by sequence number (so a stream client or a webhook that reconnects with the
last number it saw gets everything after it, across node restarts) and small JSON records in named
tables: payment requests we issued or paid, idempotency keys, webhooks, watchtowers.

Channel state never lives here: it stays in the store, whose durability rules it follows. Journal writes
go to LevelDB's log without an fsync each; `sync()` forces them to disk, and closing does. Events are
written in groups: those published in one step of the trio loop (a store round carries out all its
payments' events in one step) are encoded and written as one LevelDB batch when that step ends, which
costs a fifth of a write per event; reads (`events_after`, `last_seq`) write what is pending first.
Events older than `journal.retention` are pruned hourly (`run_pruning`), so the journal stays bounded.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import plyvel
import trio

from channeld.errors import LocalFault
from channeld.node._events import EventBus, NodeEvent

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


class Journal:
    def __init__(self, db: plyvel.DB) -> None:
        self._db = db
        self._pending: list[NodeEvent] = []

    @classmethod
    def open(cls, datadir: Path) -> Journal:
        try:
            return cls(plyvel.DB(str(Path(datadir) / JOURNAL_DIR), create_if_missing=True))
        except plyvel.Error as exc:
            raise JournalError(f"cannot open the journal in {datadir}: {exc}") from None

    def close(self) -> None:
        if not self._db.closed:
            self.write_pending()
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
        raw = self._db.get(_table_key(table, key))
        return None if raw is None else self._decode(raw)

    def put(self, table: str, key: str, record: dict[str, Any], *, sync: bool = False) -> None:
        self._db.put(_table_key(table, key), json.dumps(record).encode(), sync=sync)

    def delete(self, table: str, key: str) -> None:
        self._db.delete(_table_key(table, key), sync=True)

    def items(self, table: str) -> Iterator[tuple[str, dict[str, Any]]]:
        prefix = _TABLE + table.encode() + _SEP
        with self._db.iterator(prefix=prefix) as items:
            for key, raw in items:
                yield key[len(prefix):].decode(), self._decode(raw)

    @staticmethod
    def _decode(raw: bytes) -> dict[str, Any]:
        try:
            record = json.loads(raw)
        except ValueError as exc:
            raise JournalError(f"journal record does not decode: {exc}") from None
        if not isinstance(record, dict):
            raise JournalError("journal record is not an object")
        return record
