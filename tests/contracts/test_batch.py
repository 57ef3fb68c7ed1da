"""ChannelBatch on anvil: batch open, deposit, withdraw and cooperative close, ECDSA and BLS consent."""

from __future__ import annotations

import pytest

from channeld import batch
from channeld.batch import BatchKind
from channeld.chain.contract import SETTLED, StoredProof, encode_attach_extension
from tests.contracts.batch_world import FAR, bls_key, open_batch
from tests.contracts.conftest import World
from tests.contracts.helpers import assert_synced, reverts
from tests.contracts.hub import Hub, account

COLD = account("hub cold wallet").address


def _holdings(world: World, addresses: list[str]) -> list[int]:
    return [world.token.balance(address) for address in addresses]


@pytest.mark.parametrize("count", [1, 3, 7])
def test_batch_withdraw_ecdsa_pays_exactly_each_total(world: World, count: int) -> None:
    group = open_batch(world, count)
    totals = [10 + i for i in range(count)]
    data = batch.encode_batch_withdraw(world.token.address, COLD, FAR, group.entries(totals),
                                       group.withdraw_signatures(totals, COLD))
    world.hub.transact(world.alice.address, data)
    assert world.token.balance(COLD) == sum(totals)
    for cid, total in zip(group.channel_ids, totals, strict=True):
        state = world.hub.view(cid).state
        assert (state.withdrawn1 if state.is_first(world.alice.address) else state.withdrawn2) == total
        assert_synced(world, cid)
    # set-total semantics: raising every total pays only the differences
    more = [t + 5 for t in totals]
    data = batch.encode_batch_withdraw(world.token.address, COLD, FAR, group.entries(more),
                                       group.withdraw_signatures(more, COLD))
    world.hub.transact(world.alice.address, data)
    assert world.token.balance(COLD) == sum(more)


def test_batch_cooperative_close_ecdsa_pays_every_partner_its_balance(world: World) -> None:
    group = open_batch(world, 4)
    payouts = [0, 40, 100, 150]  # each channel holds 150: alice 100 + partner 50
    addresses = [p.address for p in group.partners]
    before = _holdings(world, addresses)
    data = batch.encode_batch_cooperative_close(world.token.address, COLD, group.entries(payouts),
                                                group.close_signatures(payouts, COLD))
    world.hub.transact(world.alice.address, data)
    assert world.token.balance(COLD) == sum(payouts)
    assert _holdings(world, addresses) == [b + 150 - p for b, p in zip(before, payouts, strict=True)]
    assert all(world.hub.slot(cid) == SETTLED for cid in group.channel_ids)
    assert all(world.hub.view(cid).cooperative for cid in group.channel_ids)
    assert world.token.balance(world.hub.address) == 0


def test_batch_deposit_raises_every_total_in_one_transfer(world: World) -> None:
    group = open_batch(world, 3)
    hub_before = world.token.balance(world.hub.address)
    data = batch.encode_set_total_deposits(world.token.address, group.entries([120, 130, 140]))
    world.hub.transact(world.alice.address, data)
    assert world.token.balance(world.hub.address) == hub_before + 20 + 30 + 40
    for cid in group.channel_ids:
        assert_synced(world, cid)
    with reverts("StateMismatch"):  # the entries' states are no longer current
        world.hub.transact(world.alice.address, data)
    with reverts("DepositNotIncreasing"):
        world.hub.transact(world.alice.address, batch.encode_set_total_deposits(
            world.token.address, group.entries([120, 130, 140])))


def test_bls_batches_pay_exactly_and_py_ecc_signatures_verify_on_chain(world: World) -> None:
    indexes = [0, 1, 2]
    group = open_batch(world, 3)
    group.register_bls(indexes)
    totals = [30, 20, 10]
    entries = group.entries(totals)
    terms = group.terms(BatchKind.WITHDRAW, COLD)
    key, signature = group.bls_sign(indexes, terms, entries)
    world.hub.transact(world.alice.address, batch.encode_batch_bls(terms, entries, key, signature))
    assert world.token.balance(COLD) == 60
    payouts = [70, 80, 90]  # each channel now holds 150 minus alice's withdrawal
    entries = group.entries(payouts)
    terms = group.terms(BatchKind.CLOSE, COLD)
    key, signature = group.bls_sign(indexes, terms, entries)
    addresses = [p.address for p in group.partners]
    before = _holdings(world, addresses)
    world.hub.transact(world.alice.address, batch.encode_batch_bls(terms, entries, key, signature))
    assert world.token.balance(COLD) == 60 + 240
    held = [150 - t for t in totals]
    assert _holdings(world, addresses) == [b + h - p for b, h, p in zip(before, held, payouts, strict=True)]
    assert world.token.balance(world.hub.address) == 0


def test_contract_hash_to_curve_equals_py_ecc(world: World) -> None:
    from eth_utils import keccak

    for message in (b"", b"abc", keccak(text="a batch root")):
        data = keccak(text="hashToG2(bytes)")[:4] + _abi_bytes(message)
        answer = world.chain.call(world.hub.address, data)
        assert _decode_bytes(answer) == batch.hash_to_g2_eip2537(message)


def _abi_bytes(value: bytes) -> bytes:
    from eth_abi import encode

    return encode(["bytes"], [value])


def _decode_bytes(value: bytes) -> bytes:
    from eth_abi import decode

    (decoded,) = decode(["bytes"], value)
    return bytes(decoded)


# ------------------------------------------------------------------------------------------ refusals


def _refused_without_payment(world: World, name: str, data: bytes) -> None:
    before = world.token.balance(world.hub.address)
    with reverts(name):
        world.hub.transact(world.alice.address, data)
    assert world.token.balance(world.hub.address) == before


