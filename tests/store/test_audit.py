"""The audit chain: tampering with stored or exported entries is found at the right index."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from pathlib import Path

import plyvel
import pytest

from channeld.store import (
    AuditEntry,
    AuditRecord,
    Batch,
    InvalidRecord,
    Store,
    Table,
    _auditlog,
    verify_jsonl,
)
from channeld.store._auditframe import HEADER_SIZE, encode_frame, iter_frames, read_header, seal_frame
from channeld.store._auditlog import LOG_DIR
from tests.store.helpers import NS, OTHER_NS, cid

ENTRIES = 10


def _record(n: int) -> AuditRecord:
    return AuditRecord(NS, cid(n % 3), b"\x07" * 20, "payment_sent", -n, proof_hash=cid(100 + n),
                       payment_id=cid(200 + n))


def _fill(store_path: Path, clock_seconds: list[float] | None = None) -> None:
    times = iter(clock_seconds or [float(n) for n in range(ENTRIES)])
    with Store.open(store_path, clock=lambda: next(times)) as store:
        for n in range(ENTRIES):
            store.commit_sync(Batch().append_audit(_record(n)))


def _segment_with_entries(store_path: Path) -> Path:
    return min((p for p in (store_path / LOG_DIR).glob("*.seg") if p.stat().st_size > HEADER_SIZE),
               key=lambda p: p.name)


def _frames(store_path: Path) -> tuple[Path, bytes, list[bytes]]:
    """The segment holding the entries: its path, header and declarations, and each entry's frame."""
    path = _segment_with_entries(store_path)
    raw = path.read_bytes()
    found = list(iter_frames(raw, read_header(raw), []))
    prefix = raw[:found[0].offset]
    return path, prefix, [raw[f.offset:f.offset + 1 + len(f.payload)] for f in found]


def _tamper(store_path: Path, change: Callable[[list[bytes]], list[bytes]]) -> None:
    path, prefix, frames = _frames(store_path)
    path.write_bytes(prefix + b"".join(change(frames)))


def _entry(store_path: Path, seq: int) -> AuditEntry:
    with Store.open(store_path) as store:
        return next(e for e in store.iter_audit() if e.seq == seq)


def _verify(store_path: Path) -> tuple[bool, int | None]:
    with Store.open(store_path) as store:
        verdict = store.verify_audit()
    return verdict.ok, verdict.first_bad


def test_untouched_chain_verifies_and_records_who_what_when_which_proof(store_path: Path) -> None:
    _fill(store_path)
    with Store.open(store_path) as store:
        verdict = store.verify_audit()
        entries = list(store.iter_audit())
    assert verdict.ok and verdict.entries == ENTRIES
    assert entries[4].record == _record(4) and entries[4].timestamp_ms == 4000
    assert entries[4].prev_hash == entries[3].hash


def test_entries_live_in_segment_files_not_in_the_state_store(store_path: Path) -> None:
    _fill(store_path)
    _, _, frames = _frames(store_path)
    assert len(frames) == ENTRIES
    assert all(len(frame) <= 150 for frame in frames)  # compact: the JSON form was about 290 bytes
    with plyvel.DB(str(store_path)) as db:
        for table in (Table.AUDIT, Table.AUDIT_PENDING):
            assert next(db.iterator(prefix=bytes([table])), None) is None


def test_deleted_entry_is_reported_at_its_index(store_path: Path) -> None:
    _fill(store_path)
    _tamper(store_path, lambda frames: frames[:4] + frames[5:])
    assert _verify(store_path) == (False, 4)


def test_edited_entry_is_reported_at_its_index(store_path: Path) -> None:
    _fill(store_path)
    old = _entry(store_path, 6)
    edited = encode_frame(dataclasses.replace(old.record, amount=10**18), old.timestamp_ms, 0, old.hash)
    _tamper(store_path, lambda frames: [*frames[:6], edited, *frames[7:]])
    assert _verify(store_path) == (False, 6)


def test_edit_with_recomputed_hash_is_caught_by_the_next_link(store_path: Path) -> None:
    _fill(store_path)
    old = _entry(store_path, 6)
    _, forged = seal_frame(_record(999), old.seq, old.timestamp_ms, old.prev_hash, 0)
    _tamper(store_path, lambda frames: [*frames[:6], forged, *frames[7:]])
    assert _verify(store_path) == (False, 7)


def test_reordered_entries_are_reported_at_the_first_swapped_index(store_path: Path) -> None:
    _fill(store_path)
    _tamper(store_path, lambda f: [f[0], f[1], f[5], f[3], f[4], f[2], *f[6:]])
    assert _verify(store_path) == (False, 2)


def test_truncated_tail_is_reported_at_the_first_missing_index(store_path: Path) -> None:
    _fill(store_path)
    _tamper(store_path, lambda frames: frames[:8])
    assert _verify(store_path) == (False, 8)


def test_torn_last_frame_is_reported_at_its_index(store_path: Path) -> None:
    _fill(store_path)
    _tamper(store_path, lambda frames: [*frames[:9], frames[9][:40]])
    assert _verify(store_path) == (False, 9)


