"""An `open` left in the outbox by a crash is re-sent at restart only if the chain does not hold it yet.

Two real nodes in-process on one embedded chain. Alice's node is stopped with an `open` row in its outbox
(written as the node writes it), then restarted: if the open was mined before the "crash", the worker
finds it on chain by its salt and does not send it again; if it was not, the worker sends it. Either way
exactly one channel exists.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from eth_account import Account

from channeld.chain import TransactionSender, TxRequest, deploy, load_artifact, start_embedded
from channeld.chain import contract as hub
from channeld.config import ChainConfig, Config, HostPort, NodeConfig
from channeld.keys import NodeKey
from channeld.node import ChainSetup, Node, Operation
from channeld.node._opens import open_salt, salt_block
from channeld.node._records import addr_bytes
from channeld.store import Batch, Namespace, Store

ETH = 10**18
PERIOD = 600


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _config() -> Config:
    return Config(node=NodeConfig(listen=HostPort("127.0.0.1", _port()), api=HostPort("127.0.0.1", _port()),
                                  log_level="warning"), chain=ChainConfig(poll_interval=0.05))


class World:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.backend, funded = start_embedded(accounts=1)
        artifact = load_artifact("ChannelHub")
        self.payer = TransactionSender(self.backend, Account.from_key(funded[0]), artifact.abi)
        deployment = deploy(self.payer, artifact, [60, 10**7])
        self.setup = ChainSetup(self.backend, deployment.address, deployment.block, trio.CapacityLimiter(1))
        self.keys = {name: NodeKey.generate() for name in ("alice", "bob")}
        self.configs = {name: _config() for name in self.keys}
        for key in self.keys.values():
            self.payer.transact(TxRequest(to=key.address, value=10 * ETH, gas=21000))

    @asynccontextmanager
    async def node(self, name: str) -> AsyncIterator[Node]:
        (self.root / name).mkdir(exist_ok=True)
        node = Node(self.root / name, self.configs[name], self.keys[name], self.setup, api=False)
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            yield node
            node.stop()

    def opens(self) -> list[hub.ChannelOpened]:
        found = []
        for log in self.backend.get_logs(self.setup.contract, 0, self.backend.head()):
            event = hub.decode_event({"topics": log.topics, "data": log.data})
            if isinstance(event, hub.ChannelOpened):
                found.append(event)
        return found


def _leave_open_in_outbox(world: World, ns: Namespace, salt: int) -> Operation:
    """What a crash right after queueing leaves behind: the open row, durable, not yet removed."""
    bob = world.keys["bob"].address
    op = Operation("open", (addr_bytes(bob), bytes(20), PERIOD, salt, ETH))
    store = Store.open(world.root / "alice" / "db")
    try:
        store.commit_sync(Batch().enqueue_outbox(ns, op.encode()))
    finally:
        store.close()
    return op


def _mine_open_as_alice(world: World, op: Operation) -> None:
    alice = world.keys["alice"]
    sender = TransactionSender(world.backend, Account.from_key(alice.private_key.secret),
                               load_artifact("ChannelHub").abi)
    data = hub.encode_open_channel(world.keys["bob"].address, hub.ETHER, PERIOD, int(op.args[3]), ETH)
    sender.transact(TxRequest(to=world.setup.contract, data=data, value=ETH))


async def _until(predicate: object, timeout: float = 20.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():  # type: ignore[operator]
            await trio.sleep(0.02)


@pytest.mark.parametrize("mined_before_crash", [True, False])
async def test_a_restart_sends_an_open_only_if_the_chain_lacks_it(tmp_path: Path,
                                                                  mined_before_crash: bool) -> None:
    world = World(tmp_path)
    async with world.node("bob") as bob:
        async with world.node("alice") as alice:
            await alice.connect(bob.uri)  # Alice's store now knows Bob, as before any open
            salt, ns = open_salt(alice.watcher.head), alice.ns
        op = _leave_open_in_outbox(world, ns, salt)
        if mined_before_crash:
            _mine_open_as_alice(world, op)
        async with world.node("alice") as alice:
            await _until(lambda: not list(alice.store.iter_outbox(alice.ns)))
            await _until(lambda: len(alice.channels.channels) == 1)
            statuses = [s.status for s in alice.worker.operations.values() if s.kind == "open"]
            assert statuses == ["skipped" if mined_before_crash else "mined"]
            await _until(lambda: len(bob.channels.channels) == 1)
    assert len(world.opens()) == 1


def test_the_salt_carries_the_block_it_was_queued_at() -> None:
    salts = {open_salt(1234) for _ in range(8)}
    assert len(salts) == 8  # random low bits: two opens in one block never share a channel id
    assert {salt_block(salt) for salt in salts} == {1234}
    with pytest.raises(ValueError):
        open_salt(-1)