def test_ecdsa_batch_refuses_forgery_repeats_closed_channels_and_excess(world: World) -> None:
    group = open_batch(world, 3)
    totals = [10, 10, 10]
    entries, signatures = group.entries(totals), group.withdraw_signatures(totals, COLD)
    token = world.token.address
    forged = [signatures[0], signatures[2], signatures[1]]  # right signers' keys, wrong channels
    _refused_without_payment(world, "WrongSigner",
                             batch.encode_batch_withdraw(token, COLD, FAR, entries, forged))
    other_receiver = group.withdraw_signatures(totals, world.carol.address)
    _refused_without_payment(world, "WrongSigner",
                             batch.encode_batch_withdraw(token, COLD, FAR, entries, other_receiver))
    repeated = batch.encode_batch_withdraw(token, COLD, FAR, [*entries, entries[0]],
                                           [*signatures, signatures[0]])
    _refused_without_payment(world, "StateMismatch", repeated)
    excess = [10, 151, 10]
    _refused_without_payment(world, "WithdrawExceedsChannel", batch.encode_batch_withdraw(
        token, COLD, FAR, group.entries(excess), group.withdraw_signatures(excess, COLD)))
    payouts = [10, 151, 10]
    _refused_without_payment(world, "PayoutMismatch", batch.encode_batch_cooperative_close(
        token, COLD, group.entries(payouts), group.close_signatures([10, 140, 10], COLD)))
    _refused_without_payment(world, "SignatureCountMismatch",
                             batch.encode_batch_withdraw(token, COLD, FAR, entries, signatures[:2]))
    _refused_without_payment(world, "WithdrawExpired", batch.encode_batch_withdraw(
        token, COLD, 1, entries, group.withdraw_signatures(totals, COLD, expiry=1)))
    # a channel that is no longer open
    closing = group.channel_ids[1]
    world.hub.close(group.partners[1].address, closing, StoredProof(), b"")
    _refused_without_payment(world, "StateMismatch",
                             batch.encode_batch_withdraw(token, COLD, FAR, entries, signatures))
    assert world.token.balance(COLD) == 0


def test_bls_batch_catches_a_wrong_entry_a_wrong_root_and_unknown_signers(world: World) -> None:
    indexes = [3, 4]
    group = open_batch(world, 2, first=3)
    group.register_bls(indexes)
    terms = group.terms(BatchKind.WITHDRAW, COLD)
    entries = group.entries([10, 20])
    key, signature = group.bls_sign(indexes, terms, entries)
    # the hub swaps in a larger entry than the partners signed: the rebuilt root differs
    inflated = group.entries([10, 25])
    _refused_without_payment(world, "BlsSignatureInvalid",
                             batch.encode_batch_bls(terms, inflated, key, signature))
    # the tree in another order (another root, so another message)
    swapped = batch.encode_batch_bls(terms, entries[::-1], key, signature)
    _refused_without_payment(world, "UnknownSigners", swapped)
    # signed for another receiver
    elsewhere = group.terms(BatchKind.WITHDRAW, world.carol.address)
    _refused_without_payment(world, "BlsSignatureInvalid",
                             batch.encode_batch_bls(elsewhere, entries, key, signature))
    # one partner's signature missing from the aggregate
    lone = batch.g2_to_eip2537(bls_key(3)[0].sign(terms.message(2, batch.merkle_root(
        [batch.leaf(BatchKind.WITHDRAW, e) for e in entries]))))
    _refused_without_payment(world, "BlsSignatureInvalid", batch.encode_batch_bls(terms, entries, key, lone))
    # a key that is not the registered sum
    _refused_without_payment(world, "AggregateKeyMismatch",
                             batch.encode_batch_bls(terms, entries, bls_key(3)[1], signature))
    assert world.token.balance(COLD) == 0
    world.hub.transact(world.alice.address, batch.encode_batch_bls(terms, entries, key, signature))
    assert world.token.balance(COLD) == 30


def test_bls_keys_need_a_valid_proof_of_possession_and_are_set_once(world: World) -> None:
    someone = account("bls registrant")
    world.chain.fund(someone.address)
    _, public, proof = bls_key(5)
    _, _, other_proof = bls_key(6)
    with reverts("InvalidProofOfPossession"):
        world.hub.transact(someone.address, batch.encode_register_bls_key(public, other_proof))
    with reverts("InvalidBlsPoint"):
        world.hub.transact(someone.address, batch.encode_register_bls_key(bytes(128), proof))
    world.hub.transact(someone.address, batch.encode_register_bls_key(public, proof))
    with reverts("BlsKeyExists"):
        world.hub.transact(someone.address, batch.encode_register_bls_key(public, proof))
    with reverts("UnregisteredBlsKey"):  # carol never registered this key
        world.hub.transact(world.alice.address, batch.encode_register_bls_signers(
            [someone.address, world.carol.address], [public, public]))


def test_the_hub_attaches_only_the_compiled_extension_and_only_once(world: World) -> None:
    deployer = account("deployer").address
    bare = Hub.deploy(world.chain, deployer)
    data = batch.encode_open_channels(world.token.address, 100, 1, [world.bob.address], [0])
    with reverts("NoExtension"):
        bare.transact(world.alice.address, data)
    with reverts("WrongExtension"):
        bare.transact(deployer, encode_attach_extension(world.token.address))
    bare.attach_batch(deployer)
    with reverts("ExtensionAttached"):
        bare.transact(deployer, encode_attach_extension(world.hub.address))
    bare.transact(world.alice.address, data)
    assert len(bare.channels) == 1
