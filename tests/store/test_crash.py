"""Crash safety: a child committing in a loop is SIGKILLed; every commit it acknowledged survives.

SIGKILL leaves the OS page cache intact, so this proves the ordering (acknowledge only after the
write) and LevelDB's recovery, not the fsync itself; the fsync is LevelDB's `sync=True`.
"""

from __future__ import annotations

import signal
import struct
from pathlib import Path

import plyvel

from channeld.store import Store
from channeld.store._auditframe import HEADER_SIZE
from channeld.store._auditlog import AUDIT_TAIL_KEY, LOG_DIR, segment_path
from tests.store.helpers import NS, spawn_child, triple_state

ACKS_BEFORE_KILL = 150


def _run_and_kill(store_path: Path, run: int, mode: str = "commit-loop") -> list[tuple[int, int]]:
    child = spawn_child(mode, str(store_path), str(run))
    assert child.stdout is not None
    acked: list[tuple[int, int]] = []
    try:
        while len(acked) < ACKS_BEFORE_KILL:
            line = child.stdout.readline()
            assert line, f"child ended early: {child.stderr.read() if child.stderr else b''!r}"
            acked.append(_parse(line, run))
    finally:
        child.send_signal(signal.SIGKILL)
    # Acknowledgements already in the pipe when the kill landed count too.
    acked += [_parse(line, run) for line in child.stdout.read().splitlines()]
    child.wait()
    assert child.returncode == -signal.SIGKILL
    return acked


def _parse(line: bytes, expected_run: int) -> tuple[int, int]:
    run, worker, n = (int(part) for part in line.split(b":"))
    assert run == expected_run
    return worker, n


def _assert_survived(store_path: Path, run: int, acked: list[tuple[int, int]]) -> None:
    with Store.open(store_path) as store:
        for worker, n in acked:
            channel_id = bytes([run, worker]) + n.to_bytes(30, "big")
            assert triple_state(store, channel_id) == (b"%d:%d:%d" % (run, worker, n) * 20,) * 3
        _assert_every_batch_whole(store, run)
        verdict = store.verify_audit()
        assert verdict.ok, verdict
        assert list(store.iter_audit_newest()) == list(store.iter_audit())[::-1]  # the reconciled tail
        assert verdict.entries >= len(acked) + run * ACKS_BEFORE_KILL


def test_acknowledged_commits_survive_sigkill(store_path: Path) -> None:
    for run in range(3):
        _assert_survived(store_path, run, _run_and_kill(store_path, run))


def _tail_segment(store_path: Path) -> tuple[Path, int]:
    """The segment the store says the log ends in, and its durable end offset."""
    with plyvel.DB(str(store_path)) as db:
        segment, end = struct.unpack(">QQ", db.get(AUDIT_TAIL_KEY))
    return segment_path(store_path / LOG_DIR, segment), end


def test_audit_frames_the_page_cache_lost_are_written_again_from_the_store(store_path: Path) -> None:
    """The store is the truth: kill -9 with the log never fsynced, then drop every unsynced byte of the
    segment (what a power cut does); the pending rounds in the store bring each entry back."""
    acked = _run_and_kill(store_path, 0, "commit-loop-unsynced")
    path, end = _tail_segment(store_path)
    assert end > HEADER_SIZE + 150 * 100
    with open(path, "r+b") as segment:
        segment.truncate(HEADER_SIZE)
    _assert_survived(store_path, 0, acked)


def test_audit_frames_past_the_durable_end_are_cut_off(store_path: Path) -> None:
    """A round whose frames reached the segment but whose batch never landed is not history."""
    acked = _run_and_kill(store_path, 0)
    path, end = _tail_segment(store_path)
    frames = path.read_bytes()[HEADER_SIZE:HEADER_SIZE + 600]  # well-formed frames, in the wrong place
    with open(path, "r+b") as segment:
        segment.seek(end)  # the kill may have come before the last round's append: the store repairs that
        segment.write(frames)
    _assert_survived(store_path, 0, acked)
    assert path.stat().st_size == end


def _assert_every_batch_whole(store: Store, run: int) -> None:
    """Also batches written but never acknowledged: channel, both proofs and audit entry, or nothing."""
    channels = {channel_id for channel_id, _ in store.iter_channels(NS) if channel_id[0] == run}
    audited = {entry.record.channel_id for entry in store.iter_audit() if entry.record.channel_id[0] == run}
    assert channels and channels == audited
    for channel_id in channels:
        values = triple_state(store, channel_id)
        assert values[0] is not None and values.count(values[0]) == 3
