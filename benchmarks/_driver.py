"""The load-generator process: `python -m benchmarks._driver SPEC_JSON` prints one JSON result line.

Wallet mode, SPEC: {"mode": "wallets", "store": dir, "rpc_url": url, "contract": address, "node_uri": uri,
"wallets": n, "deposit": wei, "phases": [...], "profile": path or null}. The fleet connects, opens its
channels on chain, waits for the node's announcements, then runs each phase in order.

API mode, SPEC: {"mode": "api", "api_url": url, "token": bearer, "payee": node id, "phases": [...]}: what a
wallet or shop server sees, `POST /api/v1/payments` with up to `window` requests outstanding, each on its
own keep-alive connection (`benchmarks/_http.py`); a phase with "idempotency_keys": true gives every
payment its own `Idempotency-Key`; one with "batch": n sends `POST /api/v1/payments/batch` requests of n
payments each (latencies are then per batch).

A phase is {"name": str, "total": payments, "window": unanswered payments allowed per channel (or
requests outstanding)}; each reports payments per second, latency percentiles, and how busy this process
and the daemons named in the optional "watch_pids" were (share of one core).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trio

from benchmarks._http import Connection
from benchmarks._stats import percentile
from benchmarks._wallet import Fleet, WalletFailure
from channeld.chain import connect_rpc

ANNOUNCE_TIMEOUT = 600.0


def summarise(name: str, total: int, elapsed: float, latencies: list[float]) -> dict[str, Any]:
    return {"name": name, "payments": total, "seconds": elapsed, "pps": total / elapsed,
            "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000}


class CpuWatch:
    """How busy this process and the watched daemons were over a phase, as a share of one core: it
    tells whether the daemon or the load generator was the bottleneck."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.wall = time.perf_counter()
        self.own = time.process_time()
        self.others = [cpu_seconds(pid) for pid in pids]

    def shares(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.wall
        return {"driver_cpu": (time.process_time() - self.own) / wall,
                "daemon_cpu": [(cpu_seconds(pid) - before) / wall
                               for pid, before in zip(self.pids, self.others, strict=True)]}


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, all its threads, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    backend = connect_rpc(spec["rpc_url"])
    chain_id = backend.chain_id()
    contract = bytes.fromhex(spec["contract"][2:])
    fleet = Fleet(Path(spec["store"]), chain_id, contract, spec["node_uri"], int(spec["wallets"]))
    result: dict[str, Any] = {"phases": []}
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(fleet.run_flusher)
            began = time.perf_counter()
            await fleet.connect_all(nursery)
            opened = await trio.to_thread.run_sync(fleet.open_on_chain, spec["rpc_url"], spec["contract"],
                                                   int(spec["deposit"]))
            fleet.adopt(opened)
            await fleet.wait_announced(ANNOUNCE_TIMEOUT)
            result["setup_seconds"] = time.perf_counter() - began
            for phase in spec["phases"]:
                result["phases"].append(await _phase(fleet, phase, spec.get("profile"),
                                                     list(spec.get("watch_pids", []))))
            nursery.cancel_scope.cancel()
    finally:
        fleet.close()
    return result


async def _phase(fleet: Fleet, phase: dict[str, Any], profile: str | None,
                 watch: list[int]) -> dict[str, Any]:
    fleet.latencies = []
    if not (profile and phase.get("profile")):
        cpu = CpuWatch(watch)
        elapsed = await fleet.drive(int(phase["total"]), int(phase["window"]))
        return {**summarise(phase["name"], int(phase["total"]), elapsed, fleet.latencies), **cpu.shares()}
    from pyinstrument import Profiler

    profiler = Profiler(async_mode="disabled")
    profiler.start()
    elapsed = await fleet.drive(int(phase["total"]), int(phase["window"]))
    profiler.stop().save(profile)
    return summarise(phase["name"], int(phase["total"]), elapsed, fleet.latencies)


async def run_api(spec: dict[str, Any]) -> dict[str, Any]:
    url = urlsplit(spec["api_url"])
    assert url.hostname is not None and url.port is not None
    phases = []
    for phase in spec["phases"]:
        # fresh connections per phase: the server closes keep-alive connections left idle between phases
        phases.append(await _api_phase(url.hostname, url.port, spec["token"], phase, spec["payee"],
                                       list(spec.get("watch_pids", []))))
    return {"phases": phases}


async def _api_phase(host: str, port: int, token: str, phase: dict[str, Any], payee: str,
                     watch: list[int]) -> dict[str, Any]:
    latencies: list[float] = []
    total, window = int(phase["total"]), int(phase["window"])
    batch = int(phase.get("batch", 0))  # > 0: each request is a `POST /payments/batch` of this many
    requests = total // batch if batch else total
    keyed = bool(phase.get("idempotency_keys"))  # each payment with its own key, as a shop's order id
    prefix = f"{phase['name']}-{os.getpid()}-{time.time_ns()}"
    connections = [await Connection.open(host, port, token) for _ in range(window)]

    async def worker(index: int, connection: Connection, count: int) -> None:
        for number in range(count):
            started = time.perf_counter()
            if batch:
                await _pay_batch(connection, payee, batch, f"{prefix}-{index}-{number}" if keyed else None)
            else:
                await _pay_one(connection, payee, f"{prefix}-{index}-{number}" if keyed else None)
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    cpu = CpuWatch(watch)
    share, extra = divmod(requests, window)
    try:
        async with trio.open_nursery() as nursery:
            for index, connection in enumerate(connections):
                nursery.start_soon(worker, index, connection, share + (index < extra))
        paid = requests * (batch or 1)
        return {**summarise(phase["name"], paid, time.perf_counter() - began, latencies), **cpu.shares()}
    finally:
        for connection in connections:
            await connection.aclose()


async def _pay_one(connection: Connection, payee: str, key: str | None) -> None:
    headers = [("idempotency-key", key)] if key else None
    status, answer = await connection.post("/api/v1/payments", {"node_id": payee, "amount": "1"}, headers)
    if status != 200 or answer.get("status") != "accepted":
        raise WalletFailure(f"payment not accepted: {status} {answer}")


async def _pay_batch(connection: Connection, payee: str, size: int, key: str | None) -> None:
    items = [{"node_id": payee, "amount": "1", **({"idempotency_key": f"{key}-{i}"} if key else {})}
             for i in range(size)]
    status, answer = await connection.post("/api/v1/payments/batch", {"payments": items})
    if status != 200 or answer.get("accepted") != size:
        raise WalletFailure(f"batch not accepted: {status} {str(answer)[:500]}")


def main() -> None:
    spec = json.loads(sys.argv[1])
    runner = run_api if spec.get("mode") == "api" else run
    if spec.get("mode") == "routed":
        from benchmarks._routed import run_routed

        runner = run_routed
    print(json.dumps(trio.run(runner, spec)), flush=True)


if __name__ == "__main__":
    main()
