"""EIP-712 documents of the four channeld types (proto/eip712.md) for eth_account's encode_typed_data.

The ChannelHub contract's *Digest views return the same digests (tests/contracts/test_digests.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from eth_utils import is_address, to_checksum_address

from channeld.errors import LocalFault

if TYPE_CHECKING:
    from channeld.chain.contract import ChannelState, StoredProof

UINT256_MAX = 2**256 - 1


class InvalidTypedData(LocalFault):
    """A value for an EIP-712 document is out of range or malformed."""


def _uint(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= UINT256_MAX:
        raise InvalidTypedData(f"{name} must be an integer in [0, 2**256): {value!r}")
    return value


def _address(value: str, name: str) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise InvalidTypedData(f"{name} must be a 20-byte hex address: {value!r}")
    return to_checksum_address(value)


def _bytes32(value: bytes, name: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise InvalidTypedData(f"{name} must be 32 bytes: {value!r}")
    return value



_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
_PROOF_FIELDS = [
    {"name": "channelId", "type": "bytes32"},
    {"name": "nonce", "type": "uint256"},
    {"name": "transferredAmount", "type": "uint256"},
    {"name": "lockedAmount", "type": "uint256"},
    {"name": "locksRoot", "type": "bytes32"},
]
_MESSAGE_FIELDS: dict[str, list[dict[str, str]]] = {
    "BalanceProof": _PROOF_FIELDS,
    "BalanceProofUpdate": _PROOF_FIELDS,
    "Withdraw": [
        {"name": "channelId", "type": "bytes32"},
        {"name": "participant", "type": "address"},
        {"name": "totalWithdraw", "type": "uint256"},
        {"name": "expiry", "type": "uint256"},
        {"name": "receiver", "type": "address"},
    ],
    "CooperativeSettle": [
        {"name": "channelId", "type": "bytes32"},
        {"name": "participant1", "type": "address"},
        {"name": "amount1", "type": "uint256"},
        {"name": "receiver1", "type": "address"},
        {"name": "participant2", "type": "address"},
        {"name": "amount2", "type": "uint256"},
        {"name": "receiver2", "type": "address"},
    ],
}


def typed_data(primary_type: str, chain_id: int, contract: str, message: Mapping[str, Any]) -> dict[str, Any]:
    """An EIP-712 document of one of the four channeld types, bound to (chain_id, contract)."""
    if primary_type not in _MESSAGE_FIELDS:
        raise InvalidTypedData(f"unknown EIP-712 type {primary_type!r}")
    return {
        "types": {"EIP712Domain": _DOMAIN_FIELDS, primary_type: _MESSAGE_FIELDS[primary_type]},
        "primaryType": primary_type,
        "domain": {"name": "channeld", "version": "1", "chainId": _uint(chain_id, "chain_id"),
                   "verifyingContract": _address(contract, "contract")},
        "message": dict(message),
    }


def balance_proof_typed_data(
    chain_id: int, contract: str, cid: bytes, proof: StoredProof, *, update: bool = False
) -> dict[str, Any]:
    """BalanceProof (signed by the sender), or with update=True the BalanceProofUpdate that the
    recipient signs to let a watchtower submit the proof after its partner closed."""
    message = {"channelId": _bytes32(cid, "channel_id"), "nonce": proof.nonce,
               "transferredAmount": proof.transferred_amount, "lockedAmount": proof.locked_amount,
               "locksRoot": proof.locks_root}
    return typed_data("BalanceProofUpdate" if update else "BalanceProof", chain_id, contract, message)


def withdraw_typed_data(
    chain_id: int, contract: str, cid: bytes, participant: str, total_withdraw: int, expiry: int,
    receiver: str,
) -> dict[str, Any]:
    message = {"channelId": _bytes32(cid, "channel_id"), "participant": _address(participant, "participant"),
               "totalWithdraw": _uint(total_withdraw, "total_withdraw"), "expiry": _uint(expiry, "expiry"),
               "receiver": _address(receiver, "receiver")}
    return typed_data("Withdraw", chain_id, contract, message)


def cooperative_settle_typed_data(
    chain_id: int, contract: str, cid: bytes, state: ChannelState, amount1: int, receiver1: str,
    amount2: int, receiver2: str,
) -> dict[str, Any]:
    message = {"channelId": _bytes32(cid, "channel_id"), "participant1": state.participant1,
               "amount1": _uint(amount1, "amount1"), "receiver1": _address(receiver1, "receiver1"),
               "participant2": state.participant2, "amount2": _uint(amount2, "amount2"),
               "receiver2": _address(receiver2, "receiver2")}
    return typed_data("CooperativeSettle", chain_id, contract, message)
