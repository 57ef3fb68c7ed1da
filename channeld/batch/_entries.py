"""Batch entries, their Merkle leaves, the message BLS signers sign, and the batch calls' calldata.

The hub (the participant all the batch's channels share) builds one `BatchEntry` per channel from the
channel's current on-chain state; `amount` is the hub's new total withdrawn (withdraw) or its payout
(cooperative close). ChannelBatch.sol checks each entry against the channel's commitment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from channeld.batch._errors import InvalidBatch

UINT256_MAX = 2**256 - 1
WITHDRAW_LEAF = keccak(text="channeld.batch.withdraw")
CLOSE_LEAF = keccak(text="channeld.batch.close")
BATCH_ROOT = keccak(text="channeld.batch.root.v1")
ENTRY_TUPLE = "(bytes32,address,uint256,uint256,uint256,uint256,uint256,uint256)"
SIGNATURE_TUPLE = "(bytes32,bytes32)"
BLS_PROOF_TUPLE = "(bytes,bytes)"


class BatchKind(IntEnum):
    WITHDRAW = 1
    CLOSE = 2


@dataclass(frozen=True, slots=True)
class BatchEntry:
    """One channel of a batch, as ChannelBatch.Entry: the state fields the contract hashes (participant
    order and token follow from the sender, `partner` and the batch's token) and the sender's `amount`."""

    channel_id: bytes
    partner: str
    challenge_period: int
    deposit1: int
    deposit2: int
    withdrawn1: int
    withdrawn2: int
    amount: int

    def __post_init__(self) -> None:
        if not isinstance(self.channel_id, bytes) or len(self.channel_id) != 32:
            raise InvalidBatch("channel_id must be 32 bytes")
        try:
            object.__setattr__(self, "partner", to_checksum_address(self.partner))
        except (TypeError, ValueError) as error:
            raise InvalidBatch(f"partner is not an address: {self.partner!r}") from error
        for name in ("challenge_period", "deposit1", "deposit2", "withdrawn1", "withdrawn2", "amount"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= UINT256_MAX:
                raise InvalidBatch(f"{name} must be an integer in [0, 2**256): {value!r}")

    @property
    def held(self) -> int:
        return self.deposit1 + self.deposit2 - self.withdrawn1 - self.withdrawn2

    def as_abi(self) -> tuple[bytes, str, int, int, int, int, int, int]:
        return (self.channel_id, self.partner, self.challenge_period, self.deposit1, self.deposit2,
                self.withdrawn1, self.withdrawn2, self.amount)


class OpenState(Protocol):
    """The open state of a channel, as channeld.chain.contract.ChannelState has it (not imported here, so
    this package loads neither web3 nor trio)."""

    @property
    def participant1(self) -> str: ...
    @property
    def participant2(self) -> str: ...
    @property
    def challenge_period(self) -> int: ...
    @property
    def deposit1(self) -> int: ...
    @property
    def deposit2(self) -> int: ...
    @property
    def withdrawn1(self) -> int: ...
    @property
    def withdrawn2(self) -> int: ...


def entry_from_state(channel_id: bytes, state: OpenState, sender: str, amount: int) -> BatchEntry:
    """The entry of `sender`'s channel `channel_id` whose current on-chain state is `state`."""
    participants = {to_checksum_address(state.participant1): state.participant2,
                    to_checksum_address(state.participant2): state.participant1}
    try:
        partner = participants[to_checksum_address(sender)]
    except (KeyError, ValueError, TypeError) as error:
        raise InvalidBatch(f"{sender!r} is not a participant of this channel") from error
    return BatchEntry(channel_id, partner, state.challenge_period, state.deposit1, state.deposit2,
                      state.withdrawn1, state.withdrawn2, amount)


def sender_withdrawn(entry: BatchEntry, sender: str) -> int:
    """What `sender` has withdrawn from the entry's channel so far."""
    first = int(to_checksum_address(sender), 16) < int(entry.partner, 16)
    return entry.withdrawn1 if first else entry.withdrawn2


def leaf(kind: BatchKind, entry: BatchEntry) -> bytes:
    """The entry's Merkle leaf: what its partner agrees to."""
    if kind is BatchKind.WITHDRAW:
        return keccak(abi_encode(["bytes32", "bytes32", "uint256"],
                                 [WITHDRAW_LEAF, entry.channel_id, entry.amount]))
    if entry.amount > entry.held:
        raise InvalidBatch(f"a payout of {entry.amount} exceeds the {entry.held} the channel holds")
    return keccak(abi_encode(["bytes32", "bytes32", "uint256", "uint256"],
                             [CLOSE_LEAF, entry.channel_id, entry.amount, entry.held - entry.amount]))


@dataclass(frozen=True, slots=True)
class BatchTerms:
    """What every signer of a BLS batch signs beside the root: where and what the batch is."""

    chain_id: int
    hub: str  # the ChannelHub contract
    kind: BatchKind
    token: str
    sender: str
    receiver: str
    expiry: int

    def message(self, count: int, root: bytes) -> bytes:
        """The 32 bytes hashed to G2 and signed: ChannelBatch.batchMessage."""
        return keccak(abi_encode(
            ["bytes32", "uint256", "address", "uint256", "address", "address", "address", "uint256",
             "uint256", "bytes32"],
            [BATCH_ROOT, self.chain_id, self.hub, int(self.kind), self.token, self.sender, self.receiver,
             self.expiry, count, root],
        ))


def _call(signature: str, types: Sequence[str], values: Sequence[object]) -> bytes:
    return keccak(text=signature)[:4] + abi_encode(list(types), list(values))


def _entries(entries: Sequence[BatchEntry]) -> list[tuple[bytes, str, int, int, int, int, int, int]]:
    if not entries:
        raise InvalidBatch("a batch has at least one entry")
    return [entry.as_abi() for entry in entries]


def _compact(signature: bytes) -> tuple[bytes, bytes]:
    if not isinstance(signature, bytes) or len(signature) != 65 or signature[64] not in (27, 28):
        raise InvalidBatch("an ECDSA signature is 65 bytes r || s || v with v in {27, 28}")
    s = int.from_bytes(signature[32:64], "big")
    return signature[:32], ((signature[64] - 27) << 255 | s).to_bytes(32, "big")


def encode_open_channels(
    token: str, challenge_period: int, salt: int, partners: Sequence[str], deposits: Sequence[int]
) -> bytes:
    """Calldata of openChannels; channel i gets salt `salt + i`. Send the deposits' sum as value for ether."""
    if not partners or len(partners) != len(deposits):
        raise InvalidBatch("one deposit per partner, at least one partner")
    return _call("openChannels(address,uint256,uint256,address[],uint256[])",
                 ["address", "uint256", "uint256", "address[]", "uint256[]"],
                 [token, challenge_period, salt, list(partners), list(deposits)])


def encode_set_total_deposits(token: str, entries: Sequence[BatchEntry]) -> bytes:
    """Calldata of setTotalDeposits: each entry's `amount` is the sender's new total deposit."""
    return _call(f"setTotalDeposits(address,{ENTRY_TUPLE}[])", ["address", f"{ENTRY_TUPLE}[]"],
                 [token, _entries(entries)])


def encode_batch_withdraw(
    token: str, receiver: str, expiry: int, entries: Sequence[BatchEntry], signatures: Sequence[bytes]
) -> bytes:
    """Calldata of batchWithdraw; signatures[i] is entry i's partner's Withdraw signature."""
    return _call(f"batchWithdraw(address,address,uint256,{ENTRY_TUPLE}[],{SIGNATURE_TUPLE}[])",
                 ["address", "address", "uint256", f"{ENTRY_TUPLE}[]", f"{SIGNATURE_TUPLE}[]"],
                 [token, receiver, expiry, _entries(entries), [_compact(s) for s in signatures]])


def encode_batch_cooperative_close(
    token: str, receiver: str, entries: Sequence[BatchEntry], signatures: Sequence[bytes]
) -> bytes:
    """Calldata of batchCooperativeClose; signatures[i] is entry i's partner's CooperativeSettle signature
    (the sender paid `amount` to `receiver`, the partner the rest to its own address)."""
    return _call(f"batchCooperativeClose(address,address,{ENTRY_TUPLE}[],{SIGNATURE_TUPLE}[])",
                 ["address", "address", f"{ENTRY_TUPLE}[]", f"{SIGNATURE_TUPLE}[]"],
                 [token, receiver, _entries(entries), [_compact(s) for s in signatures]])


def encode_batch_bls(
    terms: BatchTerms, entries: Sequence[BatchEntry], aggregate_key: bytes, signature: bytes
) -> bytes:
    """Calldata of batchWithdrawBls or batchCooperativeCloseBls; key and signature in EIP-2537 encoding."""
    if len(aggregate_key) != 128 or len(signature) != 256:
        raise InvalidBatch("the aggregate key is 128 bytes and the signature 256 (EIP-2537 encoding)")
    name = "batchWithdrawBls" if terms.kind is BatchKind.WITHDRAW else "batchCooperativeCloseBls"
    return _call(f"{name}(address,address,uint256,{ENTRY_TUPLE}[],{BLS_PROOF_TUPLE})",
                 ["address", "address", "uint256", f"{ENTRY_TUPLE}[]", BLS_PROOF_TUPLE],
                 [terms.token, terms.receiver, terms.expiry, _entries(entries), (aggregate_key, signature)])


def encode_register_bls_key(public_key: bytes, proof: bytes) -> bytes:
    """Calldata of registerBlsKey, sent by the key's owner (EIP-2537 encodings: 128 and 256 bytes)."""
    if len(public_key) != 128 or len(proof) != 256:
        raise InvalidBatch("a public key is 128 bytes and a proof of possession 256 (EIP-2537 encoding)")
    return _call("registerBlsKey(bytes,bytes)", ["bytes", "bytes"], [public_key, proof])


def encode_register_bls_signers(signers: Sequence[str], keys: Sequence[bytes]) -> bytes:
    """Calldata of registerBlsSigners: the signers in their batches' entry order, with their keys."""
    if not signers or len(signers) != len(keys) or any(len(key) != 128 for key in keys):
        raise InvalidBatch("one 128-byte key per signer, at least one signer")
    return _call("registerBlsSigners(address[],bytes)", ["address[]", "bytes"],
                 [list(signers), b"".join(keys)])


def signers_id(signers: Sequence[str]) -> bytes:
    """The id registerBlsSigners gives a list of signers (one 32-byte word per address, in order)."""
    return keccak(b"".join(bytes(12) + bytes.fromhex(to_checksum_address(s)[2:]) for s in signers))
