"""SecretRegistry and unlock (proto/locks.md): which locks pay the receiver, which return to the sender."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak

from channeld.chain.contract import (
    ETHER,
    SETTLED_LOCKS_TUPLE,
    ZERO_ROOT,
    ChannelUnlocked,
    InvalidCallArgument,
    InvalidLock,
    Lock,
    StoredProof,
    encode_register_secret,
    encode_unlock,
    locks_root,
    pack_locks,
    secret_hash,
)
from tests.contracts.conftest import PERIOD, World
from tests.contracts.helpers import assert_synced, open_channel, reverts


def _secret(n: int) -> bytes:
    return keccak(text=f"secret {n}")


def _settled_with_alice_locks(world: World, locks: list[Lock], *, ether: bool = False) -> bytes:
    """alice 100, bob 50; alice's last proof to bob carries `locks` (transferred 10); bob closes with it,
    and the channel settles with alice's locked amount held."""
    cid = open_channel(world, 100, 50 if not ether else 0, ether=ether)
    locked = sum(lock.amount for lock in locks)
    proof = StoredProof(4, 10, locked, locks_root(locks))
    world.hub.close(world.bob.address, cid, proof, world.hub.sign_proof(world.alice, cid, proof))
    world.chain.advance(PERIOD + 1)
    world.hub.settle(world.carol.address, cid)
    assert_synced(world, cid)
    return cid


def _holdings(world: World, token: str) -> tuple[int, int]:
    return world.chain.balance(token, world.alice.address), world.chain.balance(token, world.bob.address)


def test_registry_keeps_the_first_time_emits_once_and_refuses_the_zero_secret(world: World) -> None:
    secret = _secret(1)
    world.hub.register_secret(world.carol.address, secret)
    first = world.hub.registration_time(secret_hash(secret))
    assert first == world.chain.timestamp()
    world.chain.advance(50)
    world.hub.register_secrets(world.alice.address, [secret, _secret(2)])  # a repeat and a new one
    assert world.hub.registration_time(secret_hash(secret)) == first
    assert world.hub.registration_time(secret_hash(_secret(2))) == world.chain.timestamp()
    assert [(e.secrethash, e.secret) for e in world.hub.secrets] == [
        (secret_hash(secret), secret), (secret_hash(_secret(2)), _secret(2))]
    with pytest.raises(InvalidCallArgument):
        encode_register_secret(ZERO_ROOT)
    zero = keccak(text="registerSecret(bytes32)")[:4] + ZERO_ROOT
    with reverts("ZeroSecret"):
        world.chain.send(world.carol.address, world.hub.registry, zero)


def test_mixed_locks_pay_only_those_revealed_in_time(world: World) -> None:
    now = world.chain.timestamp()
    late_expiry = now + 10 * PERIOD
    locks = [
        Lock(7, late_expiry, secret_hash(_secret(1))),  # revealed in time: bob's
        Lock(11, now + 5, secret_hash(_secret(2))),  # revealed after its expiration: back to alice
        Lock(13, late_expiry, secret_hash(_secret(3))),  # never revealed: back to alice
    ]
    world.hub.register_secret(world.bob.address, _secret(1))
    cid = _settled_with_alice_locks(world, locks)  # settling moves time past the second lock's expiry
    world.hub.register_secret(world.bob.address, _secret(2))
    assert world.hub.registration_time(secret_hash(_secret(2))) > now + 5
    token = world.token.address
    alice_before, bob_before = _holdings(world, token)
    world.hub.unlock(world.carol.address, cid, world.alice.address, pack_locks(locks))
    assert _holdings(world, token) == (alice_before + 24, bob_before + 7)
    assert world.hub.events[-1] == ChannelUnlocked(cid, world.alice.address, 7, 24)
    assert world.hub.slot(cid) == ZERO_ROOT  # nothing else was locked: the slot is cleared
    assert world.token.balance(world.hub.address) == 0


def test_ether_locks_unlock_too(world: World) -> None:
    locks = [Lock(30, world.chain.timestamp() + 10 * PERIOD, secret_hash(_secret(4)))]
    world.hub.register_secret(world.bob.address, _secret(4))
    cid = _settled_with_alice_locks(world, locks, ether=True)
    bob_before = world.chain.balance(ETHER, world.bob.address)
    world.hub.unlock(world.carol.address, cid, world.alice.address, pack_locks(locks))
    assert world.chain.balance(ETHER, world.bob.address) == bob_before + 30
    assert world.chain.balance(ETHER, world.hub.address) == 0


