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
import traceback
from collections.abc import Callable
from pathlib import Path

from benchmarks._cases import (
    FULL,
    TINY,
    Sizes,
    api_case,
    floor_case,
    floor_ratio,
    many_case,
)
from benchmarks._cluster import Chain
from benchmarks._direct import direct_case
from benchmarks._document import render
from benchmarks._hops import hops_case
from benchmarks._life import long_life_case, startup_case
from benchmarks._profile import Profile, profile_case
from benchmarks._report import Result, Target, read_json, table, write_json, write_plot

CASES = ("floor", "direct", "api", "hops", "many", "startup", "long", "profile")
UNITS = {"_pps": "payments/s", "_ms": "ms", "_s": "s", "_ratio": "ratio", "_per_payment": "bytes",
         "_payments": "MB"}
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
    load_at_start: float = dataclasses.field(default_factory=lambda: os.getloadavg()[0])
    failures: dict[str, str] = dataclasses.field(default_factory=dict)
    case_load: dict[str, float] = dataclasses.field(default_factory=dict)  # load average as each ended
    out: Path | None = None  # written after every case, so an interrupted run keeps what it measured
    started: float = dataclasses.field(default_factory=time.perf_counter)

    def timed(self, name: str, case: Callable[[], list[Result]]) -> None:
        if name not in self.only:
            return
        started = time.perf_counter()
        print(f"[bench] {name} ...", flush=True)
        self.failures[name] = f"case {name} did not finish (the run was interrupted)"
        if self.out is not None:
            write_outputs(self, self.out, time.perf_counter() - self.started)
        try:
            found = case()
        except Exception as error:  # one broken case must not void the others' figures
            traceback.print_exc()
            lines = [line.strip() for line in str(error).splitlines() if line.strip()] or [""]
            brief = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
            self.failures[name] = f"case {name} failed: {type(error).__name__}: {brief[:300]}"
            return
        finally:
            self.case_seconds[name] = time.perf_counter() - started
            self.case_load[name] = os.getloadavg()[0]
        del self.failures[name]
        self.results += found
        print("\n".join(table(found)), flush=True)
        if self.out is not None:
            write_outputs(self, self.out, time.perf_counter() - self.started)

    def result(self, key: str) -> Result | None:
        return next((r for r in self.results if r.key == key), None)


def run_cases(run: Run) -> None:
    chain = Chain() if set(run.only) - {"floor"} else None
    try:
        run.timed("floor", lambda: floor_case(run.sizes, run.root))
        if chain is not None:
            run.timed("direct", lambda: direct_case(chain, run.root, run.sizes))
        if chain is not None:
            run.timed("api", lambda: api_case(chain, run.root, run.sizes))
        if chain is not None:
            run.timed("hops", lambda: hops_case(chain, run.root, run.sizes))
        if chain is not None:
            run.timed("many", lambda: many_case(chain, run.root, run.sizes))
            run.timed("startup", lambda: startup_case(chain, run.root, run.sizes))
            run.timed("profile", lambda: _profile(run, chain))
            run.timed("long", lambda: long_life_case(chain, run.root, run.sizes))
    finally:
        if chain is not None:
            chain.stop()


def _profile(run: Run, chain: Chain) -> list[Result]:
    run.profile = profile_case(chain, run.root, run.sizes)
    return []


def derive(results: list[Result]) -> list[Result]:
    """Figures made from others (which may come from earlier runs): the floor ratios, the many-channel
    target."""
    found = {r.key: r for r in results if r.key not in ("floor_ratio", "floor_ratio_cpu")}
    pairs = (("floor_ratio", "direct_pipelined_pps", "floor_pps", "pipelined durable / floor"),
             ("floor_ratio_cpu", "direct_cpu_bound_pps", "floor_cpu_pps",
              "the same per CPU-second: CPU-bound pipelined / floor"))
    ratios = [floor_ratio(found[top], found[bottom], key, label) for key, top, bottom, label in pairs
              if top in found and bottom in found]
    one, many = found.get("direct_pipelined_pps"), found.get("many_channels_pps")
    if one is not None and one.figure is not None and many is not None:
        bound = one.figure.median
        found["many_channels_pps"] = dataclasses.replace(
            many, target=Target.at_least(bound, f"≥ one channel ({bound:,.0f})"))
    return [*found.values(), *ratios]


