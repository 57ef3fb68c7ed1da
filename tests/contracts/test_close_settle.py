"""closeChannel, updateBalanceProof and settleChannel: the unilateral path and its refusals."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount

from channeld.chain.contract import ZERO_ROOT, StoredProof, balance_proof_typed_data, settlement
from tests.contracts.conftest import PERIOD, World
from tests.contracts.helpers import assert_synced, open_channel, reverts
from tests.contracts.hub import sign

ROOT = b"\x11" * 32


def _closed(world: World, alice_sent: int = 0, bob_sent: int = 5) -> bytes:
    """alice 100, bob 50; alice closes with bob's proof (nonce 3, `bob_sent`)."""
    cid = open_channel(world, 100, 50)
    bob_proof = StoredProof(3, bob_sent)
    world.hub.close(world.alice.address, cid, bob_proof, world.hub.sign_proof(world.bob, cid, bob_proof))
    assert_synced(world, cid)
    return cid


def _balances(world: World) -> tuple[int, int]:
    return world.token.balance(world.alice.address), world.token.balance(world.bob.address)


def test_close_update_settle_pays_by_the_latest_proofs(world: World) -> None:
    cid = _closed(world)
    alice_proof = StoredProof(5, 20)
    world.hub.update(world.bob.address, cid, alice_proof, world.hub.sign_proof(world.alice, cid, alice_proof))
    assert_synced(world, cid)
    world.chain.advance(PERIOD + 1)
    alice_before, bob_before = _balances(world)
    world.hub.settle(world.carol.address, cid)  # anyone may settle
    assert _balances(world) == (alice_before + 100 - 20 + 5, bob_before + 50 + 20 - 5)
    assert world.hub.slot(cid) == ZERO_ROOT


def test_close_without_a_proof_then_settle_returns_deposits(world: World) -> None:
    cid = open_channel(world, 100, 50)
    world.hub.close(world.bob.address, cid)
    world.chain.advance(PERIOD + 1)
    alice_before, bob_before = _balances(world)
    world.hub.settle(world.alice.address, cid)
    assert _balances(world) == (alice_before + 100, bob_before + 50)


def test_close_refuses_an_outsider_and_a_proof_signed_by_the_wrong_key(world: World) -> None:
    cid = open_channel(world, 100, 50)
    proof = StoredProof(1, 5)
    with reverts("NotParticipant"):
        world.hub.close(world.carol.address, cid, proof, world.hub.sign_proof(world.bob, cid, proof))
    with reverts("WrongSigner"):
        world.hub.close(world.alice.address, cid, proof, world.hub.sign_proof(world.carol, cid, proof))
    with reverts("WrongSigner"):  # alice's own proof is not bob's
        world.hub.close(world.alice.address, cid, proof, world.hub.sign_proof(world.alice, cid, proof))


def test_a_signature_for_another_channel_is_refused(world: World) -> None:
    cid, other = open_channel(world, 100, 50), open_channel(world, 10, 10)
    proof = StoredProof(1, 5)
    with reverts("WrongSigner"):
        world.hub.close(world.alice.address, cid, proof, world.hub.sign_proof(world.bob, other, proof))


def _foreign_signature(
    world: World, signer: LocalAccount, cid: bytes, proof: StoredProof, *, chain_id: int, contract: str
) -> bytes:
    return sign(signer, balance_proof_typed_data(chain_id, contract, cid, proof))


@pytest.mark.parametrize("where", ["chain", "contract"])
def test_a_signature_for_another_chain_or_contract_is_refused(world: World, where: str) -> None:
    cid = open_channel(world, 100, 50)
    proof = StoredProof(1, 5)
    chain_id = world.chain.chain_id + (1 if where == "chain" else 0)
    contract = world.token.address if where == "contract" else world.hub.address
    signature = _foreign_signature(world, world.bob, cid, proof, chain_id=chain_id, contract=contract)
    with reverts("WrongSigner"):
        world.hub.close(world.alice.address, cid, proof, signature)


def test_update_refuses_lower_or_equal_nonce(world: World) -> None:
    cid = _closed(world)
    proof = StoredProof(5, 20)
    world.hub.update(world.bob.address, cid, proof, world.hub.sign_proof(world.alice, cid, proof))
    for nonce in (5, 4):
        stale = StoredProof(nonce, 1)
        with reverts("NonceNotIncreasing"):
            world.hub.update(world.bob.address, cid, stale, world.hub.sign_proof(world.alice, cid, stale))


