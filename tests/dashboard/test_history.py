"""The balance replay behind the dashboard's per-channel chart, on hand-made audit trails."""

from __future__ import annotations

from channeld.api._history import balance_history
from channeld.store import AuditEntry, AuditRecord, Namespace

NS = Namespace(1, b"\x01" * 20)
CID = b"\xcc" * 32
US, THEM = b"\x0a" * 20, b"\x0b" * 20


def trail(*steps: tuple[str, bytes, int]) -> list[AuditEntry]:
    return [AuditEntry(seq, 1000 * seq, AuditRecord(NS, CID, who, kind, amount), b"\x00" * 32, b"\x00" * 32)
            for seq, (kind, who, amount) in enumerate(steps, start=1)]


def balances(history: list[dict[str, object]]) -> list[tuple[int, int]]:
    return [(int(str(e["balance_after"])), int(str(e["partner_balance_after"]))) for e in history]


def test_totals_replay_from_the_opening_deposits() -> None:
    entries = trail(("deposit", US, 100), ("deposit", THEM, 50), ("payment_sent", THEM, -30),
                    ("payment_received", THEM, 5), ("deposit", US, 120), ("withdraw", US, 40),
                    ("withdraw", THEM, 10), ("close", US, 0), ("settle", US, 0))
    history = balance_history(entries, US, 120, 50)
    assert balances(history) == [(100, 0), (100, 50), (70, 80), (75, 75), (95, 75), (55, 75), (55, 65),
                                 (55, 65), (55, 65)]
    assert [e["change"] for e in history] == ["100", "50", "-30", "5", "20", "-40", "-10", "0", "0"]
    assert [e["by"] for e in history] == ["us", "partner", "us", "partner", "us", "us", "partner", "us", "us"]


def test_a_channel_whose_opening_deposits_were_never_audited_starts_from_its_deposits() -> None:
    # opened before opening deposits were audited: only the payments are in the trail
    entries = trail(("payment_sent", THEM, -30), ("payment_received", THEM, 10))
    assert balances(balance_history(entries, US, 100, 20)) == [(70, 50), (80, 40)]


def test_an_empty_trail_has_no_points() -> None:
    assert balance_history([], US, 0, 0) == []
