"""A/B of the routed path: one line of daemons per code tree, measured alternately in one run.

`python -m benchmarks.hops_ab --base DIR [--tree DIR] [--hops 3] [--data-root /dev/shm] [--profile DIR]`
starts a line of `hops + 1` daemons running this checkout (or the snapshot in `--tree`, so that a checkout
others edit meanwhile does not change under the run) and another running the tree in `--base` (for
instance `git archive HEAD | tar -x -C DIR`: the committed code), then runs the same phases on each line
in turn, `--reps` times, so both meet the same load. Each phase reports payments per second, latency and
every daemon's CPU per payment (payer first). `--profile DIR` records each daemon of each line with
py-spy (GIL-holding samples, raw folded stacks) during the node path's windowed phases; `--trace-fsync
DIR` records each daemon's fsyncs and socket sends with strace during the node path's one-at-a-time
phase: which commit each message waited for, so the commits a payment waits for in series can be counted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._cases import phase, run_driver
from benchmarks._cluster import Chain, Daemon
from benchmarks._hops import AMOUNT, CONCURRENCY, MAX_FEE, SETTINGS, _open_line, _side, _wait_for_route

PY_SPY = Path(sys.executable).parent / "py-spy"


@dataclass
class TreeDaemon(Daemon):
    """A daemon importing `channeld` from `tree` (None: the working tree, as every other case)."""

    tree: Path | None = None

    def argv(self) -> list[str]:
        plain = super().argv()
        if self.tree is None:
            return plain
        # PYTHONSAFEPATH keeps the working directory (this checkout) off sys.path: `tree` wins
        return ["env", "PYTHONSAFEPATH=1", f"PYTHONPATH={self.tree}", *plain]


@dataclass
class Line:
    name: str
    daemons: list[TreeDaemon]
    phases: list[dict[str, Any]] = field(default_factory=list)


def start_line(chain: Chain, root: Path, name: str, hops: int, tree: Path | None) -> Line:
    chain.deploy_hub()
    daemons = []
    for index in range(hops + 1):
        base = Daemon.create(root, f"{name}-{index}", chain, SETTINGS)
        daemons.append(TreeDaemon(base.datadir, base.address, base.node_id, chain, base.contract,
                                  base.extra, tree=tree))
    for daemon in daemons:
        daemon.start()
    _open_line(daemons)
    _wait_for_route(daemons[0], daemons[-1])
    return Line(name, daemons)


class Recorders:
    """py-spy or strace attached to each daemon of a line for one phase."""

    def __init__(self, line: Line, out: Path | None, label: str, kind: str) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        if out is None:
            return
        out.mkdir(parents=True, exist_ok=True)
        for index, daemon in enumerate(line.daemons):
            target = out / f"{line.name}-{label}-{index}"
            if kind == "py-spy":
                argv = [str(PY_SPY), "record", "-r", "250", "-f", "raw", "-t", "--gil", "-p", str(daemon.pid),
                        "-o", f"{target}.folded"]
            else:
                argv = ["strace", "-f", "-ttt", "-e", "trace=fsync,fdatasync,sendto", "-p", str(daemon.pid),
                        "-o", f"{target}.strace"]
            self.processes.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                                   stderr=subprocess.DEVNULL))

    def __enter__(self) -> Recorders:
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGINT)
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run_phase(line: Line, spec_phase: dict[str, Any], recorders: Recorders) -> dict[str, Any]:
    spec = {"mode": "routed", "payer": _side(line.daemons[0]), "payee": _side(line.daemons[-1]),
            "amount": AMOUNT, "max_fee": MAX_FEE, "phases": [spec_phase],
            "watch_pids": [daemon.pid for daemon in line.daemons]}
    with recorders:
        found: dict[str, Any] = run_driver(spec, on_core=None)["phases"][0]
    line.phases.append(found)
    return found


def summary(line: Line) -> list[str]:
    rows = []
    for name in sorted({p["name"] for p in line.phases}):
        runs = [p for p in line.phases if p["name"] == name]
        cpu = [statistics.median(p["daemon_cpu_us"][i] for p in runs)
               for i in range(len(runs[0]["daemon_cpu_us"]))]
        rows.append(f"{line.name:6} {name:16} pps {statistics.median(p['pps'] for p in runs):8.1f}  "
                    f"p50 {statistics.median(p['p50_ms'] for p in runs):7.2f} ms  "
                    f"p99 {statistics.median(p['p99_ms'] for p in runs):7.2f} ms  "
                    f"cpu µs/payment {' / '.join(f'{c:,.0f}' for c in cpu)}  (n={len(runs)})")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, help="the other tree (B); without it only this tree runs")
    parser.add_argument("--tree", type=Path, help="the tree measured against it (A; default: this checkout)")
    parser.add_argument("--hops", type=int, default=3)
    parser.add_argument("--payments", type=int, default=300)
    parser.add_argument("--single", type=int, default=60)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--api", action="store_true", help="also the control API phases")
    parser.add_argument("--data-root", type=Path)
    parser.add_argument("--profile", type=Path, help="py-spy folded stacks of every daemon go here")
    parser.add_argument("--trace-fsync", type=Path, help="strace fsync traces of every daemon go here")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="channeld-hops-ab-", dir=args.data_root))
    chain = Chain()
    lines: list[Line] = []
    try:
        lines.append(start_line(chain, root, "new", args.hops, args.tree and args.tree.resolve()))
        if args.base is not None:
            lines.append(start_line(chain, root, "old", args.hops, args.base.resolve()))
        for line in lines:  # warm both
            run_phase(line, phase("warmup", 40, CONCURRENCY, path="bench"), Recorders(line, None, "", ""))
        for rep in range(args.reps):
            for line in lines:
                run_phase(line, phase("node_window16", args.payments, CONCURRENCY, path="bench"),
                          Recorders(line, args.profile, f"w16-{rep}", "py-spy"))
                run_phase(line, phase("node_single", args.single, 1, path="bench"),
                          Recorders(line, args.trace_fsync, f"single-{rep}", "strace"))
                if args.api:
                    run_phase(line, phase("api_window16", args.payments, CONCURRENCY),
                              Recorders(line, None, "", ""))
                    run_phase(line, phase("api_single", args.single, 1), Recorders(line, None, "", ""))
        for line in lines:
            print("\n".join(summary(line)))
        if args.json:
            args.json.write_text(json.dumps({line.name: line.phases for line in lines}, indent=1))
    finally:
        for line in lines:
            for daemon in line.daemons:
                daemon.stop()
        chain.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
