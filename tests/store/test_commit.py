"""Durable commits: atomic batches, group commit under concurrency, trio and thread callers."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import trio

from channeld.store import (
    AuditRecord,
    Batch,
    ChainCursor,
    Direction,
    InvalidRecord,
    Store,
)
from tests.store.helpers import NS, OTHER_NS, cid


def _audit(n: int) -> AuditRecord:
    return AuditRecord(NS, cid(n), b"\x07" * 20, "payment_received", n)


def test_batch_with_every_table_is_readable_after_commit(store: Store) -> None:
    peer = b"\x02" + b"\x33" * 32
    batch = (Batch().put_channel(NS, cid(1), b"chan").put_proof(NS, cid(1), Direction.OUTGOING, b"ours")
             .put_proof(NS, cid(1), Direction.INCOMING, b"theirs").put_lock(NS, cid(1), cid(9), b"lock")
             .put_payment(NS, cid(5), b"pay").put_peer(peer, b"host:9735")
             .set_chain_cursor(NS, ChainCursor(120, b"\xab" * 32)))
    store.commit_sync(batch)
    assert store.get_channel(NS, cid(1)) == b"chan"
    assert store.get_proof(NS, cid(1), Direction.OUTGOING) == b"ours"
    assert store.get_proof(NS, cid(1), Direction.INCOMING) == b"theirs"
    assert list(store.iter_locks(NS, cid(1))) == [(cid(9), b"lock")]
    assert store.get_payment(NS, cid(5)) == b"pay"
    assert list(store.iter_payments(NS)) == [(cid(5), b"pay")]
    assert list(store.iter_peers()) == [(peer, b"host:9735")]
    assert store.get_chain_cursor(NS) == ChainCursor(120, b"\xab" * 32)


def test_namespaces_keep_channels_apart(store: Store) -> None:
    store.commit_sync(Batch().put_channel(NS, cid(1), b"a").put_channel(OTHER_NS, cid(1), b"b"))
    assert store.get_channel(NS, cid(1)) == b"a"
    assert store.get_channel(OTHER_NS, cid(1)) == b"b"
    assert list(store.iter_channels(OTHER_NS)) == [(cid(1), b"b")]
    assert store.namespaces() == [OTHER_NS, NS]  # chain 1 sorts before chain 31337


def test_newest_proof_replaces_the_older_one(store: Store) -> None:
    for nonce in range(1, 6):
        store.commit_sync(Batch().put_proof(NS, cid(1), Direction.OUTGOING, b"nonce %d" % nonce))
    assert store.get_proof(NS, cid(1), Direction.OUTGOING) == b"nonce 5"
    store.commit_sync(Batch().delete_proof(NS, cid(1), Direction.OUTGOING).delete_lock(NS, cid(1), cid(2)))
    assert store.get_proof(NS, cid(1), Direction.OUTGOING) is None


def test_invalid_input_is_refused_before_anything_is_queued(store: Store) -> None:
    batch = Batch().put_channel(NS, cid(1), b"fine")
    with pytest.raises(InvalidRecord):
        batch.put_channel(NS, b"short", b"x")
    with pytest.raises(InvalidRecord):
        batch.put_channel(NS, cid(2), "not bytes")  # type: ignore[arg-type]
    with pytest.raises(InvalidRecord):
        batch.put_payment(NS, cid(3), b"x" * ((1 << 20) + 1))
    with pytest.raises(InvalidRecord):
        batch.put_peer(b"\x04" + b"\x00" * 32, b"uncompressed key")
    assert len(batch) == 1
    store.commit_sync(batch)
    assert list(store.iter_channels(NS)) == [(cid(1), b"fine")]


def test_outbox_seqs_are_assigned_at_commit_and_survive_reopen(store_path: Path) -> None:
    with Store.open(store_path) as store:
        receipt = store.commit_sync(Batch().enqueue_outbox(NS, b"tx-a").enqueue_outbox(OTHER_NS, b"tx-b"))
        assert receipt.outbox_seqs == (0, 1)
        store.commit_sync(Batch().remove_outbox(NS, 0))
    with Store.open(store_path) as store:
        assert store.commit_sync(Batch().enqueue_outbox(NS, b"tx-c")).outbox_seqs == (2,)
        assert list(store.iter_outbox(NS)) == [(2, b"tx-c")]
        assert list(store.iter_outbox(OTHER_NS)) == [(1, b"tx-b")]


async def test_concurrent_trio_commits_are_grouped_and_all_durable(store_path: Path) -> None:
    store = Store.open(store_path)
    receipts = {}

    async def commit(n: int) -> None:
        batch = Batch().put_channel(NS, cid(n), b"v%d" % n).append_audit(_audit(n))
        receipts[n] = await store.commit(batch)

    async with trio.open_nursery() as nursery:
        for n in range(300):
            nursery.start_soon(commit, n)
    stats = store.statistics()
    store.close()
    assert stats.commits == 300 and stats.groups < 300 and stats.largest_group > 1
    # Audit seqs form one gap-free chain across all groups.
    assert sorted(r.audit_seqs[0] for r in receipts.values()) == list(range(300))
    with Store.open(store_path) as reopened:
        assert {c: v for c, v in reopened.iter_channels(NS)} == {cid(n): b"v%d" % n for n in range(300)}
        assert reopened.verify_audit().ok


async def test_trio_and_thread_committers_share_one_writer(store: Store) -> None:
    def thread_commits(offset: int) -> None:
        for n in range(offset, offset + 50):
            store.commit_sync(Batch().put_channel(NS, cid(n), b"t").append_audit(_audit(n)))

    threads = [threading.Thread(target=thread_commits, args=(1000 * t,)) for t in (1, 2)]
    for thread in threads:
        thread.start()
    async with trio.open_nursery() as nursery:
        for n in range(100):
            nursery.start_soon(store.commit, Batch().put_channel(NS, cid(n), b"x").append_audit(_audit(n)))
    for thread in threads:
        thread.join()
    assert len(list(store.iter_channels(NS))) == 200
    verdict = store.verify_audit()
    assert verdict.ok and verdict.entries == 200


async def test_cancel_before_queueing_writes_nothing(store: Store) -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        await store.commit(Batch().put_channel(NS, cid(1), b"x"))
    assert scope.cancelled_caught
    assert store.get_channel(NS, cid(1)) is None


async def test_cancel_while_waiting_still_delivers_the_outcome(store: Store) -> None:
    scope = trio.CancelScope()
    receipts = []

    async def committer(task_status: trio.TaskStatus[None]) -> None:
        with scope:
            task_status.started()
            # Runs on until it blocks inside commit, i.e. after the batch is queued.
            receipts.append(await store.commit(Batch().put_channel(NS, cid(1), b"x").append_audit(_audit(1))))

    async with trio.open_nursery() as nursery:
        await nursery.start(committer)
        scope.cancel()
    assert [r.audit_seqs for r in receipts] == [(0,)]
    assert store.get_channel(NS, cid(1)) == b"x"


def test_audit_timestamps_come_from_the_clock_and_never_go_back(store_path: Path) -> None:
    times = iter([1000.0, 999.0, 1002.5])
    with Store.open(store_path, clock=lambda: next(times)) as store:
        for n in range(3):
            store.commit_sync(Batch().append_audit(_audit(n)))
        assert [e.timestamp_ms for e in store.iter_audit()] == [1_000_000, 1_000_000, 1_002_500]


async def test_submitted_batches_become_durable_in_submission_order(store: Store) -> None:
    # One channel pipelining: state n + 1 is queued before state n is durable; the newest wins.
    pending = [store.submit(Batch().put_proof(NS, cid(1), Direction.OUTGOING, b"nonce %d" % n)
                            .append_audit(_audit(n))) for n in range(1, 201)]
    receipts = [await p.wait_durable() for p in pending]
    assert [r.audit_seqs for r in receipts] == [(n,) for n in range(200)]
    assert all(p.is_durable() for p in pending)
    assert await pending[0].wait_durable() == receipts[0]  # waiting again is fine
    assert store.get_proof(NS, cid(1), Direction.OUTGOING) == b"nonce 200"


async def test_cancelling_a_wait_does_not_cancel_the_submitted_write(store: Store) -> None:
    pending = store.submit(Batch().put_channel(NS, cid(1), b"x"))
    with trio.CancelScope() as scope:
        scope.cancel()
        await pending.wait_durable()
    assert scope.cancelled_caught
    await pending.wait_durable()
    assert store.get_channel(NS, cid(1)) == b"x"


def test_store_size_follows_channels_not_payment_history(store_path: Path) -> None:
    def key_count(store: Store) -> int:
        return sum(1 for _ in store._db.iterator(include_value=False))

    def pay(store: Store, n: int) -> None:
        # In flight: the payment record and a lock; settled: both gone, history in the audit log.
        store.commit_sync(Batch().put_payment(NS, cid(n), b"pending").put_lock(NS, cid(1), cid(n), b"lock")
                          .put_proof(NS, cid(1), Direction.OUTGOING, b"nonce %d locked" % n))
        store.commit_sync(Batch().delete_payment(NS, cid(n)).delete_lock(NS, cid(1), cid(n))
                          .put_proof(NS, cid(1), Direction.OUTGOING, b"nonce %d" % n)
                          .append_audit(_audit(n)))

    with Store.open(store_path) as store:
        store.commit_sync(Batch().put_channel(NS, cid(1), b"open"))
        pay(store, 0)
    with Store.open(store_path) as store:
        after_one = key_count(store)
        for n in range(1, 300):
            pay(store, n)
    with Store.open(store_path) as store:
        # History went to the audit log's segments; the store kept one row per channel and direction.
        assert key_count(store) == after_one
        assert store.verify_audit().entries == 300
        store.prune_audit(older_than_ms=2**62)
        assert key_count(store) == after_one + 1  # the prune checkpoint
        assert store.verify_audit().ok


def test_closed_store_on_disk_is_the_size_of_its_live_rows(store_path: Path) -> None:
    """LevelDB keeps overwritten rows in its log and young levels; the store compacts them at close, so
    the directory (the audit log aside) does not grow with payments."""
    def state_bytes() -> int:
        return sum(f.stat().st_size for f in store_path.rglob("*") if f.is_file() and "audit" not in f.parts)

    def pay(store: Store, n: int) -> None:
        store.commit_sync(Batch().put_channel(NS, cid(1), b"c%05d" % n * 100)
                          .put_proof(NS, cid(1), Direction.OUTGOING, b"p%05d" % n * 40)
                          .append_audit(_audit(n)))

    with Store.open(store_path) as store:
        pay(store, 0)
    after_one = state_bytes()
    with Store.open(store_path) as store:
        for n in range(1, 1500):
            pay(store, n)
        assert state_bytes() > after_one + 500_000  # 1,500 rows of 800 bytes and their frames, uncompacted
    assert state_bytes() < after_one + 16_384
