"""Risk limits: each limit refuses what it should, names itself, and no window can be overrun."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channeld.amounts import AmountError
from channeld.errors import LocalFault
from channeld.limits import (
    BUCKET_SECONDS,
    WINDOW_SECONDS,
    LimitContext,
    RiskLedger,
    RiskLimitExceeded,
    RiskLimits,
    check_channel_open,
    check_onchain_reserve,
    check_onchain_spend,
    check_payment,
    check_pending_locks,
    record_payment,
    sent_last_hour,
    sent_last_hour_total,
)

LIMITS = RiskLimits(max_payment=100, max_per_peer_per_hour=250, max_total_per_hour=400,
                    max_channel_deposit=1000, min_onchain_reserve=50, max_pending_locks=3)
T0 = 1_000_000.0


def pay(ledger: RiskLedger, peer: str, amount: int, now: float) -> RiskLedger:
    """Check then record, as the protocol layer does."""
    check_payment(LIMITS, ledger, peer, amount, now)
    return record_payment(ledger, peer, amount, now)


def test_pure_module_imports_no_io_libraries() -> None:
    import subprocess
    code = ("import sys, channeld.limits; bad = {'trio', 'plyvel', 'web3', 'socket'} & set(sys.modules); "
            "print(sorted(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_single_payment_over_max_payment_is_refused_with_the_limit_named() -> None:
    with pytest.raises(RiskLimitExceeded, match=r"limits\.max_payment") as info:
        check_payment(LIMITS, RiskLedger(), "alice", 101, T0)
    assert (info.value.limit, info.value.allowed, info.value.requested) == ("max_payment", 100, 101)
    check_payment(LIMITS, RiskLedger(), "alice", 100, T0)


def test_per_peer_hourly_budget() -> None:
    ledger = pay(RiskLedger(), "alice", 100, T0)
    ledger = pay(ledger, "alice", 100, T0 + 10)
    with pytest.raises(RiskLimitExceeded, match=r"limits\.max_per_peer_per_hour") as info:
        check_payment(LIMITS, ledger, "alice", 51, T0 + 20)
    assert "alice" in str(info.value)
    assert "200 wei" in str(info.value)  # what was already sent, so the operator sees the figures
    check_payment(LIMITS, ledger, "alice", 50, T0 + 20)
    check_payment(LIMITS, ledger, "bob", 100, T0 + 20)


def test_total_hourly_budget_spans_peers() -> None:
    ledger = RiskLedger()
    for index, peer in enumerate(("a", "b", "c", "d")):
        ledger = pay(ledger, peer, 100, T0 + index)
    with pytest.raises(RiskLimitExceeded, match=r"limits\.max_total_per_hour"):
        check_payment(LIMITS, ledger, "e", 1, T0 + 5)
    assert sent_last_hour_total(ledger, T0 + 5) == 400


def test_budget_frees_after_the_window_and_not_before() -> None:
    ledger = pay(pay(RiskLedger(), "alice", 100, T0), "alice", 100, T0)
    ledger = pay(ledger, "alice", 50, T0)
    with pytest.raises(RiskLimitExceeded):
        check_payment(LIMITS, ledger, "alice", 1, T0 + WINDOW_SECONDS - 1)
    # Freed at the latest one bucket after the hour (the window is one bucket wider, never narrower).
    later = T0 + WINDOW_SECONDS + BUCKET_SECONDS
    check_payment(LIMITS, ledger, "alice", 100, later)
    assert sent_last_hour(ledger, "alice", later) == 0


def test_a_clock_stepping_back_drops_nothing() -> None:
    ledger = pay(pay(RiskLedger(), "alice", 100, T0 + 7200), "alice", 100, T0 + 7200)
    with pytest.raises(RiskLimitExceeded):
        check_payment(LIMITS, ledger, "alice", 100, T0)
    assert sent_last_hour(ledger, "alice", T0) == 200


def test_idle_peers_are_forgotten_so_memory_stays_bounded() -> None:
    ledger = RiskLedger()
    for index in range(300):
        ledger = record_payment(ledger, f"peer{index}", 1, T0 + index * BUCKET_SECONDS)
    # Only peers paid in the last 61 minutes remain; each keeps at most one bucket per minute.
    assert len(ledger.per_peer) <= WINDOW_SECONDS // BUCKET_SECONDS + 1
    assert len(ledger.total) <= WINDOW_SECONDS // BUCKET_SECONDS + 1


def test_many_payments_in_one_minute_share_one_bucket() -> None:
    ledger = RiskLedger()
    for second in range(50):
        ledger = record_payment(ledger, "alice", 1, T0 - T0 % 60 + second)
    assert ledger.per_peer["alice"] == ((int(T0 // 60), 50),)


def test_ledger_is_immutable() -> None:
    ledger = record_payment(RiskLedger(), "alice", 1, T0)
    with pytest.raises(TypeError):
        ledger.per_peer["bob"] = ()  # type: ignore[index]
    after = record_payment(ledger, "alice", 5, T0)
    assert sent_last_hour(ledger, "alice", T0) == 1
    assert sent_last_hour(after, "alice", T0) == 6


@pytest.mark.parametrize(("peer", "amount", "now", "error"), [
    ("", 1, T0, LocalFault),
    (None, 1, T0, LocalFault),
    ("alice", 0, T0, LocalFault),
    ("alice", -1, T0, AmountError),
    ("alice", 1.5, T0, AmountError),
    ("alice", True, T0, AmountError),
    ("alice", 1, float("nan"), LocalFault),
    ("alice", 1, float("inf"), LocalFault),
])
def test_bad_inputs_are_refused(peer: object, amount: object, now: float, error: type[Exception]) -> None:
    with pytest.raises(error):
        check_payment(LIMITS, RiskLedger(), peer, amount, now)  # type: ignore[arg-type]
    with pytest.raises(error):
        record_payment(RiskLedger(), peer, amount, now)  # type: ignore[arg-type]


def test_channel_open_limit() -> None:
    check_channel_open(LIMITS, 1000)
    with pytest.raises(RiskLimitExceeded, match=r"limits\.max_channel_deposit") as info:
        check_channel_open(LIMITS, 1001)
    assert info.value.allowed == 1000


def test_onchain_reserve() -> None:
    check_onchain_reserve(LIMITS, 50)
    with pytest.raises(RiskLimitExceeded, match=r"limits\.min_onchain_reserve"):
        check_onchain_reserve(LIMITS, 49)


def test_onchain_spend_keeps_the_reserve() -> None:
    check_onchain_spend(LIMITS, 1000, 950)
    with pytest.raises(RiskLimitExceeded, match=r"leave 49 wei, below limits\.min_onchain_reserve") as info:
        check_onchain_spend(LIMITS, 1000, 951)
    assert info.value.limit == "min_onchain_reserve" and info.value.requested == 951
    with pytest.raises(RiskLimitExceeded, match=r"would leave 0 ETH"):
        check_onchain_spend(LIMITS, 10, 1000)  # more than the whole balance
    with pytest.raises(AmountError):
        check_onchain_spend(LIMITS, -1, 0)


def test_limit_context_checks_then_records() -> None:
    context = LimitContext(LIMITS, pay(RiskLedger(), "alice", 100, T0), "alice", T0 + 1)
    context.check(100)
    ledger = context.recorded(100)
    assert sent_last_hour(ledger, "alice", T0 + 1) == 200
    assert sent_last_hour(context.ledger, "alice", T0) == 100
    with pytest.raises(RiskLimitExceeded, match=r"limits\.max_per_peer_per_hour"):
        LimitContext(LIMITS, ledger, "alice", T0 + 2).check(51)


def test_sums_are_recounted_when_the_minute_moves_on() -> None:
    """The cached window sums serve checks within the ledger's minute; a later minute recounts."""
    ledger = pay(RiskLedger(), "alice", 100, T0)
    ledger = pay(ledger, "alice", 100, T0 + 1800)
    assert sent_last_hour(ledger, "alice", T0 + 1800) == 200
    assert sent_last_hour(ledger, "alice", T0 + WINDOW_SECONDS + 2 * BUCKET_SECONDS) == 100
    assert sent_last_hour_total(ledger, T0 + WINDOW_SECONDS + 1800 + 2 * BUCKET_SECONDS) == 0


