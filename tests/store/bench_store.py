"""Benchmark of durable commits: group commit on the writer thread vs naive per-write fsync.

Not a test. Run: .venv/bin/python tests/store/bench_store.py [seconds-per-case [rounds]]
Each committer loops: build a batch with one ~300-byte channel record, await its durability.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import plyvel
import trio

from channeld.store import AuditRecord, Batch, Direction, Namespace, PendingCommit, Store
from channeld.store import _keys as keys

NS = Namespace(31337, b"\x42" * 20)
RECORD = b"\x5a" * 300
CONCURRENCY = (1, 8, 64, 512)

Commit = Callable[[int], Awaitable[None]]


def _channel_id(worker: int) -> bytes:
    return worker.to_bytes(32, "big")


async def _run(commit: Commit, committers: int, seconds: float) -> tuple[float, list[float]]:
    done = 0
    latencies: list[float] = []
    deadline = trio.current_time() + seconds

    async def committer(worker: int) -> None:
        nonlocal done
        while trio.current_time() < deadline:
            started = time.perf_counter()
            await commit(worker)
            latencies.append(time.perf_counter() - started)
            done += 1

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for worker in range(committers):
            nursery.start_soon(committer, worker)
    return done / (time.perf_counter() - started), latencies


def _group_commit(store: Store) -> Commit:
    async def commit(worker: int) -> None:
        await store.commit(Batch().put_channel(NS, _channel_id(worker), RECORD))
    return commit


def _naive(db: plyvel.DB) -> Commit:
    def write(worker: int) -> None:
        db.put(keys.channel_key(NS, _channel_id(worker)), RECORD, sync=True)

    async def commit(worker: int) -> None:
        await trio.to_thread.run_sync(write, worker)
    return commit


async def _one_channel(store: Store, seconds: float, in_flight: int) -> float:
    """Payments on ONE channel: each is a new outgoing proof + channel record + audit entry, queued
    with `submit` while earlier ones are still being written; a second task waits for each to be
    durable (where the node would then send the proof). Returns durable payments per second."""
    done = 0
    deadline = trio.current_time() + seconds
    send, receive = trio.open_memory_channel[PendingCommit](in_flight)

    async def producer() -> None:
        async with send:
            n = 0
            while trio.current_time() < deadline:
                n += 1
                batch = (Batch().put_channel(NS, _channel_id(0), RECORD)
                         .put_proof(NS, _channel_id(0), Direction.OUTGOING, RECORD)
                         .append_audit(AuditRecord(NS, _channel_id(0), b"\x01" * 20, "payment_sent", -n)))
                await send.send(store.submit(batch))

    async def acknowledger() -> None:
        nonlocal done
        async with receive:
            async for pending in receive:
                await pending.wait_durable()
                done += 1

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        nursery.start_soon(acknowledger)
    return done / (time.perf_counter() - started)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6


def _raw_fsync_rate(db: plyvel.DB, seconds: float) -> float:
    """The disk's ceiling for one writer: back-to-back synced puts, no trio, no threads."""
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        db.put(keys.channel_key(NS, _channel_id(0)), RECORD, sync=True)
        done += 1
    return done / (time.perf_counter() - started)


async def main(seconds: float, rounds: int) -> None:
    # The disk is shared and noisy, so each case runs `rounds` times, interleaved, and the
    # median is reported.
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "group")
        naive_db = plyvel.DB(str(Path(tmp) / "naive"), create_if_missing=True)
        raw = statistics.median(_raw_fsync_rate(naive_db, seconds) for _ in range(rounds))
        print(f"raw synced puts, one thread, no trio: {raw:,.0f}/s")
        print(f"{'committers':>10} {'group commit/s':>15} {'naive commit/s':>15} {'commits/fsync':>14}")
        for committers in CONCURRENCY:
            group_rates, naive_rates = [], []
            before = store.statistics()
            for _ in range(rounds):
                group_rates.append((await _run(_group_commit(store), committers, seconds))[0])
                naive_rates.append((await _run(_naive(naive_db), committers, seconds))[0])
            after = store.statistics()
            per_group = (after.commits - before.commits) / max(1, after.groups - before.groups)
            print(f"{committers:>10} {statistics.median(group_rates):>15,.0f} "
                  f"{statistics.median(naive_rates):>15,.0f} {per_group:>14.1f}")
        for in_flight in (1, 64, 1024):
            rates = [await _one_channel(store, seconds, in_flight) for _ in range(rounds)]
            print(f"one channel, proof+channel+audit per payment, {in_flight:>4} in flight: "
                  f"{statistics.median(rates):>8,.0f} durable payments/s")
        group_lat, naive_lat = [], []
        for _ in range(rounds):  # interleaved and pooled, as the disk's mood changes by the second
            group_lat += (await _run(_group_commit(store), 1, seconds))[1]
            naive_lat += (await _run(_naive(naive_db), 1, seconds))[1]
        print("single-commit latency (µs)   p50      p99")
        print(f"  group commit            {_pct(group_lat, .5):>7.0f}  {_pct(group_lat, .99):>7.0f}")
        print(f"  naive to_thread+sync    {_pct(naive_lat, .5):>7.0f}  {_pct(naive_lat, .99):>7.0f}")
        print(f"  (mean group {statistics.mean(group_lat) * 1e6:.0f} µs over {len(group_lat)} commits)")
        store.close()
        naive_db.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    trio.run(main, float(args[0]) if args else 1.0, int(args[1]) if len(args) > 1 else 3)
