"""Direct payments between two real daemons: `python -m benchmarks.direct [--quick] [--runs N] [--json F]`.

Starts anvil with a fresh ChannelHub, two `channeld node` processes on loopback (the payer pinned to the
first core, the payee to the second), opens one channel, and asks the payer, through its admin-only load
path `POST /api/v1/bench/pay`, to pay over it: pipelined (a window of 64 unanswered payments, the
protocol's limit), with a window of 8, and one at a time. Every figure is durable end to end: the payer
persists each proof before sending it, the payee persists it before acknowledging, and a payment counts
once the payer has persisted the acknowledgement. The floor (the slower of payer digest + sign and payee
digest + check, one core each) is measured in the same run, so `floor_ratio` compares like with like.

`--profile DIR` records both daemons with py-spy during the first pipelined phase (collapsed stacks).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._cluster import Chain, Daemon, cores, wait_until
from benchmarks.floor import PAYER_SECRET, _digest, measure_floor
from channeld.protocol import KnownKey, Signer

DEPOSIT = 10**18
PIPELINED_WINDOW = 64
# The cluster's daemons poll the chain every 100 ms (quick channel opens); payments are measured with the
# configured default instead, so that chain polling costs what it costs in production.
PRODUCTION_POLLING = ["--set", "chain.poll_interval=2s"]
PY_SPY = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "py-spy"


@dataclass(frozen=True, slots=True)
class Sizes:
    runs: int = 3
    warmup: int = 2_000
    pipelined: int = 20_000
    window8: int = 5_000
    single: int = 1_000
    floor: int = 20_000


QUICK = Sizes(runs=1, warmup=200, pipelined=2_000, window8=500, single=100, floor=2_000)


def _core(index: int) -> int | None:
    available = cores()
    return available[index % len(available)] if len(available) > 1 else None


def _open_channel(payer: Daemon, payee: Daemon) -> str:
    payer.call("POST", "/channels", {"uri": payee.uri, "deposit": str(DEPOSIT), "challenge_period": 3600})

    def both_open() -> str | None:
        mine, theirs = payer.call("GET", "/channels"), payee.call("GET", "/channels")
        if len(mine) == len(theirs) == 1 and mine[0]["status"] == "open" == theirs[0]["status"] \
                and mine[0]["our_deposit"] == str(DEPOSIT):
            return str(mine[0]["channel_id"])
        return None

    found: str = wait_until(both_open, 60, "the channel open on both daemons")
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc; Linux only)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _bench(payer: Daemon, payee: Daemon, channel: str, count: int, window: int) -> dict[str, Any]:
    """One run; adds each daemon's CPU time per payment (µs), a figure that busy neighbours disturb less."""
    assert payer.process is not None and payee.process is not None
    pids = (payer.process.pid, payee.process.pid)
    before = [cpu_seconds(pid) for pid in pids]
    result: dict[str, Any] = payer.call("POST", "/bench/pay",
                                        {"channel": channel, "count": count, "window": window})
    after = [cpu_seconds(pid) for pid in pids]
    result["payer_cpu_us"] = (after[0] - before[0]) / count * 1e6
    result["payee_cpu_us"] = (after[1] - before[1]) / count * 1e6
    return result