def missing(run: Run) -> list[Result]:
    """The required keys no case reported: null, with the reason."""
    found = []
    for key, case in REQUIRED.items():
        if run.result(key) is None:
            unit = next((u for suffix, u in UNITS.items() if key.endswith(suffix)), "")
            reason = next((text for name, text in run.failures.items() if name in case),
                          f"not run this time (case {case} left out with --only)")
            found.append(Result.unavailable(key, key.replace("_", " "), unit, reason))
    return found


def write_outputs(run: Run, out: Path, seconds: float) -> None:
    """The report of this run; a run of some cases (`--only`) updates those in an existing report."""
    earlier: list[Result] = []
    case_seconds, case_load, profile = dict(run.case_seconds), dict(run.case_load), run.profile
    if set(run.only) != set(CASES) and (out / "benchmarks.json").exists():
        previous, previous_info, document = read_json(out / "benchmarks.json")
        ours = {r.key for r in run.results} | {k for k, case in REQUIRED.items() if _ran(run, case)}
        earlier = [r for r in previous if r.key not in ours]
        case_seconds = {**previous_info.get("case_seconds", {}), **case_seconds}
        case_load = {**previous_info.get("case_load", {}), **case_load}
        if profile is None and "profile" in document and "profile" not in run.only:
            profile = Profile.from_json(document["profile"])
    results = sorted(derive(run.results + earlier), key=_place)
    results += [r for r in missing(run) if r.key not in {e.key for e in results}]
    out.mkdir(parents=True, exist_ok=True)
    info = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": os.cpu_count(),
            "load_average_at_start": run.load_at_start, "load_average_at_end": os.getloadavg()[0],
            "sizes": _sizes_text(run.sizes), "seconds": seconds, "case_seconds": case_seconds,
            "case_load": case_load,
            "sizes_full": dataclasses.asdict(run.sizes), "cases_this_run": list(run.only)}
    extra = {} if profile is None else {"profile": profile.as_json()}
    write_json(out / "benchmarks.json", results, info, extra)
    write_plot(out / "benchmarks.png", results)
    (out / "benchmarks.md").write_text(render(results, profile, info))


# the order figures are reported in, by key prefix (a report merged from several runs stays in order)
ORDER = ("durable_commit", "floor_payer", "floor_payee", "floor_pps", "floor_cpu", "direct_", "floor_ratio",
         "wallet_direct", "api_", "two_hop", "three_hop", "many_", "startup", "store_bytes_per_channel",
         "long_", "store_", "restart_")


def _place(result: Result) -> int:
    return next((i for i, prefix in enumerate(ORDER) if result.key.startswith(prefix)), len(ORDER))


def _ran(run: Run, case: str) -> bool:
    return any(name in case for name in run.only)


def rerender(out: Path) -> None:
    """benchmarks.md and .png again from benchmarks.json (after the text around the figures changed)."""
    results, info, document = read_json(out / "benchmarks.json")
    profile = Profile.from_json(document["profile"]) if "profile" in document else None
    write_plot(out / "benchmarks.png", results)
    (out / "benchmarks.md").write_text(render(results, profile, info))


def _sizes_text(sizes: Sizes) -> str:
    changed = {k: v for k, v in dataclasses.asdict(sizes).items() if getattr(FULL, k) != v}
    return "full" if not changed else ", ".join(f"{k}={v}" for k, v in changed.items())


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts (checks the harness, not speed)")
    parser.add_argument("--long-payments", type=int, help="payments in the long-life case (default 1M)")
    parser.add_argument("--runs", type=int, help="measured runs per figure (default 3)")
    parser.add_argument("--only", nargs="+", choices=CASES, default=list(CASES),
                        help="cases to run (their figures replace those in an existing report in --out)")
    parser.add_argument("--out", type=Path, default=DOCS, help="where the report goes (default docs/)")
    parser.add_argument("--render", action="store_true",
                        help="measure nothing: rewrite benchmarks.md and .png from benchmarks.json in --out")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.render:
        rerender(args.out)
        return 0
    sizes = TINY if args.quick else FULL
    if args.long_payments is not None:
        sizes = dataclasses.replace(sizes, long_payments=args.long_payments)
    if args.runs is not None:
        sizes = dataclasses.replace(sizes, runs=max(1, args.runs))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="channeld-bench-") as tmp:
        run = Run(sizes, tuple(args.only), Path(tmp), out=args.out)
        run_cases(run)
    seconds = time.perf_counter() - started
    write_outputs(run, args.out, seconds)
    print("\n".join(table(run.results + missing(run))))
    print(f"[bench] done in {seconds:.0f} s; wrote {args.out}/benchmarks.md, .json, .png")
    for reason in run.failures.values():
        print(f"[bench] {reason}")
    return 1 if run.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
