"""The event journal is pruned by age (`journal.retention`) on a real LevelDB, keeping its numbering."""

from __future__ import annotations

import time
from pathlib import Path

import trio

from channeld.config import JournalConfig, load_config
from channeld.node._events import EventBus, NodeEvent
from channeld.node._journal import Journal

DAY = 86400.0


def journal_with(path: Path, ages: list[float]) -> Journal:
    """A journal holding one event per age (seconds before now), oldest first, numbered from 1."""
    journal = Journal.open(path)
    now = time.time()
    for seq, age in enumerate(ages, start=1):
        journal.append(NodeEvent(seq, "payment_sent", None, {"amount": str(seq)}, now - age))
    journal.write_pending()
    return journal


def seqs(journal: Journal) -> list[int]:
    return [event["seq"] for event in journal.events_after(0)]


def test_events_older_than_the_cutoff_are_pruned_and_newer_ones_kept(tmp_path: Path) -> None:
    journal = journal_with(tmp_path, [40 * DAY, 35 * DAY, 31 * DAY, 29 * DAY, 1.0])
    assert journal.prune_events(time.time() - 30 * DAY) == 3
    assert seqs(journal) == [4, 5]
    assert journal.prune_events(time.time() - 30 * DAY) == 0  # nothing more to do
    journal.close()


def test_the_newest_event_survives_so_numbering_resumes_after_it(tmp_path: Path) -> None:
    journal = journal_with(tmp_path, [90 * DAY, 80 * DAY, 70 * DAY])
    assert journal.prune_events(time.time()) == 2
    assert seqs(journal) == [3]
    journal.close()
    reopened = Journal.open(tmp_path)
    bus = EventBus()
    reopened.attach(bus)
    assert bus.publish("payment_received").seq == 4
    reopened.close()


def test_pruning_stops_at_the_first_newer_event(tmp_path: Path) -> None:
    """Publication order is the order kept: an old event after a newer one (a clock stepped back) stays."""
    journal = journal_with(tmp_path, [50 * DAY, 1.0, 50 * DAY, 1.0])
    assert journal.prune_events(time.time() - DAY) == 1
    assert seqs(journal) == [2, 3, 4]
    journal.close()


async def test_the_pruning_task_prunes_at_start(tmp_path: Path) -> None:
    journal = journal_with(tmp_path, [2 * DAY, DAY, 10.0])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(journal.run_pruning, 3600.0)
        with trio.fail_after(30):
            while seqs(journal) != [3]:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    journal.close()


def test_retention_is_configurable_and_defaults_to_30_days(tmp_path: Path) -> None:
    assert JournalConfig().retention == 30 * DAY
    (tmp_path / "channeld.toml").write_text('[journal]\nretention = "48h"\n')
    assert load_config(tmp_path, environ={}).journal.retention == 2 * DAY
