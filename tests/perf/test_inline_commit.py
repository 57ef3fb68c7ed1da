"""On a fast medium an idle writer's round is written inline (no thread hand-off), never out of order."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from channeld.store import Batch, Store
from channeld.store._writer import INLINE_WRITE_LIMIT
from tests.store.helpers import NS, cid
from tests.store.test_commit import _audit


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "db")
    yield opened
    opened.close()


def _batch(n: int) -> Batch:
    return Batch().put_channel(NS, cid(0), b"v%d" % n).append_audit(_audit(n))


async def test_an_idle_writer_on_a_fast_medium_writes_before_submit_returns(store: Store) -> None:
    store._writer._recent_write = 0.0  # as after a run of fast synced writes
    pending = store.submit(_batch(1))
    assert pending.is_durable() and store.get_channel(NS, cid(0)) == b"v1"
    assert (await pending.wait_durable()).audit_seqs == (0,)
    store._writer._recent_write = INLINE_WRITE_LIMIT * 2  # a slow medium: the thread writes it
    pending = store.submit(_batch(2))
    assert (await pending.wait_durable()).audit_seqs == (1,)
    assert store.statistics().commits == 2


async def test_a_batch_queued_to_the_thread_is_never_overtaken(store: Store) -> None:
    writer = store._writer
    release = threading.Event()
    write_group = writer._write_group

    def held_on_the_thread(batches: list[Batch]) -> object:
        if threading.current_thread() is writer._thread:
            release.wait(10)  # the thread is busy with the first batch
        return write_group(batches)

    writer._write_group = held_on_the_thread  # type: ignore[method-assign]
    writer._recent_write = INLINE_WRITE_LIMIT * 2
    first = store.submit(_batch(1))
    writer._recent_write = 0.0  # fast now, but the thread still holds the first batch
    second = store.submit(_batch(2))
    assert not second.is_durable()
    release.set()
    assert (await first.wait_durable()).audit_seqs == (0,)
    assert (await second.wait_durable()).audit_seqs == (1,)
    assert store.get_channel(NS, cid(0)) == b"v2"