def test_wrong_locks_are_refused_and_change_nothing(world: World) -> None:
    expiry = world.chain.timestamp() + 10 * PERIOD
    locks = [Lock(5, expiry, secret_hash(_secret(5))), Lock(6, expiry, secret_hash(_secret(6)))]
    cid = _settled_with_alice_locks(world, locks)
    slot = world.hub.slot(cid)
    for wrong in ([locks[1], locks[0]], locks[:1], [Lock(50, expiry, secret_hash(_secret(5))), locks[1]]):
        with reverts("LocksRootMismatch"):
            world.hub.unlock(world.carol.address, cid, world.alice.address, pack_locks(wrong))
    settled = world.hub.view(cid).settled_locks()
    raw = keccak(text=f"unlock(bytes32,{SETTLED_LOCKS_TUPLE},address,bytes)")[:4] + abi_encode(
        ["bytes32", SETTLED_LOCKS_TUPLE, "address", "bytes"],
        [cid, settled.as_abi(), world.alice.address, pack_locks(locks)[:-1]],
    )
    with reverts("MalformedLocks"):
        world.chain.send(world.carol.address, world.hub.address, raw)
    with reverts("NotParticipant"):
        world.chain.send(world.carol.address, world.hub.address,
                         raw[:4 + 32 * 8] + abi_encode(["address"], [world.carol.address]) + raw[4 + 32 * 9:])
    with reverts("NothingLocked"):  # bob had nothing locked
        world.hub.unlock(world.carol.address, cid, world.bob.address, b"")
    with pytest.raises(InvalidCallArgument):
        encode_unlock(cid, settled, world.alice.address, b"\x00" * 95)
    assert world.hub.slot(cid) == slot


def test_unlock_twice_is_refused(world: World) -> None:
    locks = [Lock(5, world.chain.timestamp() + 10 * PERIOD, secret_hash(_secret(7)))]
    cid = _settled_with_alice_locks(world, locks)
    again = encode_unlock(cid, world.hub.view(cid).settled_locks(), world.alice.address, pack_locks(locks))
    world.hub.unlock(world.carol.address, cid, world.alice.address, pack_locks(locks))
    with reverts("UnknownChannel"):  # the slot was cleared with the last locked amount
        world.chain.send(world.carol.address, world.hub.address, again)


def test_each_side_unlocks_once_and_the_slot_follows(world: World) -> None:
    expiry = world.chain.timestamp() + 10 * PERIOD
    alice_locks = [Lock(5, expiry, secret_hash(_secret(8)))]
    bob_locks = [Lock(9, expiry, secret_hash(_secret(9)))]
    cid = open_channel(world, 100, 50)
    alice_proof = StoredProof(2, 0, 5, locks_root(alice_locks))
    bob_proof = StoredProof(3, 0, 9, locks_root(bob_locks))
    world.hub.close(world.bob.address, cid, alice_proof, world.hub.sign_proof(world.alice, cid, alice_proof))
    world.hub.update(world.alice.address, cid, bob_proof, world.hub.sign_proof(world.bob, cid, bob_proof))
    world.hub.register_secret(world.alice.address, _secret(9))
    world.chain.advance(PERIOD + 1)
    world.hub.settle(world.carol.address, cid)
    world.hub.unlock(world.carol.address, cid, world.bob.address, pack_locks(bob_locks))
    assert world.hub.slot(cid) != ZERO_ROOT  # alice's side is still locked
    assert_synced(world, cid)
    with reverts("NothingLocked"):
        world.hub.unlock(world.carol.address, cid, world.bob.address, pack_locks(bob_locks))
    alice_before, bob_before = _holdings(world, world.token.address)
    world.hub.unlock(world.carol.address, cid, world.alice.address, pack_locks(alice_locks))
    assert _holdings(world, world.token.address) == (alice_before + 5, bob_before)
    assert world.hub.slot(cid) == ZERO_ROOT
    assert world.token.balance(world.hub.address) == 0


def test_thirty_two_locks_fit_and_more_are_refused(world: World) -> None:
    expiry = world.chain.timestamp() + 10 * PERIOD
    locks = [Lock(1, expiry, secret_hash(_secret(100 + n))) for n in range(32)]
    world.hub.register_secrets(world.bob.address, [_secret(100 + n) for n in range(0, 32, 2)])
    cid = _settled_with_alice_locks(world, locks)
    receipt = world.hub.unlock(world.carol.address, cid, world.alice.address, pack_locks(locks))
    assert world.hub.events[-1] == ChannelUnlocked(cid, world.alice.address, 16, 16)
    assert receipt["gasUsed"] < 200_000
    with pytest.raises(InvalidLock):
        pack_locks([*locks, locks[0]])


def test_a_secret_registered_in_the_expiration_second_still_counts(world: World) -> None:
    expiration = world.chain.timestamp() + 1000
    locks = [Lock(4, expiration, secret_hash(_secret(200))), Lock(6, expiration, secret_hash(_secret(201)))]
    world.chain.rpc("evm_setNextBlockTimestamp", [expiration])
    world.hub.register_secret(world.bob.address, _secret(200))
    world.chain.rpc("evm_setNextBlockTimestamp", [expiration + 1])
    world.hub.register_secret(world.bob.address, _secret(201))
    cid = _settled_with_alice_locks(world, locks)
    world.hub.unlock(world.carol.address, cid, world.alice.address, pack_locks(locks))
    assert world.hub.events[-1] == ChannelUnlocked(cid, world.alice.address, 4, 6)
