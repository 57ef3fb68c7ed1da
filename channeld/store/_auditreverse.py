"""Reading the audit log newest first, without walking it from the oldest entry.

A frame carries its length in front, so a segment parses only forwards. Each segment therefore gets a
sparse index: a mark (seq, offset) every `MARK_EVERY` entry frames and the segment's namespace table,
built once by hopping over length bytes (a sealed segment never changes; the active one is extended by
what was appended since the last read). Reading backwards parses one span between two marks (about 80 KB)
at a time and yields its entries in reverse, so the newest `n` entries cost one span or a few, whatever
the log's length. An entry's previous hash is the stored hash of the entry before it, which is the next
frame read; so each entry is yielded once its predecessor's frame is in hand (the oldest entry after the
checkpoint takes the checkpoint's hash, as in the oldest-first walk).
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field

from channeld.store._audit import AuditEntry
from channeld.store._auditframe import (
    _HASH_LEN,
    HEADER_SIZE,
    NAMESPACE_DECLARATION,
    _declared,
    decode_payload,
    read_header,
)
from channeld.store._auditlog import LogView
from channeld.store._errors import InvalidRecord
from channeld.store._keys import Namespace

MARK_EVERY = 512
SCAN_BLOCK = 1 << 20  # bytes read at a time while indexing; a frame is at most 256
_DECLARATION_SIZE = 29


@dataclass(slots=True)
class SegmentIndex:
    """Where every `MARK_EVERY`-th entry frame of one segment starts, and how far it has been scanned."""

    first: int
    mark_seqs: list[int] = field(default_factory=list)
    mark_offsets: list[int] = field(default_factory=list)
    namespaces: list[Namespace] = field(default_factory=list)
    next_seq: int = 0
    scanned_to: int = HEADER_SIZE

    def extend(self, fd: int, end: int) -> None:
        """Index the frames from where the last scan stopped up to `end` (a frame boundary)."""
        pos, seq = self.scanned_to, self.next_seq
        while pos < end:
            block = os.pread(fd, min(SCAN_BLOCK, end - pos), pos)
            used, seq = self._scan_block(block, pos, seq)
            if used == 0:
                raise InvalidRecord(f"audit segment {self.first}: a frame runs past the log's end at {pos}")
            pos += used
        self.scanned_to, self.next_seq = pos, seq

    def _scan_block(self, block: bytes, base: int, seq: int) -> tuple[int, int]:
        """Bytes of whole frames in `block` (indexed) and the seq after them."""
        n = 0
        while n < len(block):
            length = block[n]
            size = _DECLARATION_SIZE if length == NAMESPACE_DECLARATION else 1 + length
            if n + size > len(block):
                break
            if length == NAMESPACE_DECLARATION:
                self.namespaces.append(_declared(block[n + 1:n + size], len(self.namespaces)))
            else:
                if (seq - self.first) % MARK_EVERY == 0:
                    self.mark_seqs.append(seq)
                    self.mark_offsets.append(base + n)
                seq += 1
            n += size
        return n, seq


@dataclass(frozen=True, slots=True)
class Marks:
    """A reader's snapshot of one segment's index (the index itself may grow meanwhile)."""

    seqs: tuple[int, ...]
    offsets: tuple[int, ...]
    namespaces: tuple[Namespace, ...]


class SegmentIndexes:
    """The indexes of one store's segments, shared by its readers (each on its own thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._indexes: dict[int, SegmentIndex] = {}

    def marks(self, first: int, fd: int, end: int) -> Marks:
        with self._lock:
            index = self._indexes.get(first)
            if index is None:
                if read_header(os.pread(fd, HEADER_SIZE, 0)) != first:
                    raise InvalidRecord(f"audit segment {first}: its header names another first entry")
                index = self._indexes[first] = SegmentIndex(first, next_seq=first)
            if index.scanned_to < end:
                index.extend(fd, end)
            return Marks(tuple(index.mark_seqs), tuple(index.mark_offsets), tuple(index.namespaces))

    def retain(self, firsts: set[int]) -> None:
        """Forget segments pruning removed or rewrote under another name."""
        with self._lock:
            for first in [f for f in self._indexes if f not in firsts]:
                del self._indexes[first]


def _span_frames(span: bytes, seq: int) -> list[tuple[int, bytes]]:
    """(seq, payload) of the entry frames in a span that starts at an entry frame numbered `seq`."""
    found, n = [], 0
    while n < len(span):
        length = span[n]
        if length == NAMESPACE_DECLARATION:
            n += _DECLARATION_SIZE
            continue
        found.append((seq, span[n + 1:n + 1 + length]))
        n += 1 + length
        seq += 1
    return found


def _frames_back(marks: Marks, fd: int, end: int, below: int) -> Iterator[tuple[int, bytes]]:
    """(seq, payload) of one segment's entry frames numbered below `below`, newest first."""
    k = bisect_right(marks.seqs, below - 1) - 1
    stop = end if k + 1 >= len(marks.offsets) else min(end, marks.offsets[k + 1])
    for mark in range(k, -1, -1):
        start = marks.offsets[mark]
        for seq, payload in reversed(_span_frames(os.pread(fd, stop - start, start), marks.seqs[mark])):
            if seq < below:
                yield seq, payload
        stop = start


def newest_first(view: LogView, indexes: SegmentIndexes, before: int | None = None) -> Iterator[AuditEntry]:
    """The entries of `view` numbered below `before` (all, if None), newest first; `InvalidRecord` where
    the files stop making sense."""
    indexes.retain({first for first, _, _ in view.segments})
    below = view.head.seq + 1 if before is None else min(before, view.head.seq + 1)
    floor = view.checkpoint.seq  # entries up to here are pruned history, even if a file still has them
    if below <= floor + 1:
        return
    held: tuple[int, bytes, tuple[Namespace, ...]] | None = None
    for first, fd, end in reversed(view.segments):
        if first >= below:
            continue
        marks = indexes.marks(first, fd, end)
        for seq, payload in _frames_back(marks, fd, end, below):
            if seq <= floor:
                below = floor + 1  # the rest is pruned history
                break
            if held is not None:
                yield _decode_held(held, seq, payload)
            held = (seq, payload, marks.namespaces)
        else:
            below = first
        if below <= floor + 1:
            break
    if held is not None:
        if held[0] != floor + 1:
            raise InvalidRecord(f"audit log entry {held[0] - 1}: missing (sequence gap)")
        yield decode_payload(held[1], held[0], view.checkpoint.hash, list(held[2]))


def _decode_held(held: tuple[int, bytes, tuple[Namespace, ...]], seq: int, payload: bytes) -> AuditEntry:
    """The held entry, now that its predecessor's frame (`seq`, `payload`) is known."""
    held_seq, held_payload, namespaces = held
    if seq != held_seq - 1:
        raise InvalidRecord(f"audit log entry {held_seq - 1}: missing (sequence gap)")
    if len(payload) < _HASH_LEN:
        raise InvalidRecord(f"audit log entry {seq}: unreadable entry: audit frame is too short")
    return decode_payload(held_payload, held_seq, payload[-_HASH_LEN:], list(namespaces))
