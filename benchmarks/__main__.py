"""`python -m benchmarks [--quick] [--long-payments N] [--runs N] [--only CASE ...] [--out DIR]`.

Runs each case against real processes, prints the table, and writes benchmarks.md, benchmarks.json and
benchmarks.png into `--out` (default docs/).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks._cases import (
    FULL,
    TINY,
    Sizes,
    api_case,
    floor_case,
    floor_ratio,
    hops_case,
    many_case,
)
from benchmarks._cluster import Chain
from benchmarks._direct import direct_case
from benchmarks._document import render
from benchmarks._life import long_life_case, startup_case
from benchmarks._profile import Profile, profile_case
from benchmarks._report import Result, table, write_json, write_plot

CASES = ("floor", "direct", "api", "hops", "many", "startup", "long", "profile")
# every report carries these keys; a case left out with --only gives null and says so
REQUIRED = {
    "direct_pipelined_pps": "direct", "direct_w8_pps": "direct", "direct_w8_latency_p99_ms": "direct",
    "direct_latency_p50_ms": "direct", "direct_latency_p99_ms": "direct", "floor_pps": "floor",
    "floor_ratio": "floor and direct", "api_pps": "api", "two_hop_pps": "hops", "three_hop_pps": "hops",
    "three_hop_latency_p50_ms": "hops", "many_channels_pps": "many", "startup_10k_channels_s": "startup",
    "store_bytes_per_payment": "long", "restart_after_1m_payments_s": "long",
    "store_mb_after_1m_payments": "long",
}
DOCS = Path(__file__).resolve().parent.parent / "docs"


@dataclasses.dataclass
class Run:
    """One harness run: what to do, and what it found."""

    sizes: Sizes
    only: tuple[str, ...]
    root: Path
    results: list[Result] = dataclasses.field(default_factory=list)
    case_seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    profile: Profile | None = None

    def timed(self, name: str, case: Callable[[], list[Result]]) -> None:
        if name not in self.only:
            return
        started = time.perf_counter()
        print(f"[bench] {name} ...", flush=True)
        found = case()
        self.case_seconds[name] = time.perf_counter() - started
        self.results += found
        print("\n".join(table(found)), flush=True)

    def result(self, key: str) -> Result | None:
        return next((r for r in self.results if r.key == key), None)


def run_cases(run: Run) -> None:
    chain = Chain() if set(run.only) - {"floor", "hops"} else None
    try:
        run.timed("floor", lambda: floor_case(run.sizes, run.root))
        if chain is not None:
            run.timed("direct", lambda: direct_case(chain, run.root, run.sizes))
        _add_ratio(run)
        if chain is not None:
            run.timed("api", lambda: api_case(chain, run.root, run.sizes))
        run.timed("hops", hops_case)
        if chain is not None:
            one = run.result("direct_pipelined_pps") or Result("direct_pipelined_pps", "", "", None)
            run.timed("many", lambda: many_case(chain, run.root, run.sizes, one))
            run.timed("startup", lambda: startup_case(chain, run.root, run.sizes))
            run.timed("long", lambda: long_life_case(chain, run.root, run.sizes))
            if "profile" in run.only:
                started = time.perf_counter()
                print("[bench] profile ...", flush=True)
                run.profile = profile_case(chain, run.root, run.sizes)
                run.case_seconds["profile"] = time.perf_counter() - started
    finally:
        if chain is not None:
            chain.stop()


def _add_ratio(run: Run) -> None:
    pipelined, floor = run.result("direct_pipelined_pps"), run.result("floor_pps")
    if pipelined is not None and floor is not None:
        run.results.append(floor_ratio(pipelined, floor))


def add_missing(run: Run) -> None:
    for key, case in REQUIRED.items():
        if run.result(key) is None:
            unit = "payments/s" if key.endswith("_pps") else key.rsplit("_", 1)[-1]
            run.results.append(Result.unavailable(key, key.replace("_", " "), unit,
                                                  f"not run this time (case {case} left out with --only)"))


def write_outputs(run: Run, out: Path, seconds: float) -> None:
    add_missing(run)
    out.mkdir(parents=True, exist_ok=True)
    info = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": os.cpu_count(),
            "sizes": _sizes_text(run.sizes), "seconds": seconds, "case_seconds": run.case_seconds,
            "sizes_full": dataclasses.asdict(run.sizes)}
    write_json(out / "benchmarks.json", run.results, info)
    write_plot(out / "benchmarks.png", run.results)
    (out / "benchmarks.md").write_text(render(run.results, run.profile, info))


def _sizes_text(sizes: Sizes) -> str:
    changed = {k: v for k, v in dataclasses.asdict(sizes).items() if getattr(FULL, k) != v}
    return "full" if not changed else ", ".join(f"{k}={v}" for k, v in changed.items())


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts (checks the harness, not speed)")
    parser.add_argument("--long-payments", type=int, help="payments in the long-life case (default 1M)")
    parser.add_argument("--runs", type=int, help="measured runs per figure (default 3)")
    parser.add_argument("--only", nargs="+", choices=CASES, default=list(CASES), help="cases to run")
    parser.add_argument("--out", type=Path, default=DOCS, help="where the report goes (default docs/)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    sizes = TINY if args.quick else FULL
    if args.long_payments is not None:
        sizes = dataclasses.replace(sizes, long_payments=args.long_payments)
    if args.runs is not None:
        sizes = dataclasses.replace(sizes, runs=max(1, args.runs))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="channeld-bench-") as tmp:
        run = Run(sizes, tuple(args.only), Path(tmp))
        run_cases(run)
    seconds = time.perf_counter() - started
    write_outputs(run, args.out, seconds)
    print("\n".join(table(run.results)))
    print(f"[bench] done in {seconds:.0f} s; wrote {args.out}/benchmarks.md, .json, .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
