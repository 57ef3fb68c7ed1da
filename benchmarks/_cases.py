"""The payment cases: the floor, direct payments into a daemon, the control API, many channels.

Each case starts what it needs (anvil is shared), runs `sizes.runs` measured runs after a warm-up, and
returns `Result`s. The daemon under test is pinned to the first core and the load generator to the second,
as two nodes on two machines would each have their own CPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._cluster import Chain, ClusterFailure, Daemon, cores, pin, wait_until
from benchmarks._report import Result, Target
from benchmarks._stats import Figure, percentile
from benchmarks.floor import commit_times, measure_floor
from channeld.keys import read_api_token

DEPOSIT = 10**19  # the default limits.max_channel_deposit (10 ETH)
PIPELINE_WINDOW = 64  # the protocol's MAX_IN_FLIGHT: the most unanswered payments a channel allows
API_CONCURRENCY = 16  # requests a shop server keeps outstanding (64 is measured too)
API_BATCH, API_BATCH_WINDOW = 100, 4  # a payout run: `POST /payments/batch` of 100, 4 batches outstanding
PPS = "payments/s"
CPU = "% of a core"


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much each case does; `make bench` runs FULL, the smoke test TINY."""

    runs: int = 3
    floor_payments: int = 20_000
    commits: int = 300
    warmup: int = 1_000
    pipelined: int = 10_000
    window8: int = 5_000
    one_at_a_time: int = 1_000
    api_pipelined: int = 2_000
    api_one_at_a_time: int = 200
    hop_payments: int = 500
    hop_one_at_a_time: int = 100
    many_wallets: int = 1_000
    many_payments: int = 10_000
    startup_channels: int = 10_000
    long_payments: int = 1_000_000
    long_wallets: int = 16
    long_window: int = 8


FULL = Sizes()
TINY = Sizes(runs=2, floor_payments=300, commits=20, warmup=20, pipelined=200, window8=100, one_at_a_time=20,
             api_pipelined=20, api_one_at_a_time=5, hop_payments=8, hop_one_at_a_time=4, many_wallets=3,
             many_payments=30, startup_channels=20, long_payments=200, long_wallets=2)


def core(index: int) -> int | None:
    available = cores()
    return available[index % len(available)] if len(available) > 1 else None


