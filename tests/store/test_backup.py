"""Backup while the node runs, restore into an empty directory, refusal of bad files."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import trio

from channeld.store import AuditRecord, BackupRefused, Batch, Store, restore_backup
from channeld.store._backup import MAGIC
from tests.store.helpers import NS, cid


def _counter_batch(n: int) -> Batch:
    # Every batch moves a counter and adds a row, so a consistent snapshot has rows 0..counter.
    return (Batch().put_channel(NS, cid(n), b"row %d" % n).put_payment(NS, cid(0), b"%d" % n)
            .append_audit(AuditRecord(NS, cid(n), b"\x01" * 20, "deposit", n)))


def _assert_consistent(store: Store) -> int:
    counter = int(store.get_payment(NS, cid(0)) or b"-1")
    assert [c for c, _ in store.iter_channels(NS)] == [cid(n) for n in range(counter + 1)]
    assert store.verify_audit().entries == counter + 1
    assert store.verify_audit().ok
    return counter


async def test_backup_while_writes_continue_restores_a_consistent_snapshot(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "live")
    backup = tmp_path / "snap.bak"
    written = 0

    async def writer() -> None:
        nonlocal written
        while True:
            await store.commit(_counter_batch(written))
            written += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        while written < 200:
            await trio.sleep(0.001)
        records = await trio.to_thread.run_sync(store.backup, backup)
        assert records > 200
        nursery.cancel_scope.cancel()
    store.close()
    assert restore_backup(backup, tmp_path / "restored") == records
    with Store.open(tmp_path / "restored") as restored:
        counter = _assert_consistent(restored)
    assert 200 <= counter < written


@pytest.fixture
def backup_file(tmp_path: Path) -> Path:
    with Store.open(tmp_path / "src") as store:
        for n in range(20):
            store.commit_sync(_counter_batch(n))
        store.backup(tmp_path / "good.bak")
    return tmp_path / "good.bak"


def test_restore_round_trip_into_an_existing_empty_directory(tmp_path: Path, backup_file: Path) -> None:
    target = tmp_path / "empty"
    target.mkdir()
    restore_backup(backup_file, target)
    with Store.open(target) as store:
        assert _assert_consistent(store) == 19


@pytest.mark.parametrize("offset", [0, 17, 40, 200, -40, -1])
def test_a_flipped_byte_anywhere_is_refused(tmp_path: Path, backup_file: Path, offset: int) -> None:
    data = bytearray(backup_file.read_bytes())
    data[offset] ^= 0x01
    bad = tmp_path / "bad.bak"
    bad.write_bytes(bytes(data))
    with pytest.raises(BackupRefused):
        restore_backup(bad, tmp_path / "target")
    assert not (tmp_path / "target").exists()
    assert not (tmp_path / "target.restoring").exists()


@pytest.mark.parametrize("cut", [10, 100, 41])
def test_a_truncated_file_is_refused(tmp_path: Path, backup_file: Path, cut: int) -> None:
    bad = tmp_path / "short.bak"
    bad.write_bytes(backup_file.read_bytes()[:-cut])
    with pytest.raises(BackupRefused):
        restore_backup(bad, tmp_path / "target")
    assert not (tmp_path / "target").exists()


def test_foreign_format_or_newer_schema_is_refused(tmp_path: Path, backup_file: Path) -> None:
    data = backup_file.read_bytes()
    foreign = tmp_path / "foreign.bak"
    foreign.write_bytes(data[:16] + struct.pack(">H", 2) + data[18:])
    with pytest.raises(BackupRefused, match="format version 2"):
        restore_backup(foreign, tmp_path / "t1")
    newer = tmp_path / "newer.bak"
    newer.write_bytes(data[:18] + struct.pack(">I", 99) + data[22:])
    with pytest.raises(BackupRefused, match="schema version 99"):
        restore_backup(newer, tmp_path / "t2")
    alien = tmp_path / "alien.bak"
    alien.write_bytes(b"SQLite format 3\x00" + data[16:])
    with pytest.raises(BackupRefused, match="magic"):
        restore_backup(alien, tmp_path / "t3")
    assert data[:16] == MAGIC


def test_non_empty_target_is_refused_and_left_alone(tmp_path: Path, backup_file: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "keep.txt").write_bytes(b"mine")
    with pytest.raises(BackupRefused, match="not an empty directory"):
        restore_backup(backup_file, target)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
