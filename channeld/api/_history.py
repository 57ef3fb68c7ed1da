"""A channel's balances replayed from its audit trail, for the dashboard's balance-history chart.

The audit log records each side's deposits and withdrawals as on-chain totals (the opening deposits
too) and every payment as a signed amount (negative when we sent it), so both balances after each
entry follow by replaying the trail from zero. Closing and settling move no balance inside the channel.

A channel's trail is read newest first over at most `TRAIL_SCAN_ENTRIES` entries of the whole log (all
channels'), off the trio loop: the dashboard answers in bounded time however long the history. When the
log is longer than that bound, the trail holds the channel's entries among the newest ones and its
balances are anchored to the channel's balances now (see `anchored`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from channeld.store import AuditEntry

_TOTALS = {"deposit": "deposit", "withdraw": "withdrawn"}
TRAIL_SCAN_ENTRIES = 200_000  # newest log entries a channel's trail reads at most (~1 s in a thread)


@dataclass(frozen=True, slots=True)
class Side:
    deposit: int = 0
    withdrawn: int = 0


@dataclass(frozen=True, slots=True)
class Replay:
    """Both sides' on-chain totals and what was paid each way, after some prefix of the trail."""

    ours: Side = Side()
    theirs: Side = Side()
    sent: int = 0
    received: int = 0

    @property
    def our_balance(self) -> int:
        return self.ours.deposit - self.ours.withdrawn - self.sent + self.received

    @property
    def partner_balance(self) -> int:
        return self.theirs.deposit - self.theirs.withdrawn + self.sent - self.received

    def step(self, kind: str, by_us: bool, amount: int) -> tuple[Replay, int]:
        """The replay after one entry, and the change it made to the acting side."""
        if kind == "payment_sent":
            return replace(self, sent=self.sent - amount), amount  # the log keeps it negative
        if kind == "payment_received":
            return replace(self, received=self.received + amount), amount
        field = _TOTALS.get(kind)
        if field is None:
            return self, 0
        side = self.ours if by_us else self.theirs
        before = getattr(side, field)
        moved = replace(side, **{field: amount})
        change = amount - before if kind == "deposit" else before - amount
        return (replace(self, ours=moved) if by_us else replace(self, theirs=moved)), change


def seeded(entries: list[AuditEntry], us: bytes, our_deposit: int, partner_deposit: int) -> Replay:
    """Where the replay starts: zero, except for a side whose deposit the trail never mentions.

    Channels opened before opening deposits were audited have no entry for them; a side with no
    deposit entry at all never changed its deposit after the open, so its deposit now is the opening one.
    """
    ours_seen = any(e.record.kind == "deposit" and e.record.who == us for e in entries)
    theirs_seen = any(e.record.kind == "deposit" and e.record.who != us for e in entries)
    return Replay(Side(0 if ours_seen else our_deposit), Side(0 if theirs_seen else partner_deposit))


def balance_history(entries: Iterable[AuditEntry], us: bytes, our_deposit: int,
                    partner_deposit: int) -> list[dict[str, Any]]:
    """Each of one channel's audit entries (oldest first) with both balances after it."""
    trail = list(entries)
    replay = seeded(trail, us, our_deposit, partner_deposit)
    found: list[dict[str, Any]] = []
    for entry in trail:
        r = entry.record
        # a payment's `who` is always the partner (whose proof carries it); elsewhere it is the actor
        by_us = r.kind == "payment_sent" if r.kind.startswith("payment_") else r.who == us
        replay, change = replay.step(r.kind, by_us, r.amount)
        found.append({"seq": entry.seq, "at_ms": entry.timestamp_ms, "kind": r.kind,
                      "by": "us" if by_us else "partner", "amount": str(r.amount), "change": str(change),
                      "balance_after": str(replay.our_balance),
                      "partner_balance_after": str(replay.partner_balance),
                      "proof_hash": "0x" + r.proof_hash.hex(),
                      "payment_id": int.from_bytes(r.payment_id, "big")})
    return found


def channel_trail(newest_first: Iterator[AuditEntry], channel_id: bytes,
                  bound: int = TRAIL_SCAN_ENTRIES) -> tuple[list[AuditEntry], bool]:
    """The channel's entries among the newest `bound` of the log (oldest first), and whether that was
    the whole log (so the trail starts at the channel's beginning). Blocking: run it in a thread."""
    found: list[AuditEntry] = []
    for read, entry in enumerate(newest_first):
        if read == bound:
            return found[::-1], False
        if entry.record.channel_id == channel_id:
            found.append(entry)
    return found[::-1], True


def anchored(history: list[dict[str, Any]], our_now: int, partner_now: int) -> list[dict[str, Any]]:
    """A trail that does not reach back to the channel's opening, its balances shifted so that the last
    are the channel's balances now: payments and withdrawals before the trail move every step alike. A
    deposit inside such a trail has no earlier total to compare with, so its `change` is its total."""
    if not history:
        return history
    ours = our_now - int(history[-1]["balance_after"])
    theirs = partner_now - int(history[-1]["partner_balance_after"])
    return [{**step, "balance_after": str(int(step["balance_after"]) + ours),
             "partner_balance_after": str(int(step["partner_balance_after"]) + theirs)} for step in history]
