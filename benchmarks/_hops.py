"""Case 3, multi-hop: daemons in a line, payer to payee over two hops (three daemons) and three hops
(four daemons), each payment under a payment request of the payee's, routed by the payer's own graph.

Every daemon announces its channels quickly (`routing.gossip_interval`) so the payer learns the route
in seconds; the daemons alternate between the two cores and the HTTP client is left to the scheduler.

Each run pays twice over: through the control API (`POST /payments` per payment, what a shop server
sees: `*_pps`, `*_latency_*`) and through the payer's load path (`POST /bench/pay-requests`: the node
pays the same kind of requests itself, so the figure is the protocol and the node, not HTTP:
`*_node_*`). Every daemon's CPU time per payment is read from /proc for both.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

from benchmarks._cases import DEPOSIT, PPS, Sizes, by_name, core, phase, run_driver
from benchmarks._cluster import Chain, ClusterFailure, Daemon, wait_until
from benchmarks._report import Result, Target
from benchmarks._stats import Figure
from channeld.api._client import ApiError
from channeld.keys import read_api_token

AMOUNT = 1_000
MAX_FEE = 10**6
CONCURRENCY = 16
ROUTE_TIMEOUT = 120.0
# the chain is polled at the configured default (2 s), not the cluster's 100 ms: four daemons polling anvil
# ten times a second spent more CPU in web3 than in payments (a fixed cost per second, not per payment)
SETTINGS = ["--set", "routing.gossip_interval=1s", "--set", "node.api_rate=100000",
            "--set", "node.api_burst=1000000", "--set", "chain.poll_interval=2s"]
NAMES = {2: "two_hop", 3: "three_hop"}


def hops_case(chain: Chain, root: Path, sizes: Sizes) -> list[Result]:
    return [*line_case(chain, root, sizes, 2), *line_case(chain, root, sizes, 3)]


def line_case(chain: Chain, root: Path, sizes: Sizes, hops: int) -> list[Result]:
    chain.deploy_hub()
    line = [Daemon.create(root, f"hop{hops}-{i}", chain, SETTINGS) for i in range(hops + 1)]
    try:
        for index, daemon in enumerate(line):
            daemon.start(core(index))
        _open_line(line)
        _wait_for_route(line[0], line[-1])
        phases = [phase("warmup", max(sizes.hop_payments // 10, 4), CONCURRENCY)]
        for run in range(sizes.runs):
            phases += [phase(f"concurrent{run}", sizes.hop_payments, CONCURRENCY),
                       phase(f"single{run}", sizes.hop_one_at_a_time, 1),
                       phase(f"node_concurrent{run}", sizes.hop_payments, CONCURRENCY, path="bench"),
                       phase(f"node_single{run}", sizes.hop_one_at_a_time, 1, path="bench")]
        result = run_driver({"mode": "routed", "payer": _side(line[0]), "payee": _side(line[-1]),
                             "amount": AMOUNT, "max_fee": MAX_FEE, "phases": phases,
                             "watch_pids": [daemon.pid for daemon in line]}, on_core=None)
    finally:
        for daemon in line:
            daemon.stop()
    return _results(hops, result)


def _side(daemon: Daemon) -> dict[str, str]:
    return {"url": f"http://127.0.0.1:{daemon.api}", "token": read_api_token(daemon.datadir)}


def _open_line(line: list[Daemon]) -> None:
    """Each daemon opens a funded channel to the next one (liquidity flows payer to payee)."""
    for here, there in itertools.pairwise(line):
        here.call("POST", "/channels", {"uri": there.uri, "deposit": str(DEPOSIT), "challenge_period": 3600})
    for here, there in itertools.pairwise(line):
        wait_until(lambda a=here, b=there: _open_between(a, b), 120, "the line's channels open")


def _open_between(a: Daemon, b: Daemon) -> bool:
    theirs = {c["channel_id"] for c in b.call("GET", "/channels") if c["partner_deposit"] == str(DEPOSIT)}
    return any(c["channel_id"] in theirs and c["status"] == "open" for c in a.call("GET", "/channels"))


def _wait_for_route(payer: Daemon, payee: Daemon) -> None:
    """Until one routed payment goes through (the payer's graph has learned the whole line)."""
    deadline = time.monotonic() + ROUTE_TIMEOUT
    last = ""
    while time.monotonic() < deadline:
        request = payee.call("POST", "/requests", {"amount": str(AMOUNT), "description": "probe"})["request"]
        try:
            outcome: dict[str, Any] = payer.call("POST", "/payments", {"request": request,
                                                                       "max_fee": str(MAX_FEE)})
        except ApiError as error:
            last = str(error)
        else:
            if outcome.get("status") == "accepted":
                return
            last = str(outcome)
        time.sleep(1.0)
    raise ClusterFailure(f"no route from payer to payee within {ROUTE_TIMEOUT:.0f} s: {last[:300]}")


def _results(hops: int, result: dict[str, Any]) -> list[Result]:
    key = NAMES[hops]
    three = hops == 3
    outstanding = f"{CONCURRENCY} payments outstanding"
    pps_target = Target.at_least(2_000, "≥ 2,000") if three else None
    return [
        Result(f"{key}_pps", f"{hops} hops, {outstanding} (control API)", PPS,
               by_name(result, "concurrent", "pps"), pps_target),
        Result(f"{key}_latency_p50_ms", f"{hops} hops, one at a time: latency p50", "ms",
               by_name(result, "single", "p50_ms"), Target.below(5, "< 5") if three else None),
        Result(f"{key}_latency_p99_ms", f"{hops} hops, one at a time: latency p99", "ms",
               by_name(result, "single", "p99_ms")),
        Result(f"{key}_node_pps", f"{hops} hops, {outstanding}, paid by the node itself (bench path)", PPS,
               by_name(result, "node_concurrent", "pps"), pps_target),
        Result(f"{key}_node_latency_p50_ms", f"{hops} hops, bench path, one at a time: latency p50", "ms",
               by_name(result, "node_single", "p50_ms"), Target.below(5, "< 5") if three else None),
        Result(f"{key}_node_latency_p99_ms", f"{hops} hops, bench path, one at a time: latency p99", "ms",
               by_name(result, "node_single", "p99_ms")),
        *_cpu_results(key, hops, result),
    ]


def _cpu_results(key: str, hops: int, result: dict[str, Any]) -> list[Result]:
    """CPU per payment of the payer, the busiest mediator and the payee, on the bench path with payments
    outstanding (and the whole line's, both paths): steadier than wall-clock rates on a loaded machine."""
    phases = [p for p in result["phases"] if p["name"].startswith("node_concurrent")]
    api = [p for p in result["phases"] if p["name"].startswith("concurrent")]
    unit = "µs CPU per payment"
    return [
        Result(f"{key}_payer_cpu_us", f"{hops} hops, bench path: payer daemon CPU", unit,
               Figure.of([p["daemon_cpu_us"][0] for p in phases])),
        Result(f"{key}_mediator_cpu_us", f"{hops} hops, bench path: the busiest mediator's CPU", unit,
               Figure.of([max(p["daemon_cpu_us"][1:-1]) for p in phases])),
        Result(f"{key}_payee_cpu_us", f"{hops} hops, bench path: payee daemon CPU", unit,
               Figure.of([p["daemon_cpu_us"][-1] for p in phases])),
        Result(f"{key}_line_cpu_us", f"{hops} hops, bench path: all {hops + 1} daemons' CPU together", unit,
               Figure.of([sum(p["daemon_cpu_us"]) for p in phases])),
        Result(f"{key}_api_line_cpu_us", f"{hops} hops, control API: all {hops + 1} daemons' CPU", unit,
               Figure.of([sum(p["daemon_cpu_us"]) for p in api])),
    ]
