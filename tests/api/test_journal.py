"""The journal numbers events across restarts and hands back what a client missed."""

from __future__ import annotations

from pathlib import Path

import pytest

from channeld.node._events import EventBus
from channeld.node._journal import Journal, JournalError


def test_events_are_numbered_on_across_a_reopen(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    bus = EventBus()
    journal.attach(bus)
    for amount in range(3):
        bus.publish("payment_received", b"\x01" * 32, amount=str(amount))
    journal.close()
    journal = Journal.open(tmp_path)
    bus = EventBus()
    journal.attach(bus)
    assert bus.publish("peer_connected").seq == 4
    after_one = journal.events_after(1)
    assert [e["seq"] for e in after_one] == [2, 3, 4]
    assert after_one[0]["amount"] == "1" and after_one[0]["channel_id"] == "0x" + "01" * 32
    assert [e["seq"] for e in journal.events_after(0, limit=2)] == [1, 2]
    assert journal.events_after(4) == []
    journal.close()


def test_tables_keep_records_apart(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    journal.put("a", "k", {"v": 1}, sync=True)
    journal.put("ab", "k", {"v": 2})
    assert journal.get("a", "k") == {"v": 1} and journal.get("ab", "k") == {"v": 2}
    assert list(journal.items("a")) == [("k", {"v": 1})]
    journal.delete("a", "k")
    assert journal.get("a", "k") is None and journal.get("ab", "k") == {"v": 2}
    journal.close()


def test_a_second_opener_is_refused(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path)
    with pytest.raises(JournalError):
        Journal.open(tmp_path)
    journal.close()


def test_numbering_cannot_go_backwards() -> None:
    bus = EventBus()
    bus.publish("x")
    bus.publish("y")
    with pytest.raises(ValueError, match="cannot number"):
        bus.resume_after(1)
