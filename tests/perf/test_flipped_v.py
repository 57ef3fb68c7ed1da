"""A balance proof is accepted on (r, s) alone; its `v` is made right when it goes on chain.

The payee checks a partner's proof by plain ECDSA verification against the known key (cheaper than
recovering it), which ignores `v`. These tests prove the shortcut costs nothing on chain: a proof whose
`v` was flipped in transit is accepted, stored as received, and still wins the dispute on a real
contract (anvil), because the node derives the recoverable `v` when it builds the transaction.
"""

from __future__ import annotations

from dataclasses import replace

from channeld import protocol as p
from channeld import wire
from channeld.chain.contract import StoredProof
from tests.contracts.conftest import PERIOD, World
from tests.contracts.helpers import open_channel, reverts

ALICE_DEPOSIT, BOB_DEPOSIT = 100, 50


def _flip_v(proof: wire.BalanceProof) -> wire.BalanceProof:
    signature = proof.signature
    return replace(proof, signature=signature[:64] + bytes((55 - signature[64],)))


def _state(world: World, cid: bytes, ours: p.Signer, partner: p.Signer) -> p.ChannelState:
    contract = bytes.fromhex(world.hub.address[2:])
    state = p.new_channel(world.chain.chain_id, contract, cid, PERIOD, ours.address, partner.public_key)
    alice, bob = (bytes.fromhex(a.address[2:]) for a in (world.alice, world.bob))
    for event in (p.ActionTick(world.chain.timestamp()), p.ContractReceiveDeposit(alice, ALICE_DEPOSIT),
                  p.ContractReceiveDeposit(bob, BOB_DEPOSIT)):
        state, _ = p.handle(state, event, ours)
    return state


def _pay(payer: p.ChannelState, signer: p.Signer, payment_id: int, amount: int) -> tuple[p.ChannelState,
                                                                                         wire.Payment]:
    payer, effects = p.handle(payer, p.ActionPay(payment_id, amount), signer)
    sent = [e.message for e in effects if isinstance(e, p.Send)]
    assert isinstance(sent[0], wire.Payment)
    return payer, sent[0]


def _stored(proof: wire.BalanceProof) -> StoredProof:
    return StoredProof(proof.nonce, proof.transferred_amount, proof.locked_amount, proof.locks_root)


def test_a_proof_with_a_flipped_v_is_accepted_stored_and_wins_the_dispute(world: World) -> None:
    cid = open_channel(world, ALICE_DEPOSIT, BOB_DEPOSIT)
    alice_key, bob_key = p.Signer(bytes(world.alice.key)), p.Signer(bytes(world.bob.key))
    alice, bob = _state(world, cid, alice_key, bob_key), _state(world, cid, bob_key, alice_key)

    bob, first = _pay(bob, bob_key, 1, 5)
    alice, _ = p.handle(alice, first, alice_key)
    bob, second = _pay(bob, bob_key, 2, 7)
    flipped = _flip_v(second.balance_proof)
    digest = p.balance_proof_digest(*(getattr(flipped, f) for f in (
        "chain_id", "contract", "channel_id", "nonce", "transferred_amount", "locked_amount", "locks_root")))
    assert p.recover_address(digest, flipped.signature) != bob_key.address  # worthless as received
    received = wire.decode(wire.encode(replace(second, balance_proof=flipped)))

    alice, effects = p.handle(alice, received, alice_key)
    assert wire.PaymentAccepted(cid, 2, 2) in [e.message for e in effects if isinstance(e, p.Send)]
    alice = p.from_record(p.to_record(alice))  # stored as received, read back after a restart
    assert alice.partner.proof == flipped

    world.hub.close(world.bob.address, cid)  # bob closes claiming he paid nothing
    closing = world.hub.view(cid).closing
    assert closing is not None
    deadline = closing.settle_time
    alice, effects = p.handle(alice, p.ContractReceiveClosed(bob_key.address, deadline), alice_key)
    updates = [e for e in effects if isinstance(e, p.ContractSendUpdateProof)]
    assert len(updates) == 1
    proof = updates[0].partner_proof
    assert proof == replace(flipped, signature=second.balance_proof.signature)  # v fixed, nothing else
    with reverts("WrongSigner"):  # the proof as received would not have counted
        world.hub.update(world.alice.address, cid, _stored(flipped), flipped.signature)
    world.hub.update(world.alice.address, cid, _stored(proof), proof.signature)

    world.chain.advance(PERIOD + 1)
    alice_before = world.token.balance(world.alice.address)
    bob_before = world.token.balance(world.bob.address)
    world.hub.settle(world.carol.address, cid)
    assert world.token.balance(world.alice.address) == alice_before + ALICE_DEPOSIT + 12
    assert world.token.balance(world.bob.address) == bob_before + BOB_DEPOSIT - 12


def test_a_close_submits_the_partners_proof_with_its_recoverable_v(world: World) -> None:
    cid = open_channel(world, ALICE_DEPOSIT, BOB_DEPOSIT)
    alice_key, bob_key = p.Signer(bytes(world.alice.key)), p.Signer(bytes(world.bob.key))
    alice, bob = _state(world, cid, alice_key, bob_key), _state(world, cid, bob_key, alice_key)
    bob, payment = _pay(bob, bob_key, 1, 9)
    alice, _ = p.handle(alice, replace(payment, balance_proof=_flip_v(payment.balance_proof)), alice_key)

    _, effects = p.handle(alice, p.ActionClose(), alice_key)
    (close,) = [e for e in effects if isinstance(e, p.ContractSendClose)]
    assert close.partner_proof == payment.balance_proof
    world.hub.close(world.alice.address, cid, _stored(payment.balance_proof), close.partner_proof.signature)
    world.chain.advance(PERIOD + 1)
    bob_before = world.token.balance(world.bob.address)
    world.hub.settle(world.carol.address, cid)
    assert world.token.balance(world.bob.address) == bob_before + BOB_DEPOSIT - 9
