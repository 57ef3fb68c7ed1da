"""Benchmark of reading history: the newest 100 payments after N payments, whole-log walk vs newest first.

Not a test. Run: .venv/bin/python tests/store/bench_history.py [N [data-root]]
"Before" is what `GET /payments` did until session 3 (decode every entry oldest first, keep the last
100); "after" is `NodeOperations._payments_newest_first` (the route's work, off the trio loop). Both are
measured in one run on the same store; CPU seconds (process time) lead, wall seconds follow.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from channeld.node._ops import NodeOperations
from channeld.store import AuditRecord, Batch, Namespace, Store

NS = Namespace(31337, b"\x42" * 20)
ROUND = 2_000
PAGE = 100


def _fill(store: Store, count: int) -> None:
    for base in range(0, count, ROUND):
        batch = Batch()
        for n in range(base, min(base + ROUND, count)):
            batch.append_audit(AuditRecord(NS, (n % 50).to_bytes(32, "big"), b"\x07" * 20, "payment_sent",
                                           -(n + 1), proof_hash=n.to_bytes(32, "big"),
                                           payment_id=n.to_bytes(32, "big")))
        store.commit_sync(batch)


def _whole_walk(store: Store) -> list[int]:
    found = [e.seq for e in store.iter_audit() if e.record.kind in ("payment_sent", "payment_received")]
    return found[-PAGE:]


def _newest_first(store: Store) -> list[int]:
    rows = NodeOperations._payments_newest_first(store, {NS: "local"}, PAGE, None, None, None)
    return [row["seq"] for row in rows]


def _timed(read: Callable[[Store], list[int]], store: Store) -> tuple[float, float, list[int]]:
    cpu, wall = time.process_time(), time.perf_counter()
    found = read(store)
    return time.process_time() - cpu, time.perf_counter() - wall, found


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    root = sys.argv[2] if len(sys.argv) > 2 else "/dev/shm"
    with tempfile.TemporaryDirectory(dir=root) as tmp, Store.open(Path(tmp) / "data") as store:
        _fill(store, count)
        segments = len(list((Path(tmp) / "data" / "audit").glob("*.seg")))
        print(f"{count} payments in {segments} segment(s)")
        for name, read in (("whole walk (before)", _whole_walk), ("newest first, cold index", _newest_first),
                           ("newest first, warm", _newest_first)):
            cpu, wall, found = _timed(read, store)
            assert found == list(range(count - PAGE, count)), name
            print(f"{name:28s} cpu {cpu * 1e3:9.1f} ms   wall {wall * 1e3:9.1f} ms")
        middle = count // 2
        cpu, wall, found = _timed(lambda s: [row["seq"] for row in NodeOperations._payments_newest_first(
            s, {NS: "local"}, PAGE, middle, None, None)], store)
        assert found == list(range(middle - PAGE, middle))
        print(f"{'a page at a mid-log cursor':28s} cpu {cpu * 1e3:9.1f} ms   wall {wall * 1e3:9.1f} ms")

if __name__ == "__main__":
    main()