def run_driver(spec: dict[str, Any], on_core: int | None = 1, timeout: float = 3600.0) -> dict[str, Any]:
    """Run the load generator as its own process (on core `on_core`, or where the OS likes); return its
    JSON result."""
    process = subprocess.Popen([sys.executable, "-m", "benchmarks._driver", json.dumps(spec)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pin(process.pid, None if on_core is None else core(on_core))
    out, err = process.communicate(timeout=timeout)
    if process.returncode != 0:
        raise ClusterFailure(f"load generator failed:\n{err[-4000:]}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def wallet_spec(chain: Chain, daemon: Daemon, store: Path, wallets: int,
                phases: list[dict[str, Any]], profile: Path | None = None) -> dict[str, Any]:
    return {"mode": "wallets", "store": str(store), "rpc_url": chain.url, "contract": daemon.contract,
            "node_uri": daemon.uri, "wallets": wallets, "deposit": DEPOSIT, "phases": phases,
            "profile": None if profile is None else str(profile), "watch_pids": [daemon.pid]}


def phase(name: str, total: int, window: int, **extra: Any) -> dict[str, Any]:
    return {"name": name, "total": total, "window": window, **extra}


def by_name(result: dict[str, Any], prefix: str, field: str) -> Figure:
    return Figure.of([p[field] for p in result["phases"] if p["name"].startswith(prefix)])


def cpu_per_payment(result: dict[str, Any], prefix: str, key: str, label: str, daemon: int = 0) -> Result:
    """CPU time the daemon spent per payment in the named phases (less disturbed by busy neighbours
    than wall-clock rates: time other processes hold the core is not counted)."""
    phases = [p for p in result["phases"] if p["name"].startswith(prefix)]
    return Result(key, label, "µs CPU per payment",
                  Figure.of([p["daemon_cpu"][daemon] * p["seconds"] / p["payments"] * 1e6 for p in phases]))


def busy(result: dict[str, Any], prefix: str, key: str, label: str, daemon: int = 0) -> Result:
    """How busy the daemon (or the load generator) was during the named phases, in % of one core."""
    phases = [p for p in result["phases"] if p["name"].startswith(prefix)]
    shares = [p["driver_cpu"] if daemon < 0 else p["daemon_cpu"][daemon] for p in phases]
    return Result(key, label, CPU, Figure.of([100 * share for share in shares]))


# --- 5. the floor --------------------------------------------------------------------------------------


def floor_case(sizes: Sizes, root: Path) -> list[Result]:
    runs = [measure_floor(sizes.floor_payments) for _ in range(sizes.runs)]
    commits = [commit_times(root / f"commit-floor-{run}", sizes.commits) for run in range(sizes.runs)]
    return [
        Result("durable_commit_p50_ms", "one fsynced store commit (LevelDB, one record): p50", "ms",
               Figure.of([percentile(c, 50) * 1000 for c in commits])),
        Result("durable_commit_p99_ms", "one fsynced store commit: p99", "ms",
               Figure.of([percentile(c, 99) * 1000 for c in commits])),
        Result("floor_payer_pps", "floor, payer side: digest + sign", PPS,
               Figure.of([r.payer_pps for r in runs])),
        Result("floor_payee_pps", "floor, payee side: digest + verify against the partner's key", PPS,
               Figure.of([r.payee_pps for r in runs])),
        Result("floor_pps", "floor: the slower side, both sides in parallel", PPS,
               Figure.of([r.floor_pps for r in runs])),
        Result("floor_cpu_pps", "floor per CPU-second of the slower side (a core of its own)", PPS,
               Figure.of([r.floor_cpu_pps for r in runs])),
    ]


def floor_ratio(pipelined: Result, floor: Result, key: str = "floor_ratio",
                label: str = "pipelined durable / floor") -> Result:
    target = Target.at_least(0.5, "≥ 0.5")
    if pipelined.figure is None or floor.figure is None:
        return Result.unavailable(key, label, "ratio", "a figure it needs is missing", target)
    f, p = floor.figure, pipelined.figure
    ratio = Figure(p.median / f.median, p.low / f.high, p.high / f.low, p.runs)
    return Result(key, label, "ratio", ratio, target)


# --- 2. the control API between two daemons ------------------------------------------------------------


def api_case(chain: Chain, root: Path, sizes: Sizes) -> list[Result]:
    chain.deploy_hub()
    # the API's per-token rate limit guards a node in service; here it would measure the limit itself
    unlimited = ["--set", "node.api_rate=100000", "--set", "node.api_burst=1000000"]
    # the chain polled at the configured default, as in service (the cluster's 100 ms would add a fixed
    # cost per second that reads as CPU per payment at these rates)
    production = ["--set", "chain.poll_interval=2s"]
    payer = Daemon.create(root, "api-payer", chain, [*unlimited, *production])
    payee = Daemon.create(root, "api-payee", chain, production)
    payer.start(core(0))
    payee.start(core(1))
    try:
        payer.call("POST", "/channels", {"uri": payee.uri, "deposit": str(DEPOSIT), "challenge_period": 3600})
        wait_until(lambda: _open_both(payer, payee), 60, "the API case's channel on both daemons")
        phases = [phase("warmup", sizes.warmup // 10 + 1, 16)]
        for run in range(sizes.runs):
            phases += [phase(f"concurrent{run}", sizes.api_pipelined, API_CONCURRENCY),
                       phase(f"w64-{run}", sizes.api_pipelined // 2, PIPELINE_WINDOW),
                       phase(f"keyed{run}", sizes.api_pipelined // 2, API_CONCURRENCY, idempotency_keys=True),
                       phase(f"single{run}", sizes.api_one_at_a_time, 1),
                       _batch_phase(f"batch{run}", sizes.api_pipelined * 2)]
        spec = {"mode": "api", "api_url": f"http://127.0.0.1:{payer.api}",
                "token": read_api_token(payer.datadir), "payee": payee.node_id, "phases": phases,
                "watch_pids": [payer.pid, payee.pid]}
        result = run_driver(spec, on_core=None)  # three processes, two cores: the OS places the client
    finally:
        payer.stop()
        payee.stop()
    return [
        Result("api_pps", f"control API, {API_CONCURRENCY} requests outstanding", PPS,
               by_name(result, "concurrent", "pps")),
        busy(result, "concurrent", "api_payer_daemon_cpu", "control API: paying daemon busy"),
        busy(result, "concurrent", "api_payee_daemon_cpu", "control API: payee daemon busy", daemon=1),
        busy(result, "concurrent", "api_client_cpu", "control API: HTTP client busy", daemon=-1),
        cpu_per_payment(result, "concurrent", "api_payer_daemon_cpu_us", "control API: paying daemon CPU"),
        cpu_per_payment(result, "concurrent", "api_payee_daemon_cpu_us", "control API: payee daemon CPU",
                        daemon=1),
        Result("api_w64_pps", "control API, 64 requests outstanding", PPS, by_name(result, "w64", "pps")),
        Result("api_w64_latency_p50_ms", "control API, 64 outstanding: latency p50", "ms",
               by_name(result, "w64", "p50_ms")),
        Result("api_w64_latency_p99_ms", "control API, 64 outstanding: latency p99", "ms",
               by_name(result, "w64", "p99_ms")),
        cpu_per_payment(result, "w64", "api_w64_payer_daemon_cpu_us",
                        "control API, 64 outstanding: paying daemon CPU"),
        Result("api_keyed_pps", f"control API, {API_CONCURRENCY} outstanding, each with an Idempotency-Key",
               PPS, by_name(result, "keyed", "pps")),
        cpu_per_payment(result, "keyed", "api_keyed_payer_daemon_cpu_us",
                        "control API with idempotency keys: paying daemon CPU"),
        Result("api_batch_pps", f"control API, batches of {API_BATCH} ({API_BATCH_WINDOW} outstanding)", PPS,
               by_name(result, "batch", "pps")),
        cpu_per_payment(result, "batch", "api_batch_payer_daemon_cpu_us",
                        "control API, batches: paying daemon CPU"),
        cpu_per_payment(result, "batch", "api_batch_payee_daemon_cpu_us",
                        "control API, batches: payee daemon CPU", daemon=1),
        Result("api_batch_latency_p50_ms", f"control API, one batch of {API_BATCH}: latency p50", "ms",
               by_name(result, "batch", "p50_ms")),
        Result("api_single_pps", "control API, one at a time", PPS, by_name(result, "single", "pps")),
        Result("api_latency_p50_ms", "control API, one at a time: latency p50", "ms",
               by_name(result, "single", "p50_ms")),
        Result("api_latency_p99_ms", "control API, one at a time: latency p99", "ms",
               by_name(result, "single", "p99_ms")),
    ]


def _batch_phase(name: str, total: int) -> dict[str, Any]:
    size = max(1, min(API_BATCH, total // API_BATCH_WINDOW))  # the smoke test's sizes are smaller
    return phase(name, total - total % size, API_BATCH_WINDOW, batch=size)


def _open_both(payer: Daemon, payee: Daemon) -> bool:
    mine, theirs = payer.call("GET", "/channels"), payee.call("GET", "/channels")
    return (len(mine) == len(theirs) == 1 and mine[0]["our_deposit"] == theirs[0]["partner_deposit"]
            == str(DEPOSIT))


# --- 4. many channels -----------------------------------------------------------------------------------


def many_case(chain: Chain, root: Path, sizes: Sizes) -> list[Result]:
    """Its target (at least one channel's pipelined rate) is attached where the report is written."""
    # the hub forwards (the default): its announcements go only to peers whose Init asks for gossip, and
    # only when they change, so 1,000 wallets (no gossip bit) cost it no gossip traffic
    extra = ["--set", f"transport.max_connections={sizes.many_wallets + 100}"]
    chain.deploy_hub()
    daemon = Daemon.create(root, "many", chain, extra)
    daemon.start(core(0))
    try:
        phases = [phase("warmup", sizes.many_wallets, 1)]
        phases += [phase(f"spread{run}", sizes.many_payments, 1) for run in range(sizes.runs)]
        result = run_driver(wallet_spec(chain, daemon, root / "many-wallets", sizes.many_wallets, phases))
    finally:
        daemon.stop()
    label = f"{sizes.many_wallets:,} channels to {sizes.many_wallets:,} wallets, one payment each at a time"
    return [
        Result("many_channels_pps", label, PPS, by_name(result, "spread", "pps")),
        Result("many_channels_latency_p50_ms", "many channels: latency p50", "ms",
               by_name(result, "spread", "p50_ms")),
        busy(result, "spread", "many_channels_daemon_cpu", "many channels: daemon busy"),
        cpu_per_payment(result, "spread", "many_channels_daemon_cpu_us", "many channels: daemon CPU"),
        busy(result, "spread", "many_channels_wallets_cpu", "many channels: the wallets' process busy",
             daemon=-1),
        Result("many_channels_latency_p99_ms", "many channels: latency p99", "ms",
               by_name(result, "spread", "p99_ms")),
        Result("many_channels_setup_s", f"opening {sizes.many_wallets:,} channels on anvil and connecting",
               "s", Figure.of([result["setup_seconds"]])),
    ]
