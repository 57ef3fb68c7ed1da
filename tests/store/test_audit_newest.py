"""Newest-first reads of the audit log: the same entries as the oldest-first walk, in reverse, across
many small segments, with cursors, rotation and pruning in between."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest

from channeld.store import AuditRecord, Batch, InvalidRecord, Store, _auditlog, _auditreverse
from channeld.store._auditframe import HEADER_SIZE
from channeld.store._auditlog import LOG_DIR
from tests.store.helpers import NS, OTHER_NS, cid

ENTRIES = 24_000
ROUND = 1_000  # entries per commit: one writer round, so filling the store takes a second or two


def _record(n: int) -> AuditRecord:
    # a namespace switch now and then declares namespaces in the middle of segments
    return AuditRecord(OTHER_NS if n % 97 == 0 else NS, cid(n % 5), b"\x07" * 20, "payment_sent", -n,
                       proof_hash=cid(100 + n), payment_id=cid(n))


def _append(store: Store, start: int, count: int) -> None:
    for base in range(start, start + count, ROUND):
        batch = Batch()
        for n in range(base, min(base + ROUND, start + count)):
            batch.append_audit(_record(n))
        store.commit_sync(batch)


@pytest.fixture
def small_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_auditlog, "SEGMENT_BYTES", 60_000)  # about 400 frames: a segment per round
    monkeypatch.setattr(_auditreverse, "MARK_EVERY", 64)  # many spans per segment


def _segments(store_path: Path) -> int:
    return len(list((store_path / LOG_DIR).glob("*.seg")))


@pytest.mark.usefixtures("small_segments")
def test_newest_first_is_the_oldest_first_walk_reversed(store_path: Path) -> None:
    times = iter(float(n) for n in range(1000))
    with Store.open(store_path, clock=lambda: next(times)) as store:
        _append(store, 0, ENTRIES)
        assert _segments(store_path) >= 20
        oldest_first = list(store.iter_audit())
        assert len(oldest_first) == ENTRIES
        assert list(store.iter_audit_newest()) == oldest_first[::-1]
        # the active segment's index grows with the log: a read after more appends sees them
        _append(store, ENTRIES, 300)
        assert [e.seq for e in store.iter_audit_newest()][:301] == list(range(ENTRIES + 299, ENTRIES - 2, -1))
    with Store.open(store_path) as store:  # cold indexes, a reconciled reopen
        assert list(store.iter_audit_newest()) == list(store.iter_audit())[::-1]


@pytest.mark.usefixtures("small_segments")
def test_cursor_pages_reach_every_entry_once(store_path: Path) -> None:
    with Store.open(store_path) as store:
        _append(store, 0, ENTRIES)
        newest = list(store.iter_audit_newest(before_seq=12_345))
        assert [e.seq for e in newest] == list(range(12_344, -1, -1))
        assert list(store.iter_audit_newest(before_seq=0)) == []
        assert [e.seq for e in store.iter_audit_newest(before_seq=10**12)][:2] == [ENTRIES - 1, ENTRIES - 2]
        seen: list[int] = []
        cursor = None
        while True:
            page = [e.seq for e in itertools.islice(store.iter_audit_newest(before_seq=cursor), 777)]
            if not page:
                break
            seen += page
            cursor = page[-1]
        assert seen == list(range(ENTRIES - 1, -1, -1))


@pytest.mark.usefixtures("small_segments")
def test_pages_stay_right_while_the_log_rotates_and_is_pruned(store_path: Path) -> None:
    times = iter(float(n) for n in range(1000))
    with Store.open(store_path, clock=lambda: next(times)) as store:
        _append(store, 0, 6_000)  # entries of round r are stamped r seconds
        first_page = [e.seq for e in itertools.islice(store.iter_audit_newest(), 2_500)]
        assert first_page == list(range(5_999, 3_499, -1))
        _append(store, 6_000, 2_000)  # newer entries land above the cursor: later pages never show them
        assert store.prune_audit(older_than_ms=2_500) == 3_000  # rounds 0-2 pruned, one segment rewritten
        rest = [e.seq for e in store.iter_audit_newest(before_seq=first_page[-1])]
        assert rest == list(range(3_499, 2_999, -1))  # stops at the checkpoint
        assert list(store.iter_audit_newest()) == list(store.iter_audit())[::-1]


@pytest.mark.usefixtures("small_segments")
def test_a_missing_segment_is_an_invalid_record_not_a_silent_gap(store_path: Path) -> None:
    with Store.open(store_path) as store:
        _append(store, 0, 3_000)
        assert [e.seq for e in itertools.islice(store.iter_audit_newest(), 3)] == [2_999, 2_998, 2_997]
    sorted((store_path / LOG_DIR).glob("*.seg"))[1].unlink()
    with Store.open(store_path) as store:
        assert not store.verify_audit().ok
        with pytest.raises(InvalidRecord, match="sequence gap"):
            list(store.iter_audit_newest())


def test_a_malformed_frame_is_an_invalid_record(store_path: Path) -> None:
    with Store.open(store_path) as store:
        _append(store, 0, 50)
    segment = min(p for p in (store_path / LOG_DIR).glob("*.seg") if p.stat().st_size > HEADER_SIZE)
    raw = bytearray(segment.read_bytes())
    raw[HEADER_SIZE + 29] += 1  # the first entry's length byte (after one declaration) swallows the next
    segment.write_bytes(bytes(raw))
    with Store.open(store_path) as store, pytest.raises(InvalidRecord):
        list(store.iter_audit_newest())


def test_namespaces_of_each_segment_are_its_own(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_auditlog, "SEGMENT_BYTES", 1_500)
    with Store.open(store_path) as store:
        for n in range(40):
            ns = NS if n % 3 else OTHER_NS
            store.commit_sync(Batch().append_audit(dataclasses.replace(_record(n), namespace=ns)))
        assert [e.record.namespace for e in store.iter_audit_newest()] == \
            [NS if n % 3 else OTHER_NS for n in range(39, -1, -1)]
