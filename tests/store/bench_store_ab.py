"""A/B of the store: CPU per pipelined payment, bytes on disk and reopen time, for the store of a given tree.

Not a test. Run each tree in turn, alternating, so both meet the same load:
    git archive HEAD channeld | tar -x -C /tmp/head
    for t in /tmp/head . /tmp/head .; do .venv/bin/python tests/store/bench_store_ab.py $t 30000; done
Each payment is one batch: a 600-byte channel row, a 200-byte proof and an audit entry, 64 in flight, on
16 channels, in a temporary directory on tmpfs (the disk's fsync time out of the figure).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

WINDOW = 64


def _bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(tree: Path, payments: int) -> None:
    sys.path.insert(0, str(tree.resolve()))
    import trio

    import channeld.store as store_module
    from channeld.store import AuditRecord, Batch, Direction, Namespace, PendingCommit, Store

    ns = Namespace(31337, b"\x42" * 20)

    async def pay(store: Store) -> None:
        in_flight: list[PendingCommit] = []
        for n in range(payments):
            cid = (n % 16).to_bytes(32, "big")
            in_flight.append(store.submit(
                Batch().put_channel(ns, cid, b"c" * 600).put_proof(ns, cid, Direction.OUTGOING, b"p" * 200)
                .append_audit(AuditRecord(ns, cid, b"\x07" * 20, "payment_received", n + 1,
                                          n.to_bytes(32, "big"), (n + 1).to_bytes(32, "big")))))
            if len(in_flight) >= WINDOW:
                await in_flight.pop(0).wait_durable()
        for pending in in_flight:
            await pending.wait_durable()

    root = Path(tempfile.mkdtemp(dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    try:
        path = root / "db"
        store = Store.open(path)
        cpu, wall = time.process_time(), time.perf_counter()
        trio.run(pay, store)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        store.close()
        opened = time.perf_counter()
        store = Store.open(path)
        opened = time.perf_counter() - opened
        verdict = store.verify_audit()
        store.close()
        print(f"{Path(store_module.__file__).parent}: {1e6 * cpu / payments:.1f} µs CPU per payment, "
              f"{payments / wall:,.0f}/s, {_bytes(path) / payments:.1f} bytes per payment closed, "
              f"reopen {1000 * opened:.0f} ms, audit ok={verdict.ok} entries={verdict.entries}")
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 30_000)
