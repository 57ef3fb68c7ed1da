"""The load path for benchmarks: the node pays N payments over one channel with a bounded window.

Driving every payment through the control API costs far more than the payment itself (an HTTP request,
JSON, a task), so `POST /api/v1/bench/pay` (admin token) hands the loop to the node: it applies
`ActionPay` directly, keeps at most `window` payments unacknowledged by the partner (the protocol's
in-flight count), and times each from the moment it is signed to the moment the partner's durable
acceptance is itself durable here (`EventPaymentSent` carried out). It runs the same code path as any
payment: risk limits aside, nothing is skipped or weakened.

`POST /api/v1/bench/pay-requests` (`bench_pay_requests`) is the same for routed payments: the node pays
a list of the payee's payment requests, `window` at a time, each exactly as `POST /payments` with a
request does (`PaymentRequestBook.pay`: journaled, locked at every hop, the secret back as the
receipt), timed from the call to the receipt, without an HTTP request and JSON per payment.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from channeld.errors import LocalFault
from channeld.node._channels import ChannelService
from channeld.protocol import (
    MAX_IN_FLIGHT,
    ActionPay,
    ChannelStatus,
    Effect,
    EventPaymentRefused,
    EventPaymentSent,
    TooManyInFlight,
)

if TYPE_CHECKING:
    from channeld.node._node import Node

MAX_BENCH_PAYMENTS = 1_000_000
MAX_BENCH_REQUESTS = 10_000
BENCH_TIMEOUT = 300.0
BURST = 16  # payments signed before other tasks get a turn (so both nodes work at once)


class BenchRefused(LocalFault):
    """A benchmark request the channel or its parameters do not allow (nothing was paid)."""


@dataclass(frozen=True, slots=True)
class BenchResult:
    """One benchmark run: durable payments per second and latency percentiles in milliseconds."""

    payments: int
    window: int
    seconds: float
    pps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    store_rounds: int

    def as_json(self) -> dict[str, float | int]:
        return {"payments": self.payments, "window": self.window, "seconds": self.seconds, "pps": self.pps,
                "p50_ms": self.p50_ms, "p99_ms": self.p99_ms, "max_ms": self.max_ms,
                "store_rounds": self.store_rounds}


def _percentile_ms(ordered: list[float], q: float) -> float:
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] * 1000


def _check(channels: ChannelService, cid: bytes, count: int, amount: int, window: int) -> None:
    if not 0 < count <= MAX_BENCH_PAYMENTS:
        raise BenchRefused(f"count must be in [1, {MAX_BENCH_PAYMENTS}]")
    if not 0 < window <= MAX_IN_FLIGHT:
        raise BenchRefused(f"window must be in [1, {MAX_IN_FLIGHT}]")
    if amount <= 0:
        raise BenchRefused("amount must be positive")
    state = channels.entry(cid).state
    if state.status is not ChannelStatus.OPEN or state.settle is not None:
        raise BenchRefused(f"channel 0x{cid.hex()} is not open for payments")
    if state.in_flight or state.locks_in_flight:
        raise BenchRefused("the channel has payments in flight; a benchmark starts from a quiet channel")
    if count * amount > state.our_balance():
        raise BenchRefused(f"{count} payments of {amount} exceed our balance {state.our_balance()}")


class _Run:
    """The bookkeeping of one benchmark: start times of unanswered payments and latencies of answered ones."""

    def __init__(self, count: int) -> None:
        self.started: dict[int, float] = {}
        self.latencies: list[float] = []
        self.refused: EventPaymentRefused | None = None
        self.count = count
        self.wake = trio.Event()

    def on_applied(self, cid: bytes, effects: list[Effect]) -> None:
        # runs for every input the node applies, so it is kept to a plain loop (no generator per call)
        for effect in effects:
            if type(effect) is EventPaymentSent:
                self.wake.set()  # acknowledged: room in the window before the acknowledgement is durable
                return

    def on_outcome(self, outcome: EventPaymentSent | EventPaymentRefused) -> None:
        began = self.started.pop(outcome.payment_id, None)
        if began is None:
            return  # not ours (an API payment running at the same time)
        if isinstance(outcome, EventPaymentRefused):
            self.refused = outcome
        else:
            self.latencies.append(time.perf_counter() - began)
        self.wake.set()


async def bench_pay(channels: ChannelService, cid: bytes, count: int, amount: int,
                    window: int) -> BenchResult:
    """Pay `count` payments of `amount` over channel `cid`, at most `window` unanswered at a time."""
    _check(channels, cid, count, amount, window)
    run = _Run(count)
    base = secrets.randbits(62)
    rounds_before = channels.flush_rounds
    channels.payment_listeners.append(run.on_outcome)
    channels.applied_listeners.append(run.on_applied)
    began = time.perf_counter()
    try:
        with trio.fail_after(BENCH_TIMEOUT):
            await _drive(channels, cid, run, base, amount, window)
    except trio.TooSlowError:
        raise BenchRefused(f"only {len(run.latencies)} of {count} payments were accepted in "
                           f"{BENCH_TIMEOUT:.0f}s") from None
    finally:
        channels.payment_listeners.remove(run.on_outcome)
        channels.applied_listeners.remove(run.on_applied)
    seconds = time.perf_counter() - began
    ordered = sorted(run.latencies)
    return BenchResult(count, window, seconds, count / seconds, _percentile_ms(ordered, 50),
                       _percentile_ms(ordered, 99), ordered[-1] * 1000, channels.flush_rounds - rounds_before)


async def _drive(channels: ChannelService, cid: bytes, run: _Run, base: int, amount: int,
                 window: int) -> None:
    entry = channels.entry(cid)
    sent = 0
    while len(run.latencies) < run.count:
        # the window counts payments the partner has not acknowledged yet (the protocol's in-flight)
        burst = 0
        while sent < run.count and len(entry.state.in_flight) < window:
            if burst == BURST:
                # let the flusher take what is signed so far: the partner checks these while we sign more
                await trio.lowlevel.checkpoint()
                burst = 0
            burst += 1
            payment_id = base + sent
            run.started[payment_id] = time.perf_counter()
            try:
                channels.apply(cid, ActionPay(payment_id, amount))
            except TooManyInFlight:
                del run.started[payment_id]  # other payments fill the channel: wait for answers
                break
            sent += 1
        await run.wake.wait()
        run.wake = trio.Event()
        if run.refused is not None:
            raise BenchRefused(f"the partner refused payment {run.refused.payment_id}: {run.refused.reason}")


# --- routed payments: a list of payment requests ---------------------------------------------------------


def _check_requests(node: Node, requests: list[str], window: int) -> None:
    if not 0 < len(requests) <= MAX_BENCH_REQUESTS:
        raise BenchRefused(f"give 1 to {MAX_BENCH_REQUESTS} payment requests")
    if not 0 < window <= MAX_IN_FLIGHT:
        raise BenchRefused(f"window must be in [1, {MAX_IN_FLIGHT}]")
    hashes = {node.requests.check_payable(text).payment_hash for text in requests}  # refuses before paying
    if len(hashes) != len(requests):
        raise BenchRefused("a payment request is listed twice")


async def bench_pay_requests(node: Node, requests: list[str], window: int,
                             max_fee: int | None) -> BenchResult:
    """Pay every request in `requests`, `window` at a time; stop at the first one not accepted."""
    _check_requests(node, requests, window)
    pending = list(reversed(requests))
    latencies: list[float] = []
    failures: list[dict[str, Any]] = []
    rounds_before = node.channels.flush_rounds

    async def payer() -> None:
        while pending and not failures:
            text = pending.pop()
            started = time.perf_counter()
            result = await node.requests.pay(text, max_fee)
            if result["status"] != "accepted":
                failures.append(result)
                return
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    with trio.move_on_after(BENCH_TIMEOUT):
        async with trio.open_nursery() as nursery:
            for _ in range(window):
                nursery.start_soon(payer)
    seconds = time.perf_counter() - began
    if failures or len(latencies) < len(requests):
        why = f": {failures[0].get('status')} {failures[0].get('reason')}" if failures else ""
        raise BenchRefused(f"only {len(latencies)} of {len(requests)} routed payments were accepted{why}")
    ordered, rounds = sorted(latencies), node.channels.flush_rounds - rounds_before
    return BenchResult(len(requests), window, seconds, len(requests) / seconds, _percentile_ms(ordered, 50),
                       _percentile_ms(ordered, 99), ordered[-1] * 1000, rounds)
