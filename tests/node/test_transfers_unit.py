"""The node's multi-hop service (`channeld/node/_transfers.py`) on real in-process nodes.

Nodes run in-process on one embedded chain (real LevelDB stores, real BOLT 8 sockets): a routed payment
through a mediator, a refused lock expiry sent again until the partner's clock catches up, a reveal held
while our chain view is stale, and the unlock and registration transactions a payment asks for.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import trio
from eth_utils import to_checksum_address

from channeld.chain import contract as hub
from channeld.config import RoutingConfig
from channeld.node import Node, Operation
from channeld.node._refusals import RETRY_FIRST
from channeld.node._transfers import register_request, unlock_request
from channeld.protocol import (
    ActionExpireLock,
    ActionSendLockedTransfer,
    ActionTick,
    encode_route,
    locks_root,
    pack_locks,
)
from channeld.wire import Lock, LockExpired
from tests.node.embedded import ETH, World, until

SECRET = bytes(range(1, 33))
SECRETHASH = hashlib.sha256(SECRET).digest()


def _world(root: Path, names: tuple[str, ...]) -> World:
    world = World(root, names)
    for name in names:  # gossip fast enough for a test to route soon after the channels open
        world.configs[name] = replace(world.configs[name], routing=RoutingConfig(gossip_interval=0.2))
    return world


async def _open(payer: Node, payee: Node, deposit: int = ETH) -> bytes:
    before = set(payer.channels.channels)
    await payer.open_channel(payee.uri, deposit, None, 600)
    await until(lambda: set(payer.channels.channels) - before)
    (cid,) = set(payer.channels.channels) - before
    await until(lambda: cid in payee.channels.channels and payer.channels.entry(cid).state.our.deposit)
    return cid


@asynccontextmanager
async def _pair(tmp_path: Path) -> AsyncIterator[tuple[Node, Node, bytes]]:
    world = _world(tmp_path, ("alice", "bob"))
    async with world.node("bob") as bob, world.node("alice") as alice:
        yield alice, bob, await _open(alice, bob)


async def test_a_routed_payment_reaches_the_target_and_every_machine_is_deleted(tmp_path: Path) -> None:
    world = _world(tmp_path, ("alice", "bob", "carol"))
    async with world.node("carol") as carol, world.node("bob") as bob, world.node("alice") as alice:
        ab, bc = await _open(alice, bob), await _open(bob, carol)
        text = carol.requests.create(ETH // 100)["request"]
        await until(lambda: _routable(alice, carol))
        result = await alice.requests.pay(text)
        assert result["status"] == "accepted" and result["preimage"] is not None, result
        await until(lambda: bob.channels.entry(ab).state.partner.transferred == ETH // 100)
        await until(lambda: carol.channels.entry(bc).state.partner.transferred == ETH // 100)
        for node in (alice, bob, carol):  # a finished machine leaves neither memory nor a stored row
            await until(lambda n=node: not n.transfers.payments  # type: ignore[misc]
                        and not list(n.store.iter_payments(n.ns)))


def _routable(payer: Node, target: Node) -> bool:
    try:
        payer.gossip.plan(bytes.fromhex(target.key.address[2:]), ETH // 100, ETH)
    except Exception:  # no route yet: gossip is still on its way
        return False
    return True


async def _lock_expired_in_flight(alice: Node, bob: Node, cid: bytes) -> int:
    """Alice locks toward Bob, then (her clock past the lock, Bob's not) expires it; the expiry's nonce."""
    await until(lambda: alice.channels.entry(cid).state.now and bob.channels.entry(cid).state.now)
    state = alice.channels.entry(cid).state
    expiration = max(state.now, bob.channels.entry(cid).state.now) + 2 * state.reveal_timeout
    bob_address = state.partner.address
    await alice.channels.handle(cid, ActionSendLockedTransfer(
        7, 1000, expiration, SECRETHASH, state.our.address, bob_address, encode_route((bob_address,))))
    await until(lambda: bob.channels.entry(cid).state.partner.locks)
    await alice.channels.handle(cid, ActionTick(expiration + 1))
    await alice.channels.handle(cid, ActionExpireLock(SECRETHASH))
    return alice.channels.entry(cid).state.our.nonce


async def test_a_refused_lock_expiry_is_sent_again_until_the_partner_accepts_it(tmp_path: Path) -> None:
    async with _pair(tmp_path) as (alice, bob, cid):
        nonce = await _lock_expired_in_flight(alice, bob, cid)
        # Bob's clock is the chain's: the lock has not expired for him, and he refuses, again and again
        await trio.sleep(3 * RETRY_FIRST)
        assert bob.channels.entry(cid).state.partner.nonce == nonce - 1
        assert bob.channels.entry(cid).state.partner.locks
        in_flight = alice.channels.entry(cid).state.locks_in_flight
        assert [type(m) for m in in_flight] == [LockExpired]
        # Bob's clock catches up; the session never dropped, so only a resend can bring the expiry back
        expiration = bob.channels.entry(cid).state.partner.locks[0].expiration
        await bob.channels.handle(cid, ActionTick(expiration + 1))
        await until(lambda: bob.channels.entry(cid).state.partner.nonce == nonce, timeout=30)
        assert bob.channels.entry(cid).state.partner.locks == ()
        await until(lambda: not alice.channels.entry(cid).state.locks_in_flight)
        assert alice.peers.is_connected(bob.node_id)


async def test_a_reveal_waits_while_the_chain_view_is_stale(tmp_path: Path) -> None:
    async with _pair(tmp_path) as (alice, bob, _):
        transfers, watcher = alice.transfers, alice.watcher
        watcher.fresh_as_of = trio.current_time() - 60  # as after a freeze: no read of the chain since
        transfers.on_secret(bob.node_id, SECRET)
        assert transfers.reveal_deferred() == 0  # still stale: held
        assert transfers.held_reveals == 1
        await until(lambda: transfers.held_reveals == 0)  # applied once a read started after it completed
        assert watcher.fresh_as_of > trio.current_time() - 5
        transfers.on_secret(bob.node_id, SECRET)  # a fresh view: applied at once, nothing held
        assert transfers.held_reveals == 0


# --- the transactions a payment asks for (pure builders over the chain's view) -------------------------

ALICE, BOB = to_checksum_address("0x" + "aa" * 20), to_checksum_address("0x" + "bb" * 20)
CID = bytes(range(32))
LOCKS = (Lock(40, 10**9, SECRETHASH),)


def _settled(*, unlocked1: bool = False, cooperative: bool = False) -> hub.OnChainChannel:
    state = hub.ChannelState(ALICE, BOB, hub.ETHER, 600, 1000, 0)
    root = locks_root(LOCKS)
    closing = hub.Closing(BOB, 2000, proof1=hub.StoredProof(3, 100, 40, root))
    settled = hub.Settlement(860, 40, 100, 0)
    return hub.OnChainChannel(CID, state, closing, settled, cooperative, unlocked1=unlocked1)


def _unlock_op(sender: str) -> Operation:
    return Operation("unlock", (CID, bytes.fromhex(sender[2:]), bytes.fromhex(BOB[2:]), pack_locks(LOCKS)))


def test_an_unlock_quotes_the_settled_locks_of_the_sender() -> None:
    channel = _settled()
    request = unlock_request("0x" + "cc" * 20, channel, _unlock_op(ALICE))
    assert request is not None
    assert request.data == hub.encode_unlock(CID, channel.settled_locks(), ALICE, pack_locks(LOCKS))


@pytest.mark.parametrize("channel", [
    replace(_settled(), settled=None),  # not settled yet: nothing to unlock
    _settled(cooperative=True),  # a cooperative settle leaves no locks
    _settled(unlocked1=True),  # this side was unlocked already (by the partner, or a re-send)
])
def test_an_unlock_that_is_not_due_is_skipped(channel: hub.OnChainChannel) -> None:
    assert unlock_request("0x" + "cc" * 20, channel, _unlock_op(ALICE)) is None


def test_an_unlock_of_a_side_with_nothing_locked_is_skipped() -> None:
    assert unlock_request("0x" + "cc" * 20, _settled(), _unlock_op(BOB)) is None


def test_an_unlock_with_locks_the_chain_did_not_settle_on_is_skipped() -> None:
    """The close quoted an older proof (with a lock we since expired): our locks would revert the call."""
    other = Operation("unlock", (CID, bytes.fromhex(ALICE[2:]), bytes.fromhex(BOB[2:]), b""))
    assert unlock_request("0x" + "cc" * 20, _settled(), other) is None


def test_a_registration_goes_to_the_registry_with_the_secret() -> None:
    request = register_request("0x" + "dd" * 20, Operation("register_secret", (SECRET, 10**9)))
    assert request.to == "0x" + "dd" * 20
    assert request.data == hub.encode_register_secret(SECRET)
