"""Refusals at the edges: a locked directory, a read-only one, a disk that fills up."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from channeld.store import Batch, Store, StoreClosed, StoreLocked, StoreUnavailable
from tests.store.helpers import NS, cid, spawn_child, triple_state


def test_second_store_in_same_process_is_refused(store: Store, store_path: Path) -> None:
    with pytest.raises(StoreLocked, match="in use"):
        Store.open(store_path)


def test_second_process_is_refused_with_store_locked(store_path: Path) -> None:
    child = spawn_child("hold", str(store_path))
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"
        with pytest.raises(StoreLocked):
            Store.open(store_path)
    finally:
        child.kill()
        child.wait()
    # Once the holder is gone the lock is free again.
    Store.open(store_path).close()


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A directory outside pytest's private (0700) tree, so an unprivileged child can reach it."""
    path = Path(tempfile.mkdtemp(prefix="channeld-ro-"))
    path.chmod(0o755)
    yield path
    for sub in path.rglob("*"):
        sub.chmod(0o755 if sub.is_dir() else 0o644)
    shutil.rmtree(path)


def _open_as_unprivileged(path: Path) -> str:
    child = spawn_child("readonly", str(path))
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err.decode()
    return out.decode()


def test_read_only_directory_gives_store_unavailable(world_dir: Path) -> None:
    target = world_dir / "ro"
    target.mkdir(mode=0o555)
    target.chmod(0o555)
    assert _open_as_unprivileged(target).startswith("StoreUnavailable")
    assert list(target.iterdir()) == []


def test_existing_store_made_read_only_gives_store_unavailable(world_dir: Path) -> None:
    target = world_dir / "store"
    with Store.open(target) as store:
        store.commit_sync(Batch().put_channel(NS, cid(1), b"before"))
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    for path in [target, *target.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    assert _open_as_unprivileged(target).startswith("StoreUnavailable")
    assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file()} == before


def test_full_disk_fails_typed_and_leaves_only_whole_batches(store_path: Path) -> None:
    child = spawn_child("fill", str(store_path), str(128 * 1024))
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    errors = [line for line in lines if line.startswith("error")]
    acked = [int(line.split()[1]) for line in lines if line.startswith("ack")]
    assert len(errors) == 2 and all(e.startswith("error StoreUnavailable") for e in errors)
    assert "refuses writes after an earlier failure" in errors[1]
    assert len(acked) > 50
    with Store.open(store_path) as store:
        for n in acked:
            assert triple_state(store, cid(n)) == (b"%d" % n * 100,) * 3
        failed = len(acked)
        assert triple_state(store, cid(failed)) in ((None,) * 3, (b"%d" % failed * 100,) * 3)
        assert triple_state(store, cid(failed + 1)) == (None,) * 3


def test_closed_store_refuses_commits(store_path: Path) -> None:
    store = Store.open(store_path)
    store.close()
    store.close()
    with pytest.raises(StoreClosed):
        store.commit_sync(Batch().put_channel(NS, cid(1), b"x"))


def test_a_file_where_the_directory_should_be_is_a_typed_error(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_bytes(b"not a directory")
    with pytest.raises(StoreUnavailable, match="cannot open"):
        Store.open(target)
    assert target.read_bytes() == b"not a directory"

