"""Risk limits: how much this node may lose to a bug, a stolen API token or a runaway client.

Pure module (no IO, no clock, no trio) so the protocol core can call it before it signs anything. The
caller passes `now` in seconds. The protocol checks payments against a `LimitContext` (the limits, the
ledger as it stands, the payee, the time) carried by `ActionPay` and `start_payment`, and pending locks
against the limits `handle` is given; the node records a payment in its ledger as soon as the protocol
has signed it, with no checkpoint in between, so concurrent payments cannot overrun a budget.

The hourly budgets use a sliding window kept as per-minute buckets, so memory is bounded by the peers
active in the last hour, not by the number of payments. The window is deliberately one minute wider
than an hour (61 buckets): a payment made at second 59 of a minute then still counts a full 3600 s
later, so no real 3600 s span can ever hold more than the limit. The price is that a budget may free up
to one minute late, never early.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from channeld.amounts import UINT256_MAX, WEI_PER_ETH, check_amount, format_amount
from channeld.errors import LocalFault

BUCKET_SECONDS = 60
WINDOW_SECONDS = 3600
# Buckets counted: the current minute and the 60 before it (see the module docstring).
_WINDOW_BUCKETS = WINDOW_SECONDS // BUCKET_SECONDS + 1
MAX_PENDING_LOCKS_CEILING = 10_000

# A minute index and the wei sent in it, oldest first.
Buckets = tuple[tuple[int, int], ...]


class RiskLimitExceeded(LocalFault):
    """A payment, channel or on-chain spend would break a configured risk limit."""

    def __init__(self, limit: str, allowed: int, requested: int, detail: str) -> None:
        super().__init__(detail)
        self.limit = limit
        self.allowed = allowed
        self.requested = requested


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _amount_doc(doc: str) -> dict[str, str]:
    return {"doc": doc, "kind": "amount"}


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The `[limits]` section: every figure is checked before anything is signed or sent on chain."""

    max_payment: int = field(
        default=WEI_PER_ETH // 10,
        metadata=_amount_doc("Largest single outgoing payment."))
    max_per_peer_per_hour: int = field(
        default=WEI_PER_ETH,
        metadata=_amount_doc("Most that may be paid to one peer in any hour."))
    max_total_per_hour: int = field(
        default=5 * WEI_PER_ETH,
        metadata=_amount_doc("Most that may be paid to all peers together in any hour."))
    max_channel_deposit: int = field(
        default=10 * WEI_PER_ETH,
        metadata=_amount_doc("Largest total deposit this node puts into one channel."))
    min_onchain_reserve: int = field(
        default=WEI_PER_ETH // 100,
        metadata=_amount_doc("On-chain balance always kept back to pay gas for disputes and settles; an "
                             "open or deposit that would leave less is refused."))
    max_pending_locks: int = field(
        default=64,
        metadata={"doc": "Most hash-time locks pending at once in one channel, both directions "
                  "together; a partner's lock beyond it is accepted but not acted on (not forwarded, "
                  "not claimed).", "kind": "int",
                  "min": 0, "max": MAX_PENDING_LOCKS_CEILING})

    def __post_init__(self) -> None:
        for name in ("max_payment", "max_per_peer_per_hour", "max_total_per_hour",
                     "max_channel_deposit", "min_onchain_reserve"):
            check_amount(getattr(self, name), f"limits.{name}")
        locks = self.max_pending_locks
        if not _is_int(locks) or not 0 <= locks <= MAX_PENDING_LOCKS_CEILING:
            raise LocalFault(f"limits.max_pending_locks must be an integer 0-{MAX_PENDING_LOCKS_CEILING}")


@dataclass(frozen=True, slots=True)
class RiskLedger:
    """Outgoing amounts of the last hour, per peer and in total, as per-minute buckets.

    `peer_sent` and `total_sent` are the window sums as of `minute` (the minute of `latest`), kept so
    that a check in the current minute costs two lookups: a check runs before every payment is signed.
    """

    per_peer: Mapping[str, Buckets] = field(default_factory=lambda: MappingProxyType({}))
    total: Buckets = ()
    # The latest `now` seen; an earlier `now` (a clock that stepped back) is treated as this one so
    # that nothing already counted can drop out of the window early.
    latest: float = -math.inf
    minute: int | None = None
    peer_sent: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    total_sent: int = 0
    # whom the latest payment was counted against: the node stores that peer's buckets (node/_ledger.py)
    last_peer: str = ""


