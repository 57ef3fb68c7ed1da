"""Crash safety: a child committing in a loop is SIGKILLed; every commit it acknowledged survives.

SIGKILL leaves the OS page cache intact, so this proves the ordering (acknowledge only after the
write) and LevelDB's recovery, not the fsync itself; the fsync is LevelDB's `sync=True`.
"""

from __future__ import annotations

import signal
from pathlib import Path

from channeld.store import Store
from tests.store.helpers import NS, spawn_child, triple_state

ACKS_BEFORE_KILL = 150


def _run_and_kill(store_path: Path, run: int) -> list[tuple[int, int]]:
    child = spawn_child("commit-loop", str(store_path), str(run))
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


def test_acknowledged_commits_survive_sigkill(store_path: Path) -> None:
    for run in range(3):
        acked = _run_and_kill(store_path, run)
        with Store.open(store_path) as store:
            for worker, n in acked:
                channel_id = bytes([run, worker]) + n.to_bytes(30, "big")
                assert triple_state(store, channel_id) == (b"%d:%d:%d" % (run, worker, n) * 20,) * 3
            _assert_every_batch_whole(store, run)
            verdict = store.verify_audit()
            assert verdict.ok, verdict
            assert verdict.entries >= len(acked) + run * ACKS_BEFORE_KILL


def _assert_every_batch_whole(store: Store, run: int) -> None:
    """Also batches written but never acknowledged: channel, both proofs and audit entry, or nothing."""
    channels = {channel_id for channel_id, _ in store.iter_channels(NS) if channel_id[0] == run}
    audited = {entry.record.channel_id for entry in store.iter_audit() if entry.record.channel_id[0] == run}
    assert channels and channels == audited
    for channel_id in channels:
        values = triple_state(store, channel_id)
        assert values[0] is not None and values.count(values[0]) == 3
