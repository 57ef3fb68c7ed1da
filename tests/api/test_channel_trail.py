"""A channel's trail read newest first with a bound, and its balances anchored to the channel's now."""

from __future__ import annotations

from channeld.api._history import anchored, balance_history, channel_trail
from channeld.store import AuditEntry, AuditRecord, Namespace

NS = Namespace(1, b"\x01" * 20)
OURS, OTHER = b"\xcc" * 32, b"\xdd" * 32
US, THEM = b"\x0a" * 20, b"\x0b" * 20


def _log(*steps: tuple[bytes, str, bytes, int]) -> list[AuditEntry]:
    """Oldest first, as the log holds them."""
    return [AuditEntry(seq, 1000 * seq, AuditRecord(NS, cid, who, kind, amount), b"\x00" * 32, b"\x00" * 32)
            for seq, (cid, kind, who, amount) in enumerate(steps)]


LOG = _log((OURS, "deposit", US, 100), (OURS, "deposit", THEM, 50), (OTHER, "payment_sent", THEM, -7),
           (OURS, "payment_sent", THEM, -30), (OURS, "withdraw", US, 20),
           (OTHER, "payment_received", THEM, 9), (OURS, "payment_received", THEM, 5),
           (OURS, "payment_sent", THEM, -1))


def _balances(history: list[dict[str, object]]) -> list[tuple[int, int]]:
    return [(int(str(e["balance_after"])), int(str(e["partner_balance_after"]))) for e in history]


def test_a_trail_within_the_bound_is_the_channels_whole_history() -> None:
    trail, whole = channel_trail(reversed(LOG), OURS, bound=len(LOG))
    assert whole and [e.seq for e in trail] == [0, 1, 3, 4, 6, 7]


def test_a_trail_cut_by_the_bound_keeps_the_newest_entries_and_says_so() -> None:
    trail, whole = channel_trail(reversed(LOG), OURS, bound=4)  # reads seqs 7, 6, 5, 4 only
    assert not whole and [e.seq for e in trail] == [4, 6, 7]


def test_anchored_balances_end_at_the_channels_balances_now() -> None:
    full = _balances(balance_history([e for e in LOG if e.record.channel_id == OURS], US, 100, 50))
    assert full[-1] == (54, 76)
    trail, _ = channel_trail(reversed(LOG), OURS, bound=4)
    cut = anchored(balance_history(trail, US, 100, 50), *full[-1])
    assert _balances(cut) == full[-3:]  # the same points the whole trail gives for these entries
    assert anchored([], 1, 2) == []
