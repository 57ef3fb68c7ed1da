"""The event follower: every log of one contract, applied exactly once, in order, reorgs included.

How it never misses or double-applies a log:
- It scans forward from a cursor (the last block whose logs were handed out) in bounded ranges, never
  below the contract's deploy block, and only up to `head - confirmations`.
- The cursor remembers the hash of each block it stands on and of every block that held a log, plus
  those logs, for `reorg_window` blocks. If the block under the cursor changed hash, the chain
  reorganised: the follower walks back to the newest remembered block still canonical, retracts the
  logs above it and scans again from there.
- A range is accepted only if the hash of its last block is the same before and after its logs were read.
The consumer applies an update and then the cursor is saved (`CursorStore.save`); a store that commits
both in one write makes that exactly-once across crashes too (`FollowerUpdate.cursor` is what to save).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from channeld.chain.errors import ReorgTooDeep
from channeld.chain.records import BlockMark, RawLog
from channeld.errors import ConfigError


class LogSource(Protocol):
    """What the follower reads from the chain (a `ChainBackend` is one)."""

    def head(self) -> int: ...
    def block_at(self, number: int) -> BlockMark | None: ...
    def get_logs(self, address: str, from_block: int, to_block: int) -> list[RawLog]: ...


@dataclass(frozen=True, slots=True)
class FollowerCursor:
    """Where the follower stands, and the recent history it needs to undo a reorg."""

    position: BlockMark
    marks: tuple[BlockMark, ...]  # ascending; includes `position` and every block that held a log
    recent_logs: tuple[RawLog, ...]  # logs handed out within the reorg window, ascending

    def to_json(self) -> str:
        return json.dumps({
            "position": _mark_json(self.position),
            "marks": [_mark_json(mark) for mark in self.marks],
            "logs": [_log_json(log) for log in self.recent_logs],
        })

    @classmethod
    def from_json(cls, text: str) -> FollowerCursor:
        try:
            document = json.loads(text)
            return cls(
                position=_mark_from(document["position"]),
                marks=tuple(_mark_from(mark) for mark in document["marks"]),
                recent_logs=tuple(_log_from(log) for log in document["logs"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ConfigError(f"stored follower cursor is malformed: {error!r}") from error


class CursorStore(Protocol):
    def load(self) -> FollowerCursor | None: ...
    def save(self, cursor: FollowerCursor) -> None: ...


class MemoryCursorStore:
    """A cursor kept in memory (tests; a process that does not need to resume)."""

    def __init__(self, cursor: FollowerCursor | None = None) -> None:
        self.cursor = cursor
        self.saves = 0

    def load(self) -> FollowerCursor | None:
        return self.cursor

    def save(self, cursor: FollowerCursor) -> None:
        self.cursor = cursor
        self.saves += 1


@dataclass(frozen=True, slots=True)
class FollowerUpdate:
    applied: tuple[RawLog, ...]
    retracted: tuple[RawLog, ...]  # newest first: undo in this order
    cursor: FollowerCursor
    caught_up: bool  # nothing more to read until new blocks arrive

    @property
    def is_empty(self) -> bool:
        return not self.applied and not self.retracted


class EventFollower:
    """Blocking core; `channeld.chain.aio.follow` runs it from trio."""

    def __init__(
        self,
        source: LogSource,
        address: str,
        store: CursorStore,
        deploy_block: int,
        confirmations: int = 0,
        max_range: int = 1000,
        reorg_window: int = 256,
    ) -> None:
        if confirmations < 0 or max_range < 1 or reorg_window < 1 or deploy_block < 0:
            raise ConfigError("confirmations, deploy block >= 0 and max range, reorg window >= 1")
        self.source = source
        self.address = address
        self.store = store
        self.deploy_block = deploy_block
        self.confirmations = confirmations
        self.max_range = max_range
        self.reorg_window = reorg_window
        self.cursor = store.load() or self._initial_cursor()

    def _initial_cursor(self) -> FollowerCursor:
        below = self.deploy_block - 1
        mark = self.source.block_at(below) if below >= 0 else None
        position = mark or BlockMark(below, b"")
        return FollowerCursor(position, (position,), ())

    def poll_once(self, handler: Callable[[FollowerUpdate], None]) -> FollowerUpdate:
        """Read one step, hand it to `handler`, then save the cursor."""
        update = self.next_update()
        handler(update)
        self.commit(update)
        return update

    def catch_up(self, handler: Callable[[FollowerUpdate], None]) -> None:
        while not self.poll_once(handler).caught_up:
            pass

    def commit(self, update: FollowerUpdate) -> None:
        self.store.save(update.cursor)
        self.cursor = update.cursor

    def next_update(self) -> FollowerUpdate:
        """One step: a reorg retraction, one bounded range of logs, or nothing new. Changes nothing."""
        if not self._position_is_canonical():
            return self._retract_to_ancestor()
        target = self.source.head() - self.confirmations
        start = self.cursor.position.number + 1
        if start > target:
            return FollowerUpdate((), (), self.cursor, caught_up=True)
        end = min(start + self.max_range - 1, target)
        end_mark = self.source.block_at(end)
        logs = self.source.get_logs(self.address, start, end)
        if end_mark is None or self.source.block_at(end) != end_mark:
            return FollowerUpdate((), (), self.cursor, caught_up=False)  # reorg mid-read: retry
        logs.sort(key=lambda log: (log.block_number, log.log_index))
        return FollowerUpdate(tuple(logs), (), self._advanced(end_mark, logs), caught_up=end == target)

    def _position_is_canonical(self) -> bool:
        position = self.cursor.position
        if position.number < 0 or not position.hash:
            return True
        return self.source.block_at(position.number) == position

    def _retract_to_ancestor(self) -> FollowerUpdate:
        for mark in reversed(self.cursor.marks):
            if mark.number < 0 or self.source.block_at(mark.number) == mark:
                return self._rolled_back_to(mark)
        raise ReorgTooDeep(
            f"the chain reorganised below block {self.cursor.marks[0].number}, "
            f"deeper than the follower's window of {self.reorg_window} blocks"
        )

    def _rolled_back_to(self, ancestor: BlockMark) -> FollowerUpdate:
        logs = self.cursor.recent_logs
        kept = tuple(log for log in logs if log.block_number <= ancestor.number)
        gone = tuple(log for log in reversed(logs) if log.block_number > ancestor.number)
        marks = tuple(mark for mark in self.cursor.marks if mark.number <= ancestor.number)
        return FollowerUpdate((), gone, FollowerCursor(ancestor, marks, kept), caught_up=False)

    def _advanced(self, end_mark: BlockMark, logs: list[RawLog]) -> FollowerCursor:
        floor = end_mark.number - self.reorg_window
        log_marks = {BlockMark(log.block_number, log.block_hash) for log in logs}
        marks = sorted({*self.cursor.marks, *log_marks, end_mark}, key=lambda mark: mark.number)
        recent = (*self.cursor.recent_logs, *logs)
        return FollowerCursor(
            position=end_mark,
            marks=tuple(mark for mark in marks if mark.number >= floor or mark == marks[-1]),
            recent_logs=tuple(log for log in recent if log.block_number >= floor),
        )


def _mark_json(mark: BlockMark) -> list[object]:
    return [mark.number, mark.hash.hex()]


def _mark_from(item: list[object]) -> BlockMark:
    number, hex_hash = item
    return BlockMark(int(str(number)), bytes.fromhex(str(hex_hash)))


def _log_json(log: RawLog) -> dict[str, object]:
    return {
        "address": log.address, "topics": [topic.hex() for topic in log.topics], "data": log.data.hex(),
        "block": log.block_number, "block_hash": log.block_hash.hex(), "tx": log.tx_hash.hex(),
        "index": log.log_index,
    }


def _log_from(item: dict[str, object]) -> RawLog:
    topics = item["topics"]
    if not isinstance(topics, list):
        raise TypeError("topics must be a list")
    return RawLog(
        address=str(item["address"]), topics=tuple(bytes.fromhex(str(t)) for t in topics),
        data=bytes.fromhex(str(item["data"])), block_number=int(str(item["block"])),
        block_hash=bytes.fromhex(str(item["block_hash"])), tx_hash=bytes.fromhex(str(item["tx"])),
        log_index=int(str(item["index"])),
    )
