"""The event follower on real anvil: bounded ranges, confirmations, resume, reorgs."""

from __future__ import annotations

import pytest
import trio
from eth_account.signers.local import LocalAccount

from channeld.chain.aio import follow
from channeld.chain.artifact import ContractArtifact
from channeld.chain.backend import ChainBackend
from channeld.chain.deploy import Deployment, deploy
from channeld.chain.errors import ReorgTooDeep
from channeld.chain.follower import EventFollower, FollowerCursor, FollowerUpdate, MemoryCursorStore
from channeld.chain.records import BlockMark, RawLog
from channeld.chain.sender import TransactionSender
from channeld.errors import ConfigError
from tests.chain.conftest import LIMIT
from tests.chain.helpers import ping, ping_id
from tests.tools import Anvil

Fresh = tuple[Anvil, ChainBackend, LocalAccount]


class RecordingSource:
    """The real backend, with every `get_logs` range written down."""

    def __init__(self, backend: ChainBackend) -> None:
        self.backend = backend
        self.ranges: list[tuple[int, int]] = []

    def head(self) -> int:
        return self.backend.head()

    def block_at(self, number: int) -> BlockMark | None:
        return self.backend.block_at(number)

    def get_logs(self, address: str, from_block: int, to_block: int) -> list[RawLog]:
        self.ranges.append((from_block, to_block))
        return self.backend.get_logs(address, from_block, to_block)