def test_jsonl_export_verifies_offline_and_detects_tampering(store_path: Path) -> None:
    _fill(store_path)
    out = io.BytesIO()
    with Store.open(store_path) as store:
        assert store.export_audit(out) == ENTRIES
    lines = out.getvalue().splitlines(keepends=True)
    assert len(lines) == ENTRIES + 1
    assert verify_jsonl(lines).ok
    assert verify_jsonl(lines[:5] + lines[6:]).first_bad == 4  # line 0 is the header
    assert verify_jsonl([*lines[:3], lines[4], lines[3], *lines[5:]]).first_bad == 2
    edited = lines[:]
    edited[8] = edited[8].replace(b'"kind":"payment_sent"', b'"kind":"payment_recvd"')
    assert verify_jsonl(edited).first_bad == 7
    assert verify_jsonl([*lines[:3], b"{not json\n", *lines[4:]]).first_bad == 2
    with pytest.raises(InvalidRecord):
        verify_jsonl([b'{"format":"something-else","version":1}\n'])


def test_prune_by_age_keeps_the_rest_verifiable(store_path: Path) -> None:
    _fill(store_path)
    with Store.open(store_path) as store:
        assert store.prune_audit(older_than_ms=6000) == 6
        assert [e.seq for e in store.iter_audit()] == [6, 7, 8, 9]
        assert store.audit_checkpoint().seq == 5
        assert store.verify_audit().ok
        store.commit_sync(Batch().append_audit(_record(10)))
        out = io.BytesIO()
        store.export_audit(out)
    assert verify_jsonl(out.getvalue().splitlines()).ok
    _tamper(store_path, lambda frames: frames[1:])  # the first segment now holds 7, 8, 9
    assert _verify(store_path) == (False, 6)


def test_pruning_everything_leaves_checkpoint_equal_to_head(store_path: Path) -> None:
    _fill(store_path)
    with Store.open(store_path) as store:
        assert store.prune_audit(older_than_ms=10**15) == ENTRIES
        assert store.audit_checkpoint() == store.audit_head()
        assert store.verify_audit().ok
        receipt = store.commit_sync(Batch().append_audit(_record(11)))
        assert receipt.audit_seqs == (ENTRIES,)
        assert store.verify_audit().ok


def test_audit_record_validates_its_fields() -> None:
    with pytest.raises(InvalidRecord):
        AuditRecord(NS, cid(1), b"\x07" * 19, "deposit", 1)
    with pytest.raises(InvalidRecord):
        AuditRecord(NS, cid(1), b"\x07" * 20, "Bad Kind", 1)
    with pytest.raises(InvalidRecord):
        AuditRecord(NS, cid(1), b"\x07" * 20, "deposit", 2**256)


@pytest.mark.parametrize("amount", [0, -1, 2**255, -(2**255) + 1])
def test_hot_path_encoding_equals_canonical_json(amount: int) -> None:
    from channeld.store._audit import _canonical, _canonical_halves, _hash_body, seal, seal_encoded

    record = AuditRecord(NS, cid(3), b"\xfe" * 20, "lock_expired_2", amount, proof_hash=cid(4))
    place = (2**63, 1_700_000_000_123, b"\x9a" * 32)
    digest, stored = seal_encoded(record, *place)
    entry = seal(record, *place)
    assert b"".join(_canonical_halves(record, *place)) == _canonical(entry.body())
    assert stored == entry.to_json() == _canonical({**entry.body(), "hash": "0x" + entry.hash.hex()})
    assert digest == entry.hash == _hash_body(entry.body())


def test_reopening_goes_on_appending_to_a_small_tail_segment(store_path: Path) -> None:
    """Each open reads the tail segment's namespace declarations back and appends after them."""
    for n in range(6):
        with Store.open(store_path) as store:
            ns = OTHER_NS if n % 2 else NS
            store.commit_sync(Batch().append_audit(dataclasses.replace(_record(n), namespace=ns)))
    assert len(list((store_path / LOG_DIR).glob("*.seg"))) == 1
    with Store.open(store_path) as store:
        entries = list(store.iter_audit())
        assert store.verify_audit().ok
    assert [e.record.namespace for e in entries] == [NS, OTHER_NS] * 3


def test_chain_verifies_and_exports_across_rotated_segments_and_pruning(
        store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_auditlog, "SEGMENT_BYTES", 1500)  # about ten frames per segment
    times = iter(float(n) for n in range(100))
    with Store.open(store_path, clock=lambda: next(times)) as store:
        for n in range(60):
            store.commit_sync(Batch().append_audit(dataclasses.replace(_record(n),
                                                                       namespace=OTHER_NS if n % 7 else NS)))
        segments = len(list((store_path / LOG_DIR).glob("*.seg")))
        assert segments >= 5
        assert store.verify_audit().entries == 60
        assert store.prune_audit(older_than_ms=25_000) == 25  # whole segments gone, one rewritten
        assert len(list((store_path / LOG_DIR).glob("*.seg"))) < segments
        assert [e.seq for e in store.iter_audit()] == list(range(25, 60))
        out = io.BytesIO()
        assert store.export_audit(out) == 35
    assert verify_jsonl(out.getvalue().splitlines()).ok
    with Store.open(store_path) as store:
        verdict = store.verify_audit()
        assert verdict.ok and verdict.entries == 35
        assert store.audit_checkpoint().seq == 24
