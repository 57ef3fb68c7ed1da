"""Durable journal writes off the trio loop: the writer thread, its group commit, and the read overlay."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import trio

from channeld.node._journal import Journal, JournalError, _table_key


async def test_put_durable_returns_once_the_record_is_in_leveldb(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    try:
        await journal.put_durable("t", "k", {"v": 1})
        assert journal._db.get(_table_key("t", "k")) == b'{"v": 1}'
        assert journal._unsynced == {}  # landed: nothing left in the overlay
    finally:
        journal.close()
    reopened = Journal.open(tmp_path)
    try:
        assert reopened.get("t", "k") == {"v": 1}
    finally:
        reopened.close()


async def test_a_burst_of_durable_writes_shares_fsyncs(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    try:
        async with trio.open_nursery() as nursery:
            for n in range(64):
                nursery.start_soon(journal.put_durable, "t", f"k{n}", {"v": n})
        stats = journal._writer.statistics()
        assert stats.jobs == 64
        assert stats.groups < stats.jobs  # written while an fsync ran: grouped into the next batch
        assert [record["v"] for _, record in journal.items("t")] == sorted(range(64), key=lambda n: f"k{n}")
    finally:
        journal.close()


async def test_a_handed_off_record_is_read_at_once_and_announced_on_the_loop_once_landed(
        tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    landed = trio.Event()
    seen: list[tuple[bytes | None, bool]] = []

    def on_durable() -> None:
        seen.append((journal._db.get(_table_key("t", "k")), threading.current_thread() is main))
        landed.set()

    main = threading.current_thread()
    try:
        journal.put_soon("t", "k", {"v": 2}, on_durable)
        assert journal.get("t", "k") == {"v": 2}  # before the writer thread could have written it
        assert dict(journal.items("t")) == {"k": {"v": 2}}
        with trio.fail_after(30):
            await landed.wait()
        assert seen == [(b'{"v": 2}', True)]
    finally:
        journal.close()


async def test_a_deletion_hides_the_record_at_once_and_lands(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    try:
        await journal.put_durable("t", "k", {"v": 1})
        journal.delete_soon("t", "k")
        assert journal.get("t", "k") is None and list(journal.items("t")) == []
        await journal.delete_durable("t", "other")  # queued after the deletion: it landed too
        assert journal._db.get(_table_key("t", "k")) is None
    finally:
        journal.close()


async def test_an_unsynced_put_of_a_pending_key_is_not_overtaken_by_the_older_write(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    try:
        journal.put_soon("t", "k", {"v": 1})
        journal.put("t", "k", {"v": 2})  # must land after the queued write, not before it
        await journal.put_durable("t", "flush", {})
        assert journal.get("t", "k") == {"v": 2}
        assert journal._db.get(_table_key("t", "k")) == b'{"v": 2}'
    finally:
        journal.close()


def test_blocking_writes_still_work_outside_trio(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    try:
        journal.put("t", "k", {"v": 3}, sync=True)
        assert journal._db.get(_table_key("t", "k")) == b'{"v": 3}'
        journal.delete("t", "k")
        assert journal.get("t", "k") is None and journal._db.get(_table_key("t", "k")) is None
    finally:
        journal.close()


async def test_a_failed_write_raises_and_never_announces(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    announced: list[str] = []
    journal._db.close()  # the writer thread's batch now fails
    try:
        journal.put_soon("t", "a", {"v": 1}, lambda: announced.append("a"))
        with pytest.raises(JournalError, match="journal write failed"):
            await journal.put_durable("t", "b", {"v": 1})
        assert announced == []
        assert journal._unsynced == {}  # the overlay does not claim what never landed
    finally:
        journal._writer.close()
