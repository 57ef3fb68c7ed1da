"""End to end on anvil: the tower is a separate process (`channeld watchtower run`, the real command),
Alice and Bob are keys driving the chain binding and the protocol signer directly."""

from __future__ import annotations

import time
from pathlib import Path

import trio

from channeld.chain import TxRequest
from channeld.chain.contract import (
    BalanceProofUpdated,
    OnChainChannel,
    apply_event,
    decode_event,
    encode_close_channel,
)
from channeld.store import Namespace
from channeld.watchtower import TowerDB
from channeld.watchtower.client import TowerClient
from tests.tools import Anvil, free_port
from tests.watchtower.kit import (
    Chain,
    Party,
    TowerProcess,
    mine_at_high_base_fee,
    mined_nonce,
    pooled,
    sign_proof,
    tower_datadir,
)

PERIOD = 600  # seconds of challenge; the test moves anvil's clock instead of waiting
DEPOSIT = 10**18
PAYMENTS = 40


def _setup(anvil: Anvil) -> tuple[Chain, Party, Party, Party, OnChainChannel]:
    chain = Chain(anvil.url)
    alice, bob, tower = Party.new(), Party.new(), Party.new()
    chain.fund(alice.address)
    chain.fund(tower.address)
    return chain, alice, bob, tower, chain.open(alice, bob, DEPOSIT, PERIOD)


def _payments(chain: Chain, alice: Party, channel: OnChainChannel, first: int, last: int,
              paid: int) -> tuple[list, int]:
    """Alice's signed proofs for payments `first`..`last` (payment n pays n * 10**15 wei)."""
    proofs = []
    for nonce in range(first, last + 1):
        paid += nonce * 10**15
        proofs.append(sign_proof(chain.chain_id, chain.contract_bytes, channel.channel_id, alice.signer,
                                 nonce, paid))
    return proofs, paid


async def _wait_for_update(chain: Chain, channel: OnChainChannel, since: int, timeout: float
                           ) -> tuple[BalanceProofUpdated, bytes]:
    with trio.fail_after(timeout):
        while True:
            for log in chain.backend.get_logs(chain.contract, since, chain.backend.head()):
                event = decode_event({"topics": log.topics, "data": log.data})
                if isinstance(event, BalanceProofUpdated) and event.channel_id == channel.channel_id:
                    return event, log.tx_hash
            await trio.sleep(0.05)


def _settle_and_check(chain: Chain, alice: Party, bob: Party, channel: OnChainChannel,
                      update: BalanceProofUpdated, paid: int) -> None:
    channel = apply_event(channel, update)
    before = chain.backend.balance(bob.address)
    chain.backend.advance_time(PERIOD + 1)
    chain.settle(alice, channel)
    # Bob sent nothing himself: his balance grew by exactly what Alice paid him off-chain
    assert chain.backend.balance(bob.address) - before == paid


async def _push_and_sync(client: TowerClient, proofs: list) -> None:
    for proof in proofs:
        client.push(proof)  # after each received payment; returns at once
    with trio.fail_after(30):
        await client.wait_synced()


async def test_tower_disputes_a_stale_close_and_bob_receives_everything(anvil: Anvil, tmp_path: Path) -> None:
    chain, alice, bob, tower_party, channel = _setup(anvil)
    tower = TowerProcess(tower_datadir(tmp_path, tower_party), chain, free_port())
    try:
        client = TowerClient(tower.uri, bob.node_key, chain.chain_id, chain.contract_bytes)
        proofs, paid = _payments(chain, alice, channel, 1, PAYMENTS, 0)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.run)
            await _push_and_sync(client, proofs)
            assert client.statistics().accepted >= 1
            nursery.cancel_scope.cancel()  # Bob goes away
        # Alice closes claiming she never paid (her own proof is not hers to submit)
        channel, closed = chain.close(alice, channel, None)
        started = time.monotonic()
        update, tx_hash = await _wait_for_update(chain, channel, closed.block_number, timeout=20)
        elapsed = time.monotonic() - started
        assert (update.nonce, update.transferred_amount) == (PAYMENTS, paid)
        receipt = chain.backend.receipt(tx_hash)
        assert receipt is not None and receipt.succeeded
        print(f"\nclose -> dispute confirmed: {elapsed:.2f} s; dispute gas {receipt.gas_used}")
        assert elapsed < 10
        _settle_and_check(chain, alice, bob, channel, update, paid)
    finally:
        tower.stop()