def _minute(ledger: RiskLedger, now: float) -> int:
    if isinstance(now, bool) or not isinstance(now, int | float) or not math.isfinite(now):
        raise LocalFault(f"now must be a finite number of seconds, got {now!r}")
    return math.floor(max(now, ledger.latest) / BUCKET_SECONDS)


def live_buckets(buckets: Buckets, minute: int) -> Buckets:
    """`buckets` without those that left the window ending at `minute`."""
    oldest = minute - _WINDOW_BUCKETS + 1
    if not buckets or buckets[0][0] >= oldest:
        return buckets
    return tuple(bucket for bucket in buckets if bucket[0] >= oldest)


def _window_sum(buckets: Buckets, minute: int) -> int:
    return sum(amount for _, amount in live_buckets(buckets, minute))


def _add(buckets: Buckets, minute: int, amount: int) -> Buckets:
    """`buckets` (all live at `minute`) with `amount` added to the bucket of `minute`."""
    if buckets and buckets[-1][0] >= minute:
        # Same minute (or a later one, if the clock stepped back): grow the newest bucket.
        return (*buckets[:-1], (buckets[-1][0], buckets[-1][1] + amount))
    return (*buckets, (minute, amount))


def _check_peer(peer: str) -> None:
    if not isinstance(peer, str) or not peer:
        raise LocalFault(f"peer must be a non-empty string, got {peer!r}")


def _check_positive(amount: int) -> None:
    check_amount(amount, "payment amount")
    if amount == 0:
        raise LocalFault("payment amount must be positive")


def sent_last_hour(ledger: RiskLedger, peer: str, now: float) -> int:
    """Wei paid to `peer` inside the current window."""
    minute = _minute(ledger, now)
    if minute == ledger.minute:
        return ledger.peer_sent.get(peer, 0)
    return _window_sum(ledger.per_peer.get(peer, ()), minute)


def sent_last_hour_total(ledger: RiskLedger, now: float) -> int:
    """Wei paid to all peers inside the current window."""
    minute = _minute(ledger, now)
    if minute == ledger.minute:
        return ledger.total_sent
    return _window_sum(ledger.total, minute)


def check_payment(limits: RiskLimits, ledger: RiskLedger, peer: str, amount: int, now: float) -> None:
    """Raise `RiskLimitExceeded` if paying `amount` to `peer` at `now` would break a limit."""
    _check_peer(peer)
    _check_positive(amount)
    if amount > limits.max_payment:
        raise _exceeded("max_payment", limits.max_payment, amount,
                        f"payment of {format_amount(amount)} is larger than limits.max_payment")
    _check_budget("max_per_peer_per_hour", limits.max_per_peer_per_hour,
                  sent_last_hour(ledger, peer, now), amount, f"to peer {peer}")
    _check_budget("max_total_per_hour", limits.max_total_per_hour,
                  sent_last_hour_total(ledger, now), amount, "to all peers")


def _check_budget(limit: str, allowed: int, used: int, amount: int, whom: str) -> None:
    if used + amount > allowed:
        raise _exceeded(limit, allowed, amount,
                        f"payment of {format_amount(amount)} {whom} would bring the last hour's total to "
                        f"{format_amount(used + amount)} (already sent {format_amount(used)}), "
                        f"over limits.{limit}")


def _exceeded(limit: str, allowed: int, requested: int, detail: str) -> RiskLimitExceeded:
    allowed_text = str(allowed) if limit == "max_pending_locks" else format_amount(allowed)
    return RiskLimitExceeded(limit, allowed, requested, f"{detail} ({allowed_text})")


def record_payment(ledger: RiskLedger, peer: str, amount: int, now: float) -> RiskLedger:
    """The ledger after a payment was made; stale buckets and idle peers are dropped."""
    _check_peer(peer)
    _check_positive(amount)
    return _record(ledger, peer, amount, now)