def test_higher_nonce_replaces_lower(world: World) -> None:
    cid = _closed(world)
    for nonce, sent in ((2, 10), (7, 30)):
        proof = StoredProof(nonce, sent)
        world.hub.update(world.bob.address, cid, proof, world.hub.sign_proof(world.alice, cid, proof))
    closing = world.hub.view(cid).closing
    assert closing is not None
    first = world.hub.view(cid).state.is_first(world.alice.address)
    assert (closing.proof1 if first else closing.proof2) == StoredProof(7, 30)
    assert_synced(world, cid)


def test_watchtower_updates_only_with_the_partners_authorization(world: World) -> None:
    cid = _closed(world)
    proof = StoredProof(5, 20)
    signature = world.hub.sign_proof(world.alice, cid, proof)
    with reverts("InvalidSignature"):  # no authorization at all
        world.hub.update(world.carol.address, cid, proof, signature)
    with reverts("WrongSigner"):  # the closer cannot authorize its own (possibly forged) proof
        world.hub.update(
            world.carol.address,
            cid,
            proof,
            signature,
            world.hub.sign_proof(world.alice, cid, proof, update=True),
        )
    with reverts("WrongSigner"):  # a plain BalanceProof by bob is not an authorization
        world.hub.update(
            world.carol.address, cid, proof, signature, world.hub.sign_proof(world.bob, cid, proof)
        )
    world.hub.update(
        world.carol.address, cid, proof, signature, world.hub.sign_proof(world.bob, cid, proof, update=True)
    )
    assert_synced(world, cid)


def test_the_closer_cannot_update_its_own_proof(world: World) -> None:
    cid = _closed(world)
    forged = StoredProof(99, 0)
    with reverts("InvalidSignature"):
        world.hub.update(world.alice.address, cid, forged, world.hub.sign_proof(world.alice, cid, forged))


def test_update_after_the_period_is_refused(world: World) -> None:
    cid = _closed(world)
    world.chain.advance(PERIOD + 1)
    proof = StoredProof(5, 20)
    with reverts("ChallengePeriodOver"):
        world.hub.update(world.bob.address, cid, proof, world.hub.sign_proof(world.alice, cid, proof))


def test_settle_before_the_period_ends_is_refused(world: World) -> None:
    cid = _closed(world)
    with reverts("ChallengePeriodNotOver"):
        world.hub.settle(world.alice.address, cid)


def test_double_settle_is_refused(world: World) -> None:
    cid = _closed(world)
    world.chain.advance(PERIOD + 1)
    world.hub.settle(world.alice.address, cid)
    with reverts("UnknownChannel"):
        world.hub.settle(world.alice.address, cid)


def test_deposit_and_second_close_after_close_are_refused(world: World) -> None:
    cid = _closed(world)
    view = world.hub.view(cid)
    world.hub.channels[cid] = type(view)(cid, view.state)  # pretend it is still open
    with reverts("StateMismatch"):
        world.hub.deposit(world.alice.address, cid, world.alice.address, 500)
    with reverts("StateMismatch"):
        world.hub.close(world.bob.address, cid)


def test_proof_with_nonce_zero_must_be_empty(world: World) -> None:
    cid = open_channel(world, 100, 50)
    from channeld.chain.contract import CHANNEL_TUPLE, PROOF_TUPLE, SIGNATURE_TUPLE, _call

    state = world.hub.view(cid).state
    raw = _call(
        f"closeChannel(bytes32,{CHANNEL_TUPLE},{PROOF_TUPLE},{SIGNATURE_TUPLE})",
        ["bytes32", CHANNEL_TUPLE, PROOF_TUPLE, SIGNATURE_TUPLE],
        [cid, state.as_abi(), (0, 50, 0, ZERO_ROOT), (ZERO_ROOT, ZERO_ROOT)],
    )
    with reverts("UnsignedProof"):
        world.hub.transact(world.alice.address, raw)


def test_locked_amounts_stay_held_and_the_slot_commits_to_them(world: World) -> None:
    cid = open_channel(world, 100, 50)
    bob_proof = StoredProof(2, 10, 7, ROOT)
    world.hub.close(world.alice.address, cid, bob_proof, world.hub.sign_proof(world.bob, cid, bob_proof))
    world.chain.advance(PERIOD + 1)
    view = world.hub.view(cid)
    assert view.closing is not None
    expected = settlement(view.state, view.closing)
    held_before = world.token.balance(world.hub.address)
    world.hub.settle(world.alice.address, cid)
    assert world.token.balance(world.hub.address) == held_before - expected.amount1 - expected.amount2
    assert expected.locked1 + expected.locked2 == 7
    assert world.hub.slot(cid) not in (ZERO_ROOT,)
    assert_synced(world, cid)
