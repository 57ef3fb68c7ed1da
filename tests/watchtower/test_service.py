"""The tower in-process on a real anvil and real sockets: good clients served, bad ones refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import coincurve
import trio

from channeld.chain import AsyncSender, EventFollower, TxRequest
from channeld.chain.contract import OnChainChannel, encode_close_channel
from channeld.chain.sender import FeePolicy
from channeld.store import Namespace
from channeld.transport import Session, connect, establish_session
from channeld.watchtower import RefusalCode, TowerDB, TowerSettings, Watchtower
from channeld.watchtower.client import TowerClient, authorize
from channeld.wire import PROTOCOL_VERSION, BalanceProof, Init, Message, ProofQuery, ProofStatus, PushProof
from tests.tools import Anvil
from tests.watchtower.kit import Chain, Party, sign_proof


@dataclass
class Setup:
    chain: Chain
    alice: Party
    bob: Party
    channel: OnChainChannel
    tower: Watchtower
    uri: str

    def proof(self, nonce: int, amount: int, signer: Party | None = None) -> BalanceProof:
        return sign_proof(self.chain.chain_id, self.chain.contract_bytes, self.channel.channel_id,
                          (signer or self.alice).signer, nonce, amount)


@asynccontextmanager
async def running_tower(anvil: Anvil, path: Path, bump_after: float = 12.0) -> AsyncIterator[Setup]:
    chain = Chain(anvil.url)
    alice, bob, tower_party = Party.new(), Party.new(), Party.new()
    chain.fund(alice.address)
    chain.fund(tower_party.address)
    channel = chain.open(alice, bob, 10**18, 600)
    db = TowerDB(path / "db", Namespace(chain.chain_id, chain.contract_bytes))
    settings = TowerSettings(poll_interval=0.1)
    sender = AsyncSender(chain.sender(tower_party, FeePolicy(bump_after=bump_after)))
    tower = Watchtower(db, tower_party.node_key, settings, chain.backend, sender, chain.deployment.block)
    follower = EventFollower(chain.backend, chain.contract, db, chain.deployment.block)
    try:
        async with trio.open_nursery() as nursery:
            port = await nursery.start(tower.run, follower, "127.0.0.1", 0)
            yield Setup(chain, alice, bob, channel, tower, f"{tower.node_id.hex()}@127.0.0.1:{port}")
            nursery.cancel_scope.cancel()
    finally:
        db.close()


async def open_session(setup: Setup, key: coincurve.PrivateKey) -> Session:
    connection = await connect(setup.uri, key)
    init = Init(PROTOCOL_VERSION, b"", setup.chain.chain_id, setup.chain.contract_bytes)
    return await establish_session(connection, init)


async def ask(session: Session, message: Message) -> Message:
    await session.send(message)
    with trio.fail_after(5):
        return await session.receive()


async def test_bad_pushes_are_refused_store_nothing_and_others_are_served(
    anvil: Anvil, tmp_path: Path,
) -> None:
    async with running_tower(anvil, tmp_path) as setup, trio.open_nursery() as nursery:
        good = TowerClient(setup.uri, setup.bob.node_key, setup.chain.chain_id, setup.chain.contract_bytes)
        nursery.start_soon(good.run)
        good.push(setup.proof(5, 500))
        with trio.fail_after(10):
            await good.wait_synced()

        mallory = Party.new()
        session = await open_session(setup, mallory.node_key)
        nursery.start_soon(session.run)
        cid = setup.channel.channel_id
        # not a participant of the channel
        theirs = setup.proof(9, 900)
        reply = await ask(session, PushProof(theirs, authorize(mallory.signer, theirs)))
        assert reply.code == RefusalCode.NOT_PARTICIPANT  # type: ignore[attr-defined]
        # a channel that does not exist
        ghost = sign_proof(setup.chain.chain_id, setup.chain.contract_bytes, b"\x07" * 32,
                           setup.alice.signer, 1, 1)
        reply = await ask(session, PushProof(ghost, authorize(mallory.signer, ghost)))
        assert reply.code == RefusalCode.UNKNOWN_CHANNEL  # type: ignore[attr-defined]
        # another chain
        foreign = BalanceProof(1, setup.chain.contract_bytes, cid, 9, 900, 0, bytes(32), theirs.signature)
        reply = await ask(session, PushProof(foreign, authorize(mallory.signer, foreign)))
        assert reply.code == RefusalCode.WRONG_CHANNEL  # type: ignore[attr-defined]
        # queries answer only for the asking node: mallory learns nothing of bob's proof
        assert await ask(session, ProofQuery(cid)) == ProofStatus(cid, 0)
        assert setup.tower.db.get_held(cid, bytes.fromhex(mallory.address[2:])) is None

        bob = await open_session(setup, setup.bob.node_key)
        nursery.start_soon(bob.run)
        bob_address = bytes.fromhex(setup.bob.address[2:])
        held_before = setup.tower.db.get_held(cid, bob_address)
        stale = setup.proof(4, 400)
        reply = await ask(bob, PushProof(stale, authorize(setup.bob.signer, stale)))
        assert reply.code == RefusalCode.STALE  # type: ignore[attr-defined]
        forged = setup.proof(6, 600, signer=mallory)  # "Alice's" proof signed by someone else
        reply = await ask(bob, PushProof(forged, authorize(setup.bob.signer, forged)))
        assert reply.code == RefusalCode.INVALID_SIGNATURE  # type: ignore[attr-defined]
        newer = setup.proof(6, 600)
        reply = await ask(bob, PushProof(newer, authorize(mallory.signer, newer)))
        assert reply.code == RefusalCode.BAD_AUTHORIZATION  # type: ignore[attr-defined]
        bad_sig = setup.proof(6, 600)
        wrong_v = replace(bad_sig, signature=bad_sig.signature[:64] + b"\x1d")  # v = 29
        reply = await ask(bob, PushProof(wrong_v, authorize(setup.bob.signer, wrong_v)))
        assert reply.code == RefusalCode.INVALID_SIGNATURE  # type: ignore[attr-defined]
        assert setup.tower.db.get_held(cid, bob_address) == held_before

        # garbage bytes on the wire end that session only
        await session.connection.send(b"\xc1 not msgpack")
        with trio.fail_after(5):
            await session.wait_closed()
        # and the tower keeps serving others
        good.push(setup.proof(7, 700))
        with trio.fail_after(10):
            await good.wait_synced()
        held = setup.tower.db.get_held(cid, bob_address)
        assert held is not None and held.nonce == 7
        assert setup.tower.statistics().pushes_refused >= 7
        nursery.cancel_scope.cancel()


async def test_a_tower_that_lost_its_records_gets_them_again(anvil: Anvil, tmp_path: Path) -> None:
    async with running_tower(anvil, tmp_path) as setup, trio.open_nursery() as nursery:
        cid = setup.channel.channel_id
        client = TowerClient(setup.uri, setup.bob.node_key, setup.chain.chain_id, setup.chain.contract_bytes)
        nursery.start_soon(client.run)
        for nonce in range(1, 6):
            client.push(setup.proof(nonce, nonce * 100))
        with trio.fail_after(10):
            await client.wait_synced()
        bob_address = bytes.fromhex(setup.bob.address[2:])
        # the tower loses the record (restored from an old backup, say) and the session drops
        batch = setup.tower.db.batch()
        batch.delete_held(cid, bob_address)
        setup.tower.db.write(batch)
        assert setup.tower.manager is not None
        for session in list(setup.tower.manager.sessions.values()):
            session.close()
        with trio.fail_after(10):
            while client.statistics().connects < 2:
                await trio.sleep(0.05)
            await client.wait_synced()
        held = setup.tower.db.get_held(cid, bob_address)
        assert held is not None and held.nonce == 5
        nursery.cancel_scope.cancel()


async def test_a_client_on_another_chain_is_turned_away(anvil: Anvil, tmp_path: Path) -> None:
    async with running_tower(anvil, tmp_path) as setup:
        connection = await connect(setup.uri, Party.new().node_key)
        init = Init(PROTOCOL_VERSION, b"", 5, setup.chain.contract_bytes)
        session = await establish_session(connection, init)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(session.run)
            with trio.fail_after(5):
                error = await session.receive()
                await session.wait_closed()
        assert getattr(error, "code", None) == 18


async def test_an_unconfirmed_dispute_is_resubmitted_with_a_higher_fee(
    fresh_anvil: Anvil, tmp_path: Path,
) -> None:
    async with running_tower(fresh_anvil, tmp_path, bump_after=0.5) as setup, trio.open_nursery() as nursery:
        cid = setup.channel.channel_id
        client = TowerClient(setup.uri, setup.bob.node_key, setup.chain.chain_id, setup.chain.contract_bytes)
        nursery.start_soon(client.run)
        client.push(setup.proof(3, 300))
        with trio.fail_after(10):
            await client.wait_synced()
        backend = setup.chain.backend
        backend.rpc("evm_setAutomine", [False])
        close = encode_close_channel(cid, setup.channel.state)
        setup.chain.sender(setup.alice).submit(TxRequest(setup.chain.contract, close))
        backend.mine()  # the close is in; the tower's dispute now waits in the pool, unmined
        with trio.fail_after(15):
            while (dispute := setup.tower.db.get_dispute(cid)) is None or dispute.submissions < 2:
                await trio.sleep(0.05)
        replacement = dispute.tx_hash
        backend.mine()
        with trio.fail_after(10):
            while setup.tower.db.get_dispute(cid) is not None:
                await trio.sleep(0.05)
        receipt = backend.receipt(replacement)
        assert receipt is not None and receipt.succeeded  # the bumped version is the one mined
        nursery.cancel_scope.cancel()