class _Recorder:
    """py-spy recording one daemon while a phase runs (a sampling profiler: the daemon runs unchanged)."""

    def __init__(self, pid: int, out: Path) -> None:
        self.process = subprocess.Popen([str(PY_SPY), "record", "--pid", str(pid), "--format", "raw",
                                         "--rate", "250", "--output", str(out)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # attached before the load starts

    def stop(self) -> None:
        self.process.send_signal(2)  # SIGINT makes py-spy write its file
        self.process.wait(timeout=30)


def _phases(payer: Daemon, payee: Daemon, channel: str, sizes: Sizes,
            profile: Path | None) -> dict[str, list[dict[str, Any]]]:
    _bench(payer, payee, channel, sizes.warmup, PIPELINED_WINDOW)
    found: dict[str, list[dict[str, Any]]] = {"pipelined": [], "window8": [], "single": []}
    for run in range(sizes.runs):
        recorders = []
        if profile is not None and run == 0 and PY_SPY.exists():
            profile.mkdir(parents=True, exist_ok=True)
            assert payer.process is not None and payee.process is not None
            recorders = [_Recorder(payer.process.pid, profile / "payer.txt"),
                         _Recorder(payee.process.pid, profile / "payee.txt")]
        found["pipelined"].append(_bench(payer, payee, channel, sizes.pipelined, PIPELINED_WINDOW))
        for recorder in recorders:
            recorder.stop()
        found["window8"].append(_bench(payer, payee, channel, sizes.window8, 8))
        found["single"].append(_bench(payer, payee, channel, sizes.single, 1))
    return found


def floor_cpu_us(count: int) -> tuple[float, float]:
    """CPU time (µs) one payer signature and one payee check cost here: the floor in CPU terms, which
    neighbours on a shared machine disturb far less than wall-clock rates."""
    signer = Signer(PAYER_SECRET)
    signed = [(nonce, signer.sign(_digest(nonce))) for nonce in range(1, count + 1)]
    started = time.process_time()
    for nonce in range(1, count + 1):
        signer.sign(_digest(nonce))
    sign = (time.process_time() - started) / count
    partner = KnownKey(signer.public_key)
    started = time.process_time()
    for nonce, signature in signed:
        partner.check_rs(_digest(nonce), signature)
    return sign * 1e6, (time.process_time() - started) / count * 1e6


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def summarise(phases: dict[str, list[dict[str, Any]]], floor_pps: float,
              floor_cpu: tuple[float, float]) -> dict[str, Any]:
    pipelined = _median(phases["pipelined"], "pps")
    node_cpu = max(_median(phases["pipelined"], "payer_cpu_us"), _median(phases["pipelined"], "payee_cpu_us"))
    return {
        # what the busier daemon's CPU time per payment allows on a core of its own, and its ratio to the
        # floor's CPU time (the wall-clock figures below depend on what else the machine is running)
        "cpu_capacity_pps": 1e6 / node_cpu,
        "cpu_floor_ratio": max(floor_cpu) / node_cpu,
        "floor_sign_cpu_us": floor_cpu[0],
        "floor_check_cpu_us": floor_cpu[1],
        "direct_pipelined_pps": pipelined,
        "direct_pipelined_p50_ms": _median(phases["pipelined"], "p50_ms"),
        "pipelined_payer_cpu_us": _median(phases["pipelined"], "payer_cpu_us"),
        "pipelined_payee_cpu_us": _median(phases["pipelined"], "payee_cpu_us"),
        "direct_w8_pps": _median(phases["window8"], "pps"),
        "direct_w8_latency_p99_ms": _median(phases["window8"], "p99_ms"),
        "direct_single_pps": _median(phases["single"], "pps"),
        "direct_latency_p50_ms": _median(phases["single"], "p50_ms"),
        "direct_latency_p99_ms": _median(phases["single"], "p99_ms"),
        "floor_pps": floor_pps,
        "floor_ratio": pipelined / floor_pps,
        "runs": phases,
    }


def run_direct(sizes: Sizes, root: Path, profile: Path | None = None) -> dict[str, Any]:
    floor = measure_floor(sizes.floor)
    floor_cpu = floor_cpu_us(min(sizes.floor, 2_000))
    chain = Chain()
    try:
        payer, payee = (Daemon.create(root, name, chain, PRODUCTION_POLLING) for name in ("payer", "payee"))
        payer.start(_core(0))
        payee.start(_core(1))
        try:
            channel = _open_channel(payer, payee)
            phases = _phases(payer, payee, channel, sizes, profile)
        finally:
            payer.stop()
            payee.stop()
    finally:
        chain.stop()
    return summarise(phases, floor.floor_pps, floor_cpu)


TARGETS = (("direct_pipelined_pps", ">=", 15_000), ("floor_ratio", ">=", 0.5), ("direct_w8_pps", ">=", 5_000),
           ("direct_w8_latency_p99_ms", "<", 3), ("direct_latency_p50_ms", "<", 1),
           ("direct_latency_p99_ms", "<", 5))


def table(summary: dict[str, Any]) -> list[str]:
    lines = [f"{'figure':28} {'median':>12}  target"]
    for key, op, bound in TARGETS:
        value = summary[key]
        met = value >= bound if op == ">=" else value < bound
        lines.append(f"{key:28} {value:12,.2f}  {op} {bound:,} {'met' if met else 'MISSED'}")
    for key in ("direct_single_pps", "pipelined_payer_cpu_us", "pipelined_payee_cpu_us", "floor_sign_cpu_us",
                "floor_check_cpu_us", "cpu_capacity_pps", "cpu_floor_ratio"):
        lines.append(f"{key:28} {summary[key]:12,.1f}")
    lines.append(f"{'floor_pps':28} {summary['floor_pps']:12,.0f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run (a smoke test)")
    parser.add_argument("--runs", type=int, help="measured runs of each phase (default 3)")
    parser.add_argument("--pipelined", type=int, help="payments per pipelined run")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--profile", type=Path, help="py-spy recordings of both daemons go here")
    parser.add_argument("--data-root", type=Path, help="where the daemons' data directories go (default: "
                        "the system's temporary directory; /dev/shm takes the disk's fsync time out, to "
                        "see what the software costs when the disk is shared and slow)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else Sizes()
    if args.runs:
        sizes = Sizes(args.runs, sizes.warmup, sizes.pipelined, sizes.window8, sizes.single, sizes.floor)
    if args.pipelined:
        sizes = Sizes(sizes.runs, sizes.warmup, args.pipelined, sizes.window8, sizes.single, sizes.floor)
    root = Path(tempfile.mkdtemp(prefix="channeld-direct-", dir=args.data_root))
    try:
        summary = run_direct(sizes, root, args.profile)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("\n".join(table(summary)))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
