"""The contract's EIP-712 digests equal eth_account's encode_typed_data digests (proto/eip712.md)."""

from __future__ import annotations

from typing import Any

from eth_abi import encode
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from channeld.chain import contract as hub_abi
from channeld.chain.contract import StoredProof
from tests.contracts.conftest import World

CID = keccak(b"some channel")


def reference_digest(document: dict[str, Any]) -> bytes:
    signable = encode_typed_data(full_message=document)
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def view(world: World, signature: str, types: list[str], values: list[Any]) -> bytes:
    return world.chain.call(world.hub.address, keccak(text=signature)[:4] + encode(types, values))


def test_balance_proof_digests(world: World) -> None:
    proof = StoredProof(7, 10**20, 3 * 10**18, b"\xab" * 32)
    args = [CID, proof.nonce, proof.transferred_amount, proof.locked_amount, proof.locks_root]
    types = ["bytes32", "uint256", "uint256", "uint256", "bytes32"]
    for update, name in ((False, "balanceProofDigest"), (True, "balanceProofUpdateDigest")):
        document = hub_abi.balance_proof_typed_data(
            world.chain.chain_id, world.hub.address, CID, proof, update=update
        )
        assert view(
            world, f"{name}(bytes32,uint256,uint256,uint256,bytes32)", types, args
        ) == reference_digest(document)


def test_withdraw_and_cooperative_settle_digests(world: World) -> None:
    a, b = world.first_second()
    document = hub_abi.withdraw_typed_data(
        world.chain.chain_id, world.hub.address, CID, a.address, 55, 1_700_000_000, b.address
    )
    got = view(
        world,
        "withdrawDigest(bytes32,address,uint256,uint256,address)",
        ["bytes32", "address", "uint256", "uint256", "address"],
        [CID, a.address, 55, 1_700_000_000, b.address],
    )
    assert got == reference_digest(document)
    state = hub_abi.ChannelState(a.address, b.address, world.token.address, 100)
    document = hub_abi.cooperative_settle_typed_data(
        world.chain.chain_id, world.hub.address, CID, state, 1, a.address, 2, world.carol.address
    )
    got = view(
        world,
        "cooperativeSettleDigest(bytes32,address,uint256,address,address,uint256,address)",
        ["bytes32", "address", "uint256", "address", "address", "uint256", "address"],
        [CID, a.address, 1, a.address, b.address, 2, world.carol.address],
    )
    assert got == reference_digest(document)


def test_domain_binds_chain_and_contract(world: World) -> None:
    proof = StoredProof(1, 1)
    here = reference_digest(
        hub_abi.balance_proof_typed_data(world.chain.chain_id, world.hub.address, CID, proof)
    )
    other_chain = reference_digest(
        hub_abi.balance_proof_typed_data(world.chain.chain_id + 1, world.hub.address, CID, proof)
    )
    other_contract = reference_digest(
        hub_abi.balance_proof_typed_data(world.chain.chain_id, world.token.address, CID, proof)
    )
    assert len({here, other_chain, other_contract}) == 3
