"""Case 1, direct payments on one channel, measured two ways.

Two daemons (the `direct_*` figures): the payer daemon drives the load itself through its admin-only
load path `POST /api/v1/bench/pay` (benchmarks/direct.py, by the node's author), payer and payee pinned
one per core. Every figure is durable end to end.

A wallet into a daemon (the `wallet_direct_*` figures): the load generator of benchmarks/_wallet.py, a
third-party wallet built from the project's pieces, pays one daemon; this also shows how busy each side
was. When a daemon build has no bench endpoint, the `direct_*` keys carry the wallet's figures, and
their labels say so.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from benchmarks import direct as two_daemons
from benchmarks._cases import (
    PIPELINE_WINDOW,
    PPS,
    Sizes,
    busy,
    by_name,
    core,
    cpu_per_payment,
    phase,
    run_driver,
    wallet_spec,
)
from benchmarks._cluster import Chain, Daemon
from benchmarks._report import Result, Target
from benchmarks._stats import Figure
from channeld.api._client import ApiError

CPU_US = "µs CPU per payment"
TARGETS = {
    "pipelined_pps": Target.at_least(15_000, "≥ 15,000"), "w8_pps": Target.at_least(5_000, "≥ 5,000"),
    "w8_latency_p99_ms": Target.below(3, "< 3"), "latency_p50_ms": Target.below(1, "< 1"),
    "latency_p99_ms": Target.below(5, "< 5"),
}


def direct_case(chain: Chain, root: Path, sizes: Sizes) -> list[Result]:
    wallet = wallet_direct_case(chain, root, sizes)
    daemons = daemons_direct_case(chain, root, sizes)
    if daemons is not None:
        return daemons + wallet
    note = " [wallet peer into a daemon: this daemon build has no bench endpoint]"
    copies = [dataclasses.replace(r, key=r.key.removeprefix("wallet_"), label=r.label + note)
              for r in wallet if r.key.removeprefix("wallet_direct_") in TARGETS]
    return copies + wallet


def _figures(prefix: str, label: str, fig: dict[str, Figure]) -> list[Result]:
    return [
        Result(f"{prefix}_pipelined_pps", f"{label}, pipelined (window 64), durable", PPS,
               fig["pipelined_pps"], TARGETS["pipelined_pps"]),
        Result(f"{prefix}_pipelined_latency_p50_ms", f"{label}, pipelined: latency p50", "ms",
               fig["pipelined_p50"]),
        Result(f"{prefix}_w8_pps", f"{label}, window of 8", PPS, fig["w8_pps"], TARGETS["w8_pps"]),
        Result(f"{prefix}_w8_latency_p99_ms", f"{label}, window of 8: latency p99", "ms", fig["w8_p99"],
               TARGETS["w8_latency_p99_ms"]),
        Result(f"{prefix}_single_pps", f"{label}, one at a time", PPS, fig["single_pps"]),
        Result(f"{prefix}_latency_p50_ms", f"{label}, one at a time: latency p50", "ms", fig["single_p50"],
               TARGETS["latency_p50_ms"]),
        Result(f"{prefix}_latency_p99_ms", f"{label}, one at a time: latency p99", "ms", fig["single_p99"],
               TARGETS["latency_p99_ms"]),
    ]


# --- two daemons, the node's own load path ---------------------------------------------------------------


def daemons_direct_case(chain: Chain, root: Path, sizes: Sizes) -> list[Result] | None:
    """The two-daemon figures, or None if the payer daemon has no bench endpoint."""
    chain.deploy_hub()
    payer, payee = Daemon.create(root, "direct-payer", chain), Daemon.create(root, "direct-payee", chain)
    payer.start(core(0))
    payee.start(core(1))
    try:
        channel = two_daemons._open_channel(payer, payee)
        runs = two_daemons.Sizes(sizes.runs, sizes.warmup, sizes.pipelined, sizes.window8,
                                 sizes.one_at_a_time, sizes.floor_payments)
        try:
            phases = two_daemons._phases(payer, payee, channel, runs, None)
        except ApiError as error:
            if "Not Found" in str(error) or "404" in str(error):
                return None
            raise
    finally:
        payer.stop()
        payee.stop()
    return [
        *_figures("direct", "direct, daemon to daemon", _daemon_figures(phases)),
        Result("direct_pipelined_payer_cpu_us", "direct, pipelined: payer daemon CPU", CPU_US,
               _of(phases["pipelined"], "payer_cpu_us")),
        Result("direct_pipelined_payee_cpu_us", "direct, pipelined: payee daemon CPU", CPU_US,
               _of(phases["pipelined"], "payee_cpu_us")),
        Result("direct_cpu_bound_pps", "direct, pipelined, if each daemon had a core of its own "
               "(1 / the busier daemon's CPU per payment)", PPS,
               Figure.of([1e6 / max(r["payer_cpu_us"], r["payee_cpu_us"]) for r in phases["pipelined"]])),
    ]


def _of(runs: list[dict[str, Any]], key: str) -> Figure:
    return Figure.of([float(run[key]) for run in runs])


# figure name -> (phase, field) in either way of measuring
FIELDS = {"pipelined_pps": ("pipelined", "pps"), "pipelined_p50": ("pipelined", "p50_ms"),
          "w8_pps": ("window8", "pps"), "w8_p99": ("window8", "p99_ms"), "single_pps": ("single", "pps"),
          "single_p50": ("single", "p50_ms"), "single_p99": ("single", "p99_ms")}


def _daemon_figures(phases: dict[str, list[dict[str, Any]]]) -> dict[str, Figure]:
    return {name: _of(phases[which], field) for name, (which, field) in FIELDS.items()}


# --- a wallet into a daemon ---------------------------------------------------------------------------------


def wallet_direct_case(chain: Chain, root: Path, sizes: Sizes) -> list[Result]:
    chain.deploy_hub()
    daemon = Daemon.create(root, "wallet-direct", chain)
    daemon.start(core(0))
    try:
        phases = [phase("warmup", sizes.warmup, PIPELINE_WINDOW)]
        for run in range(sizes.runs):
            phases += [phase(f"pipelined{run}", sizes.pipelined, PIPELINE_WINDOW),
                       phase(f"window8-{run}", sizes.window8, 8),
                       phase(f"single{run}", sizes.one_at_a_time, 1)]
        result = run_driver(wallet_spec(chain, daemon, root / "direct-wallet", 1, phases))
    finally:
        daemon.stop()
    figures = {name: by_name(result, which, field) for name, (which, field) in FIELDS.items()}
    return [
        *_figures("wallet_direct", "wallet into a daemon", figures),
        busy(result, "pipelined", "wallet_direct_pipelined_daemon_cpu",
             "wallet into a daemon, pipelined: daemon (payee) busy"),
        cpu_per_payment(result, "pipelined", "wallet_direct_pipelined_daemon_cpu_us",
                        "wallet into a daemon, pipelined: daemon (payee) CPU"),
        busy(result, "pipelined", "wallet_direct_pipelined_wallet_cpu",
             "wallet into a daemon, pipelined: wallet (payer) busy", daemon=-1),
    ]