def test_pending_locks() -> None:
    check_pending_locks(LIMITS, 3)
    with pytest.raises(RiskLimitExceeded, match=r"limits.max_pending_locks \(3\)"):
        check_pending_locks(LIMITS, 4)
    with pytest.raises(LocalFault):
        check_pending_locks(LIMITS, -1)


@pytest.mark.parametrize("bad", [
    {"max_payment": -1}, {"max_total_per_hour": 2**256}, {"max_channel_deposit": 1.0},
    {"max_pending_locks": -1}, {"max_pending_locks": True}, {"max_pending_locks": 10**6},
])
def test_risk_limits_validate_when_built(bad: dict[str, object]) -> None:
    with pytest.raises(LocalFault):
        RiskLimits(**bad)  # type: ignore[arg-type]


def test_risk_limit_exceeded_is_a_local_fault() -> None:
    assert issubclass(RiskLimitExceeded, LocalFault)


payments = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(min_value=1, max_value=120),
              st.floats(min_value=0, max_value=900, allow_nan=False)),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(payments)
def test_no_sliding_hour_ever_exceeds_a_limit(steps: list[tuple[str, int, float]]) -> None:
    """Whatever is attempted, the accepted payments in any real 3600 s span stay within the limits."""
    ledger, now, accepted = RiskLedger(), T0, []
    for peer, amount, gap in steps:
        now += gap
        try:
            check_payment(LIMITS, ledger, peer, amount, now)
        except RiskLimitExceeded:
            continue
        ledger = record_payment(ledger, peer, amount, now)
        accepted.append((now, peer, amount))
    for start, _, _ in accepted:
        window = [(peer, amount) for at, peer, amount in accepted if start <= at < start + WINDOW_SECONDS]
        assert sum(amount for _, amount in window) <= LIMITS.max_total_per_hour
        for name in ("a", "b", "c"):
            assert sum(amount for peer, amount in window if peer == name) <= LIMITS.max_per_peer_per_hour
        assert all(amount <= LIMITS.max_payment for _, amount in window)


@settings(max_examples=100, deadline=None)
@given(payments)
def test_ledger_sums_match_a_recount(steps: list[tuple[str, int, float]]) -> None:
    """The bucketed sums never under-count: at least every payment of the last 3600 s is included."""
    ledger, now, made = RiskLedger(), T0, []
    for peer, amount, gap in steps:
        now += gap
        ledger = record_payment(ledger, peer, amount, now)
        made.append((now, peer, amount))
        recent = [(p, a) for at, p, a in made if at > now - WINDOW_SECONDS]
        assert sent_last_hour_total(ledger, now) >= sum(a for _, a in recent)
        assert sent_last_hour(ledger, peer, now) >= sum(a for p, a in recent if p == peer)
        # ...and nothing older than one extra bucket.
        older = [(p, a) for at, p, a in made if at > now - WINDOW_SECONDS - 2 * BUCKET_SECONDS]
        assert sent_last_hour_total(ledger, now) <= sum(a for _, a in older)
