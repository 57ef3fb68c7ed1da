"""An `open` left in the outbox by a crash is re-sent at restart only if the chain does not hold it yet.

Two real nodes in-process on one embedded chain. Alice's node is stopped with an `open` row in its outbox
(written as the node writes it), then restarted: if the open was mined before the "crash", the worker
finds it on chain by its salt and does not send it again; if it was not, the worker sends it. Either way
exactly one channel exists.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from channeld.chain import TransactionSender, TxRequest, load_artifact
from channeld.chain import contract as hub
from channeld.node import Operation
from channeld.node._opens import open_salt, salt_block
from channeld.node._records import addr_bytes
from channeld.store import Batch, Namespace, Store
from tests.node.embedded import ETH, World, until

PERIOD = 600


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
            await until(lambda: not list(alice.store.iter_outbox(alice.ns)))
            await until(lambda: len(alice.channels.channels) == 1)
            statuses = [s.status for s in alice.worker.operations.values() if s.kind == "open"]
            assert statuses == ["skipped" if mined_before_crash else "mined"]
            await until(lambda: len(bob.channels.channels) == 1)
    assert len(world.opens()) == 1


def test_the_salt_carries_the_block_it_was_queued_at() -> None:
    salts = {open_salt(1234) for _ in range(8)}
    assert len(salts) == 8  # random low bits: two opens in one block never share a channel id
    assert {salt_block(salt) for salt in salts} == {1234}
    with pytest.raises(ValueError):
        open_salt(-1)
