"""Journal writes are grouped per trio step: one LevelDB batch for a round's payment events."""

from __future__ import annotations

from pathlib import Path

import trio

from channeld.node._events import EventBus
from channeld.node._journal import Journal, _event_key

CID = b"\x01" * 32


async def test_events_of_one_step_are_written_together_when_the_step_ends(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    bus = EventBus()
    journal.attach(bus)
    try:
        for n in range(3):
            bus.publish("payment_received", CID, amount=str(n))
        assert journal._db.get(_event_key(1)) is None  # still pending: nothing written mid-step
        with trio.fail_after(10):  # the write runs once the loop serves its queued callbacks
            while journal._db.get(_event_key(3)) is None:
                await trio.sleep(0.001)
        assert all(journal._db.get(_event_key(seq)) is not None for seq in (1, 2, 3))
    finally:
        journal.close()


async def test_a_read_sees_events_still_pending(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    bus = EventBus()
    journal.attach(bus)
    try:
        bus.publish("payment_sent", CID, amount="5")
        assert [e["amount"] for e in journal.events_after(0)] == ["5"]
        assert journal.last_seq() == 1
    finally:
        journal.close()


async def test_closing_writes_what_is_pending(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    bus = EventBus()
    journal.attach(bus)
    bus.publish("payment_sent", CID, amount="7")
    journal.close()
    reopened = Journal.open(tmp_path)
    try:
        assert [e["amount"] for e in reopened.events_after(0)] == ["7"]
    finally:
        reopened.close()
