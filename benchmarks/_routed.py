"""Load for the multi-hop cases, run inside the load-generator process (`_driver`, mode "routed").

SPEC: {"mode": "routed", "payer": {"url", "token"}, "payee": {"url", "token"}, "amount": wei,
"max_fee": wei, "phases": [...], "watch_pids": [the line's daemons, payer first]}. For each phase the
payee first issues one payment request per payment (untimed: a shop makes its invoice before the
customer pays), then the payer pays them with up to `window` outstanding: through `POST
/api/v1/payments` (a phase with "path": "api", the default), or all in one `POST
/api/v1/bench/pay-requests` (a phase with "path": "bench": the node pays them itself, the same
`PaymentRequestBook.pay` each, without HTTP and JSON per payment; its own timings are reported). A
payment counts when it is accepted, that is when the last hop has it and the secret (the receipt) has
come back to the payer. Each phase also reports how busy every watched daemon was (`daemon_cpu`).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import trio

from benchmarks._stats import percentile
from benchmarks._wallet import WalletFailure

ISSUING = 16  # requests issued at once before a phase


def client(side: dict[str, str]) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=side["url"] + "/api/v1", timeout=120.0,
                             headers={"Authorization": f"Bearer {side['token']}"},
                             limits=httpx.Limits(max_connections=256))


async def run_routed(spec: dict[str, Any]) -> dict[str, Any]:
    from benchmarks._driver import CpuWatch, cpu_seconds

    pids = list(spec.get("watch_pids", []))
    phases = []
    for phase in spec["phases"]:
        async with client(spec["payee"]) as payee:
            requests = await issue(payee, int(phase["total"]), int(spec["amount"]))
        async with client(spec["payer"]) as payer:
            watch, before = CpuWatch(pids), [cpu_seconds(pid) for pid in pids]
            if phase.get("path", "api") == "bench":
                found = await pay_in_node(payer, phase, requests, str(spec["max_fee"]))
            else:
                found = await pay_all(payer, phase, requests, str(spec["max_fee"]))
            spent = [cpu_seconds(pid) - was for pid, was in zip(pids, before, strict=True)]
            per_payment = [seconds / len(requests) * 1e6 for seconds in spent]
            phases.append({**found, **watch.shares(), "daemon_cpu_us": per_payment})
    return {"phases": phases}


async def pay_in_node(payer: httpx.AsyncClient, phase: dict[str, Any], requests: list[str],
                      max_fee: str) -> dict[str, Any]:
    """One call: the payer daemon pays every request itself, `window` at a time, and times each."""
    response = await payer.post("/bench/pay-requests", json={"requests": requests, "max_fee": max_fee,
                                                             "window": int(phase["window"])},
                                timeout=max(120.0, 2.0 * len(requests)))
    if response.status_code != 200:
        raise WalletFailure(f"routed bench refused: {response.status_code} {response.text}")
    result = response.json()
    return {"name": phase["name"], "payments": result["payments"], "seconds": result["seconds"],
            "pps": result["pps"], "p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"]}


async def issue(payee: httpx.AsyncClient, count: int, amount: int) -> list[str]:
    issued: list[str] = []

    async def worker(share: int) -> None:
        for _ in range(share):
            response = await payee.post("/requests", json={"amount": str(amount), "description": "bench"})
            response.raise_for_status()
            issued.append(str(response.json()["request"]))

    async with trio.open_nursery() as nursery:
        for index in range(ISSUING):
            nursery.start_soon(worker, count // ISSUING + (index < count % ISSUING))
    return issued


async def pay_all(payer: httpx.AsyncClient, phase: dict[str, Any], requests: list[str],
                  max_fee: str) -> dict[str, Any]:
    latencies: list[float] = []
    pending = list(requests)

    async def worker() -> None:
        while pending:
            request = pending.pop()
            started = time.perf_counter()
            response = await payer.post("/payments", json={"request": request, "max_fee": max_fee})
            document = response.json() if response.status_code == 200 else {}
            if document.get("status") != "accepted":
                raise WalletFailure(f"routed payment not accepted: {response.status_code} {response.text}")
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(int(phase["window"])):
            nursery.start_soon(worker)
    elapsed = time.perf_counter() - began
    return {"name": phase["name"], "payments": len(requests), "seconds": elapsed,
            "pps": len(requests) / elapsed, "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000}