async def test_tower_killed_twice_still_disputes_in_time(anvil: Anvil, tmp_path: Path) -> None:
    chain, alice, bob, tower_party, channel = _setup(anvil)
    datadir = tower_datadir(tmp_path, tower_party)
    port = free_port()
    tower = TowerProcess(datadir, chain, port)
    client = TowerClient(tower.uri, bob.node_key, chain.chain_id, chain.contract_bytes)
    first, paid = _payments(chain, alice, channel, 1, PAYMENTS // 2, 0)
    rest, paid = _payments(chain, alice, channel, PAYMENTS // 2 + 1, PAYMENTS, paid)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.run)
            await _push_and_sync(client, first)
            tower.kill()  # mid-stream: Bob's client keeps the newer proofs and redials
            for proof in rest:
                client.push(proof)
            assert not client.is_synced()
            tower = TowerProcess(datadir, chain, port)
            await _push_and_sync(client, [])
            assert client.statistics().connects >= 2
            nursery.cancel_scope.cancel()
        tower.kill()  # down when Alice closes: it must catch up from its stored cursor
        channel, closed = chain.close(alice, channel, None)
        await trio.sleep(1.0)
        tower = TowerProcess(datadir, chain, port)
        update, _ = await _wait_for_update(chain, channel, closed.block_number, timeout=20)
        assert (update.nonce, update.transferred_amount) == (PAYMENTS, paid)
        _settle_and_check(chain, alice, bob, channel, update, paid)
    finally:
        tower.stop()


def _updates(chain: Chain, channel: OnChainChannel) -> list[tuple[BalanceProofUpdated, bytes, int]]:
    found = []
    for log in chain.backend.get_logs(chain.contract, 0, chain.backend.head()):
        event = decode_event({"topics": log.topics, "data": log.data})
        if isinstance(event, BalanceProofUpdated) and event.channel_id == channel.channel_id:
            found.append((event, log.tx_hash, log.block_number))
    return found


async def _wait_for(predicate: object, what: str, timeout: float = 30) -> object:
    with trio.fail_after(timeout):
        while not (found := predicate()):  # type: ignore[operator]
            await trio.sleep(0.05)
    assert found, what
    return found


async def test_tower_killed_with_its_dispute_in_the_pool_takes_it_back_and_bumps_it(
    fresh_anvil: Anvil, tmp_path: Path,
) -> None:
    chain, alice, bob, tower_party, channel = _setup(fresh_anvil)
    datadir, port, margin = tower_datadir(tmp_path, tower_party), free_port(), 30
    flags = ("--bump-after", "1", "--safety-margin", str(margin))
    tower = TowerProcess(datadir, chain, port, flags)
    proofs, paid = _payments(chain, alice, channel, 1, 5, 0)
    try:
        client = TowerClient(tower.uri, bob.node_key, chain.chain_id, chain.contract_bytes)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.run)
            await _push_and_sync(client, proofs)
            nursery.cancel_scope.cancel()
        backend = chain.backend
        backend.rpc("evm_setAutomine", [False])  # from here on a block is mined only when the test says
        chain.sender(alice).submit(TxRequest(chain.contract, encode_close_channel(channel.channel_id,
                                                                                  channel.state)))
        backend.mine()
        closed_at = backend.timestamp()
        first = await _wait_for(lambda: pooled(backend, tower_party.address),
                                "the tower's dispute in the pool")
        ((nonce, first_hash),) = first.items()  # type: ignore[attr-defined]
        tower.kill()  # SIGKILL between submission and confirmation
        tower = TowerProcess(datadir, chain, port, flags)
        # no block for a while: a tower that forgot its transaction would now queue a second dispute
        # behind it (the pool counts the first); one that took it back bumps it at the same nonce
        await trio.sleep(2.5)
        with trio.fail_after(60):
            while not _updates(chain, channel):
                mine_at_high_base_fee(backend)
                await trio.sleep(0.3)
        ((update, tx_hash, block),) = _updates(chain, channel)
        assert (update.nonce, update.transferred_amount) == (5, paid)
        # the taken-back transaction was re-sent with the same nonce: no second dispute, no wasted nonce
        assert tx_hash != first_hash and backend.receipt(first_hash) is None
        assert mined_nonce(backend, tower_party.address) == nonce + 1
        assert pooled(backend, tower_party.address) == {}
        block_time = int(backend.rpc("eth_getBlockByNumber", [hex(block), False])["timestamp"], 16)
        assert block_time <= closed_at + PERIOD - margin
        await _wait_for(lambda: "done" in tower.log_path.read_text(), "the tower to close the dispute")
    finally:
        tower.stop()
    db = TowerDB(datadir / "watchtower" / "db", Namespace(chain.chain_id, chain.contract_bytes))
    try:
        assert list(db.iter_flights()) == [] and list(db.iter_disputes()) == []
    finally:
        db.close()