def _record(ledger: RiskLedger, peer: str, amount: int, now: float) -> RiskLedger:
    minute = _minute(ledger, now)
    if minute != ledger.minute:
        ledger = _advanced(ledger, minute)
    per_peer = dict(ledger.per_peer)
    per_peer[peer] = _add(per_peer.get(peer, ()), minute, amount)
    peer_sent = dict(ledger.peer_sent)
    peer_sent[peer] = peer_sent.get(peer, 0) + amount
    return RiskLedger(per_peer=MappingProxyType(per_peer), total=_add(ledger.total, minute, amount),
                      latest=max(now, ledger.latest), minute=minute, peer_sent=MappingProxyType(peer_sent),
                      total_sent=ledger.total_sent + amount, last_peer=peer)


def _advanced(ledger: RiskLedger, minute: int) -> RiskLedger:
    """The ledger moved on to a new minute: expired buckets and peers idle for an hour are dropped and
    the window sums recounted (once per minute, not per payment)."""
    per_peer = {name: live for name, buckets in ledger.per_peer.items()
                if (live := live_buckets(buckets, minute))}
    total = live_buckets(ledger.total, minute)
    sent = {name: _window_sum(buckets, minute) for name, buckets in per_peer.items()}
    return RiskLedger(per_peer=MappingProxyType(per_peer), total=total, latest=ledger.latest, minute=minute,
                      peer_sent=MappingProxyType(sent), total_sent=_window_sum(total, minute))


@dataclass(frozen=True, slots=True)
class LimitContext:
    """What the protocol needs to check one outgoing payment before it signs anything: the limits, the
    ledger as it stands, whom the ledger counts the payment against, and the time (seconds)."""

    limits: RiskLimits
    ledger: RiskLedger
    peer: str
    now: float

    def check(self, amount: int) -> None:
        check_payment(self.limits, self.ledger, self.peer, amount, self.now)

    def recorded(self, amount: int) -> RiskLedger:
        """The ledger once this payment of `amount` (which passed `check`) is made."""
        return _record(self.ledger, self.peer, amount, self.now)


def check_channel_open(limits: RiskLimits, deposit: int) -> None:
    """Raise if a channel's total deposit from this node would exceed `limits.max_channel_deposit`."""
    check_amount(deposit, "deposit")
    if deposit > limits.max_channel_deposit:
        raise _exceeded("max_channel_deposit", limits.max_channel_deposit, deposit,
                        f"deposit of {format_amount(deposit)} is larger than limits.max_channel_deposit")


def check_onchain_reserve(limits: RiskLimits, balance: int) -> None:
    """Raise if `balance` (the on-chain balance left after a planned spend) is below the reserve."""
    check_amount(balance, "on-chain balance")
    if balance < limits.min_onchain_reserve:
        raise _exceeded("min_onchain_reserve", limits.min_onchain_reserve, balance,
                        f"on-chain balance would fall to {format_amount(balance)}, "
                        f"below limits.min_onchain_reserve")


def check_onchain_spend(limits: RiskLimits, balance: int, spend: int) -> None:
    """Raise if spending `spend` (value plus gas) from an on-chain `balance` would leave less than the
    reserve; disputes and settles are never checked against it (they protect what the reserve is for)."""
    check_amount(balance, "on-chain balance")
    check_amount(spend, "on-chain spend")
    left = balance - spend
    if left < limits.min_onchain_reserve:
        raise _exceeded("min_onchain_reserve", limits.min_onchain_reserve, spend,
                        f"spending up to {format_amount(spend)} of our on-chain balance "
                        f"{format_amount(balance)} would leave {format_amount(max(left, 0))}, "
                        f"below limits.min_onchain_reserve")


def check_pending_locks(limits: RiskLimits, count: int) -> None:
    """Raise if a channel would hold `count` pending locks (the new one included), over the limit."""
    if not _is_int(count) or not 0 <= count <= UINT256_MAX:
        raise LocalFault(f"pending lock count must be a non-negative integer, got {count!r}")
    if count > limits.max_pending_locks:
        raise _exceeded("max_pending_locks", limits.max_pending_locks, count,
                        f"{count} pending locks in one channel would exceed limits.max_pending_locks")
