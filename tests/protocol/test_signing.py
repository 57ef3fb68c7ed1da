"""EIP-712 digests against eth_account and the contract; signatures' shape and checks."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from channeld import protocol as p
from channeld.errors import LocalFault
from channeld.protocol._signing import SECP256K1_N
from tests.tools import Anvil

uint256 = st.integers(0, 2**256 - 1)
bytes32 = st.binary(min_size=32, max_size=32)
address = st.binary(min_size=20, max_size=20)
chain_ids = st.integers(1, 2**64 - 1)

DOMAIN_FIELDS = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                 {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}]


def reference_digest(primary: str, fields: list[tuple[str, str]], chain_id: int, contract: bytes,
                     message: dict[str, object]) -> bytes:
    typed = {
        "types": {"EIP712Domain": DOMAIN_FIELDS, primary: [{"name": n, "type": t} for n, t in fields]},
        "primaryType": primary,
        "domain": {"name": "channeld", "version": "1", "chainId": chain_id,
                   "verifyingContract": to_checksum_address(contract)},
        "message": message,
    }
    signable = encode_typed_data(full_message=typed)
    return p.keccak256(b"\x19" + signable.version + signable.header + signable.body)


@settings(max_examples=40, deadline=None)
@given(chain_ids, address, bytes32, uint256, uint256, uint256, bytes32)
def test_balance_proof_digest_equals_eth_account(chain_id: int, contract: bytes, channel: bytes, nonce: int,
                                                 transferred: int, locked: int, root: bytes) -> None:
    fields = [("channelId", "bytes32"), ("nonce", "uint256"), ("transferredAmount", "uint256"),
              ("lockedAmount", "uint256"), ("locksRoot", "bytes32")]
    message = {"channelId": channel, "nonce": nonce, "transferredAmount": transferred,
               "lockedAmount": locked, "locksRoot": root}
    expected = reference_digest("BalanceProof", fields, chain_id, contract, message)
    assert p.balance_proof_digest(chain_id, contract, channel, nonce, transferred, locked, root) == expected


@settings(max_examples=20, deadline=None)
@given(chain_ids, address, bytes32, uint256, uint256, uint256, bytes32)
def test_balance_proof_update_digest_equals_eth_account(chain_id: int, contract: bytes, channel: bytes,
                                                        nonce: int, transferred: int, locked: int,
                                                        root: bytes) -> None:
    fields = [("channelId", "bytes32"), ("nonce", "uint256"), ("transferredAmount", "uint256"),
              ("lockedAmount", "uint256"), ("locksRoot", "bytes32")]
    message = {"channelId": channel, "nonce": nonce, "transferredAmount": transferred,
               "lockedAmount": locked, "locksRoot": root}
    expected = reference_digest("BalanceProofUpdate", fields, chain_id, contract, message)
    got = p.balance_proof_update_digest(chain_id, contract, channel, nonce, transferred, locked, root)
    assert got == expected
    assert got != p.balance_proof_digest(chain_id, contract, channel, nonce, transferred, locked, root)


@settings(max_examples=40, deadline=None)
@given(chain_ids, address, bytes32, address, uint256, uint256, address)
def test_withdraw_digest_equals_eth_account(chain_id: int, contract: bytes, channel: bytes,
                                            participant: bytes, total: int, expiry: int,
                                            receiver: bytes) -> None:
    fields = [("channelId", "bytes32"), ("participant", "address"), ("totalWithdraw", "uint256"),
              ("expiry", "uint256"), ("receiver", "address")]
    message = {"channelId": channel, "participant": to_checksum_address(participant), "totalWithdraw": total,
               "expiry": expiry, "receiver": to_checksum_address(receiver)}
    expected = reference_digest("Withdraw", fields, chain_id, contract, message)
    assert p.withdraw_digest(chain_id, contract, channel, participant, total, expiry, receiver) == expected


@settings(max_examples=40, deadline=None)
@given(chain_ids, address, bytes32, address, uint256, address, address, uint256, address)
def test_cooperative_settle_digest_equals_eth_account(chain_id: int, contract: bytes, channel: bytes,
                                                      p1: bytes, a1: int, r1: bytes, p2: bytes, a2: int,
                                                      r2: bytes) -> None:
    fields = [("channelId", "bytes32"), ("participant1", "address"), ("amount1", "uint256"),
              ("receiver1", "address"), ("participant2", "address"), ("amount2", "uint256"),
              ("receiver2", "address")]
    cs = to_checksum_address
    message = {"channelId": channel, "participant1": cs(p1), "amount1": a1, "receiver1": cs(r1),
               "participant2": cs(p2), "amount2": a2, "receiver2": cs(r2)}
    expected = reference_digest("CooperativeSettle", fields, chain_id, contract, message)
    got = p.cooperative_settle_digest(chain_id, contract, channel, p1, a1, r1, p2, a2, r2)
    assert got == expected


SIGNER = p.Signer(p.keccak256(b"signing test"))
DIGEST = p.keccak256(b"some digest")


def test_address_matches_eth_account() -> None:
    assert to_checksum_address(SIGNER.address) == Account.from_key(p.keccak256(b"signing test")).address


@settings(max_examples=30, deadline=None)
@given(bytes32)
def test_signature_is_rsv_low_s_and_recovers_with_eth_account(digest: bytes) -> None:
    signature = SIGNER.sign(digest)
    assert len(signature) == 65 and signature[64] in (27, 28)
    assert int.from_bytes(signature[32:64], "big") <= SECP256K1_N // 2
    recovered = Account._recover_hash(digest, signature=signature)
    assert recovered == to_checksum_address(SIGNER.address)
    assert p.recover_address(digest, signature) == SIGNER.address
    p.KnownKey(SIGNER.public_key).check(digest, signature)


def flip_v(signature: bytes) -> bytes:
    return signature[:64] + bytes([55 - signature[64]])


def high_s(signature: bytes) -> bytes:
    s = int.from_bytes(signature[32:64], "big")
    return signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - signature[64]])


@pytest.mark.parametrize(("name", "mangle"), [
    ("wrong v", flip_v),
    ("high s (the malleable twin of a valid signature)", high_s),
    ("v as 0/1", lambda s: s[:64] + bytes([s[64] - 27])),
    ("r zero", lambda s: bytes(32) + s[32:]),
    ("s zero", lambda s: s[:32] + bytes(32) + s[64:]),
    ("r = n", lambda s: SECP256K1_N.to_bytes(32, "big") + s[32:]),
    ("64 bytes", lambda s: s[:64]),
    ("flipped bit in r", lambda s: bytes([s[0] ^ 1]) + s[1:]),
])
def test_known_key_refuses(name: str, mangle: object) -> None:
    signature = SIGNER.sign(DIGEST)
    with pytest.raises(p.InvalidSignature):
        p.KnownKey(SIGNER.public_key).check(DIGEST, mangle(signature))  # type: ignore[operator]


def test_check_rs_ignores_v_and_chain_signature_restores_the_recoverable_one() -> None:
    # a plain verify ignores v, the contract's ecrecover does not: the payment path verifies (r, s),
    # and the proof is given its recoverable v when it goes on chain
    good = SIGNER.sign(DIGEST)
    flipped = flip_v(good)
    key = p.KnownKey(SIGNER.public_key)
    key.check_rs(DIGEST, flipped)
    assert Account._recover_hash(DIGEST, signature=flipped) != to_checksum_address(SIGNER.address)
    with pytest.raises(p.InvalidSignature):
        key.check(DIGEST, flipped)
    assert key.chain_signature(DIGEST, flipped) == good
    assert key.chain_signature(DIGEST, good) == good
    assert Account._recover_hash(DIGEST, signature=key.chain_signature(DIGEST, flipped)) == \
        to_checksum_address(SIGNER.address)


@pytest.mark.parametrize(("name", "mangle"), [
    ("high s (the malleable twin of a valid signature)", high_s),
    ("v as 0/1", lambda s: s[:64] + bytes([s[64] - 27])),
    ("r zero", lambda s: bytes(32) + s[32:]),
    ("s zero", lambda s: s[:32] + bytes(32) + s[64:]),
    ("r = n", lambda s: SECP256K1_N.to_bytes(32, "big") + s[32:]),
    ("64 bytes", lambda s: s[:64]),
    ("flipped bit in r", lambda s: bytes([s[0] ^ 1]) + s[1:]),
    ("flipped bit in s", lambda s: s[:40] + bytes([s[40] ^ 1]) + s[41:]),
])
def test_check_rs_refuses(name: str, mangle: object) -> None:
    signature = mangle(SIGNER.sign(DIGEST))  # type: ignore[operator]
    key = p.KnownKey(SIGNER.public_key)
    with pytest.raises(p.InvalidSignature):
        key.check_rs(DIGEST, signature)
    if len(signature) == 65 and signature[64] in (27, 28):
        with pytest.raises(p.InvalidSignature):
            key.chain_signature(DIGEST, signature)


def test_check_rs_refuses_another_signer_and_another_digest() -> None:
    other = p.Signer(p.keccak256(b"other"))
    key = p.KnownKey(SIGNER.public_key)
    with pytest.raises(p.InvalidSignature, match="not by the partner"):
        key.check_rs(DIGEST, other.sign(DIGEST))
    with pytest.raises(p.InvalidSignature):
        key.check_rs(p.keccak256(b"another digest"), SIGNER.sign(DIGEST))


def test_known_key_refuses_another_signer() -> None:
    other = p.Signer(p.keccak256(b"other"))
    with pytest.raises(p.InvalidSignature, match="not by the partner"):
        p.KnownKey(SIGNER.public_key).check(DIGEST, other.sign(DIGEST))


def test_bad_keys_are_local_faults() -> None:
    for secret in (bytes(32), SECP256K1_N.to_bytes(32, "big"), b"short"):
        with pytest.raises(LocalFault):
            p.Signer(secret)
    with pytest.raises(LocalFault):
        p.KnownKey(b"\x04" + bytes(64))


def test_digests_equal_the_contracts_digest_views_on_anvil(anvil: Anvil) -> None:
    from web3 import Web3

    from channeld.chain.contract import abi, encode_deploy

    w3 = Web3(Web3.HTTPProvider(anvil.url))
    deployer = w3.eth.accounts[0]
    tx = w3.eth.send_transaction({"from": deployer, "data": encode_deploy(60, 86400)})
    hub_address = w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
    hub = w3.eth.contract(address=hub_address, abi=abi())
    contract = bytes.fromhex(hub_address[2:])
    chain_id = w3.eth.chain_id
    channel, root = p.keccak256(b"cid"), p.keccak256(b"root")
    a1, a2 = bytes([0x11] * 20), bytes([0x22] * 20)
    cs = to_checksum_address

    proof_args = (channel, 7, 2**255 + 3, 12, root)
    assert hub.functions.balanceProofDigest(*proof_args).call() == p.balance_proof_digest(
        chain_id, contract, *proof_args)
    assert hub.functions.balanceProofUpdateDigest(*proof_args).call() == p.balance_proof_update_digest(
        chain_id, contract, *proof_args)
    assert hub.functions.withdrawDigest(channel, cs(a1), 10**20, 1_700_000_000, cs(a2)).call() == \
        p.withdraw_digest(chain_id, contract, channel, a1, 10**20, 1_700_000_000, a2)
    assert hub.functions.cooperativeSettleDigest(channel, cs(a1), 5, cs(a1), cs(a2), 6, cs(a2)).call() == \
        p.cooperative_settle_digest(chain_id, contract, channel, a1, 5, a1, a2, 6, a2)
