"""The journal: a second LevelDB (`<datadir>/journal`) for what the API and wallets need to remember.

It holds every bus event by sequence number (so a stream client or a webhook that reconnects with the
last number it saw gets everything after it, across node restarts) and small JSON records in named
tables: payment requests we issued or paid, idempotency keys, webhooks, watchtowers.

Channel state never lives here: it stays in the store, whose durability rules it follows. Journal writes
go to LevelDB's log at once (they survive a killed process) without an fsync each, so journaling an
event costs microseconds on the payment path; `sync()` forces them to disk, and closing does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import plyvel

from channeld.errors import LocalFault
from channeld.node._events import EventBus, NodeEvent

JOURNAL_DIR = "journal"
_EVENT = b"e"
_EVENT_END = b"f"  # just past every event key
_TABLE = b"t"
_SEP = b"\x00"


class JournalError(LocalFault):
    """The journal cannot be opened or holds a record that does not decode."""


def _event_key(seq: int) -> bytes:
    return _EVENT + seq.to_bytes(8, "big")


def _table_key(table: str, key: str) -> bytes:
    return _TABLE + table.encode() + _SEP + key.encode()


class Journal:
    def __init__(self, db: plyvel.DB) -> None:
        self._db = db

    @classmethod
    def open(cls, datadir: Path) -> Journal:
        try:
            return cls(plyvel.DB(str(Path(datadir) / JOURNAL_DIR), create_if_missing=True))
        except plyvel.Error as exc:
            raise JournalError(f"cannot open the journal in {datadir}: {exc}") from None

    def close(self) -> None:
        if not self._db.closed:
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
        self._db.put(_event_key(event.seq), json.dumps(event.as_json()).encode())

    def last_seq(self) -> int:
        with self._db.iterator(prefix=_EVENT, reverse=True, include_value=False) as keys:
            for key in keys:
                return int.from_bytes(key[1:], "big")
        return 0

    def events_after(self, seq: int, limit: int = 1000) -> list[dict[str, Any]]:
        """Up to `limit` journaled events with a sequence number above `seq`, oldest first."""
        found: list[dict[str, Any]] = []
        start = _event_key(max(seq, 0) + 1)
        with self._db.iterator(start=start, stop=_EVENT_END) as items:  # plyvel refuses start with prefix
            for _, raw in items:
                found.append(json.loads(raw))
                if len(found) >= limit:
                    break
        return found

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