class Ledger:
    """A consumer that applies and retracts pings, and refuses to see one twice."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.seen: set[tuple[bytes, int]] = set()
        self.retracted: list[int] = []

    def __call__(self, update: FollowerUpdate) -> None:
        for log in update.retracted:
            self.ids.remove(ping_id(log))
            self.seen.discard(log.identity)
            self.retracted.append(ping_id(log))
        for log in update.applied:
            assert log.identity not in self.seen, "a log was applied twice"
            self.seen.add(log.identity)
            self.ids.append(ping_id(log))


def pings(backend: ChainBackend, sender: TransactionSender, address: str, *ids: int) -> None:
    for ping_number in ids:
        sender.transact(ping(address, ping_number))


def test_ranges_are_bounded_and_start_at_the_deploy_block(
    backend: ChainBackend, account: LocalAccount, emitter: Deployment
) -> None:
    sender = TransactionSender(backend, account)
    pings(backend, sender, emitter.address, 1, 2)
    backend.mine(20)
    source = RecordingSource(backend)
    ledger = Ledger()
    follower = EventFollower(source, emitter.address, MemoryCursorStore(), emitter.block, max_range=10)
    follower.catch_up(ledger)
    head = backend.head()
    starts = list(range(emitter.block, head + 1, 10))
    assert source.ranges == [(start, min(start + 9, head)) for start in starts]
    assert ledger.ids == [1, 2]


def test_logs_wait_for_confirmations(
    backend: ChainBackend, account: LocalAccount, emitter: Deployment
) -> None:
    sender = TransactionSender(backend, account)
    ledger = Ledger()
    follower = EventFollower(backend, emitter.address, MemoryCursorStore(), emitter.block, confirmations=3)
    pings(backend, sender, emitter.address, 7)
    follower.catch_up(ledger)
    backend.mine(2)
    follower.catch_up(ledger)
    assert ledger.ids == []
    backend.mine(1)
    follower.catch_up(ledger)
    assert ledger.ids == [7]


def test_resume_from_a_stored_cursor_misses_nothing_and_repeats_nothing(
    backend: ChainBackend, account: LocalAccount, emitter: Deployment
) -> None:
    sender = TransactionSender(backend, account)
    store = MemoryCursorStore()
    ledger = Ledger()
    pings(backend, sender, emitter.address, 1, 2)
    EventFollower(backend, emitter.address, store, emitter.block, max_range=3).catch_up(ledger)
    pings(backend, sender, emitter.address, 3)
    assert store.cursor is not None
    restored = MemoryCursorStore(FollowerCursor.from_json(store.cursor.to_json()))
    source = RecordingSource(backend)
    EventFollower(source, emitter.address, restored, emitter.block, max_range=3).catch_up(ledger)
    assert ledger.ids == [1, 2, 3]
    assert source.ranges[0][0] == store.cursor.position.number + 1


def test_reorg_retracts_reverted_logs_and_applies_the_new_chain_once(
    fresh: Fresh, emitter_artifact: ContractArtifact
) -> None:
    _, backend, account = fresh
    sender = TransactionSender(backend, account)
    deployment = deploy(sender, emitter_artifact, [LIMIT])
    ledger = Ledger()
    follower = EventFollower(backend, deployment.address, MemoryCursorStore(), deployment.block)
    pings(backend, sender, deployment.address, 1)
    snapshot = backend.rpc("evm_snapshot")
    pings(backend, sender, deployment.address, 2, 3)
    follower.catch_up(ledger)
    assert ledger.ids == [1, 2, 3]
    assert backend.rpc("evm_revert", [snapshot]) is True
    restarted = TransactionSender(backend, account)
    pings(backend, restarted, deployment.address, 4)
    backend.mine(3)  # the new chain is longer than the old one
    follower.catch_up(ledger)
    assert ledger.retracted == [3, 2]
    assert ledger.ids == [1, 4]
    follower.catch_up(ledger)
    assert ledger.ids == [1, 4]


def test_reorg_within_the_confirmation_depth_retracts_nothing(
    fresh: Fresh, emitter_artifact: ContractArtifact
) -> None:
    _, backend, account = fresh
    sender = TransactionSender(backend, account)
    deployment = deploy(sender, emitter_artifact, [LIMIT])
    ledger = Ledger()
    follower = EventFollower(backend, deployment.address, MemoryCursorStore(), deployment.block,
                             confirmations=3)
    snapshot = backend.rpc("evm_snapshot")
    pings(backend, sender, deployment.address, 1)
    follower.catch_up(ledger)
    backend.rpc("evm_revert", [snapshot])
    pings(backend, TransactionSender(backend, account), deployment.address, 2)
    backend.mine(3)
    follower.catch_up(ledger)
    assert (ledger.ids, ledger.retracted) == ([2], [])


def test_reorg_deeper_than_the_window_is_an_error(fresh: Fresh, emitter_artifact: ContractArtifact) -> None:
    _, backend, account = fresh
    sender = TransactionSender(backend, account)
    deployment = deploy(sender, emitter_artifact, [LIMIT])
    snapshot = backend.rpc("evm_snapshot")
    pings(backend, sender, deployment.address, 1)
    backend.mine(6)
    follower = EventFollower(backend, deployment.address, MemoryCursorStore(), deployment.block,
                             reorg_window=2)
    follower.catch_up(Ledger())
    backend.rpc("evm_revert", [snapshot])
    backend.mine(12)
    with pytest.raises(ReorgTooDeep):
        follower.catch_up(Ledger())


def test_bad_settings_are_refused(backend: ChainBackend) -> None:
    with pytest.raises(ConfigError):
        EventFollower(backend, "0x" + "00" * 20, MemoryCursorStore(), 0, max_range=0)


def test_malformed_stored_cursor_is_refused() -> None:
    with pytest.raises(ConfigError, match="cursor"):
        FollowerCursor.from_json('{"position": [1]}')


async def test_trio_follow_delivers_new_logs(
    backend: ChainBackend, account: LocalAccount, emitter: Deployment
) -> None:
    sender = TransactionSender(backend, account)
    store = MemoryCursorStore()
    follower = EventFollower(backend, emitter.address, store, emitter.block)
    received: list[int] = []
    done = trio.Event()

    async def handler(update: FollowerUpdate) -> None:
        received.extend(ping_id(log) for log in update.applied)
        if len(received) == 2:
            done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(follow, follower, handler, 0.05)
        await trio.to_thread.run_sync(pings, backend, sender, emitter.address, 10, 11)
        with trio.fail_after(10):
            await done.wait()
        nursery.cancel_scope.cancel()
    assert received == [10, 11]
    assert store.cursor is not None and store.cursor.position.number >= emitter.block
