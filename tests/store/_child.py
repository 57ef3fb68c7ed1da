"""A separate process that uses a store, for the tests that need a real second process.

Modes (argv[1]):
  commit-loop DIR RUN   trio, 16 committers; after each commit returns, print "RUN:worker:n".
  commit-loop-unsynced DIR RUN   the same, with the audit log never fsynced by the writer (every
                        round stays a pending key in the store: what a power cut could lose).
  hold DIR              open the store, print "ready", wait to be killed.
  fill DIR LIMIT        cap file sizes at LIMIT bytes, commit until the disk "fills", print acks
                        ("ack n") and then "error <ErrorClass>" twice (the failure and the retry).
  readonly DIR          drop root (setuid nobody) if root, then try to open; print the error class.
Every batch writes the same value under three keys (channel, both proofs), so a reader can check
that each batch is there in full or not at all.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import time

import trio

from channeld.store import Batch, Direction, Namespace, Store, StoreError, _auditlog
from channeld.store._audit import AuditRecord

NS = Namespace(31337, bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))
WORKERS = 16


def triple(channel_id: bytes, value: bytes) -> Batch:
    return (Batch().put_channel(NS, channel_id, value)
            .put_proof(NS, channel_id, Direction.OUTGOING, value)
            .put_proof(NS, channel_id, Direction.INCOMING, value))


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


async def commit_loop(store: Store, run: int) -> None:
    async def worker(w: int) -> None:
        for n in range(10**9):
            channel_id = bytes([run, w]) + n.to_bytes(30, "big")
            batch = triple(channel_id, b"%d:%d:%d" % (run, w, n) * 20)
            batch.append_audit(AuditRecord(NS, channel_id, b"\x01" * 20, "payment_sent", -n))
            await store.commit(batch)
            say(f"{run}:{w}:{n}")

    async with trio.open_nursery() as nursery:
        for w in range(WORKERS):
            nursery.start_soon(worker, w)


def fill(store: Store, limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG from write() instead of a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    failures = 0
    for n in range(10**9):
        try:
            store.commit_sync(triple(n.to_bytes(32, "big"), b"%d" % n * 100))
        except StoreError as exc:
            say(f"error {type(exc).__name__} {exc}")
            failures += 1
            if failures == 2:
                return
        else:
            say(f"ack {n}")


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "readonly":
        if os.geteuid() == 0:
            os.setuid(65534)
        try:
            Store.open(path).close()
        except StoreError as exc:
            say(f"{type(exc).__name__} {exc}")
        else:
            say("opened")
        return
    if mode == "commit-loop-unsynced":
        _auditlog.SYNC_INTERVAL = 10**9
        mode = "commit-loop"
    store = Store.open(path)
    if mode == "commit-loop":
        trio.run(commit_loop, store, int(sys.argv[3]))
    elif mode == "hold":
        say("ready")
        time.sleep(600)
    elif mode == "fill":
        fill(store, int(sys.argv[3]))
    store.close()


if __name__ == "__main__":
    main()
