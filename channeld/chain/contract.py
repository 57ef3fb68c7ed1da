"""Typed binding of the ChannelHub contract: call encoders, event decoders, state commitments.

No IO: every function here turns values into bytes or bytes into values. This module encodes the calls
and decodes revert data; the state the contract commits to lives in `_hub_state`, the events and the
state rebuilt from them (`apply_event`) in `_hub_events`. Both are re-exported here, so users import
the whole binding from this one module.

Addresses are checksummed `str` (as web3 returns them), 32-byte values are `bytes`, amounts are `int`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak
from eth_utils import to_checksum_address as to_checksum_address

from channeld.chain._hub_events import EVENT_CLASSES as EVENT_CLASSES
from channeld.chain._hub_events import SECRET_REVEALED_TOPIC as SECRET_REVEALED_TOPIC
from channeld.chain._hub_events import BalanceProofUpdated as BalanceProofUpdated
from channeld.chain._hub_events import ChannelClosed as ChannelClosed
from channeld.chain._hub_events import ChannelCooperativelySettled as ChannelCooperativelySettled
from channeld.chain._hub_events import ChannelDeposit as ChannelDeposit
from channeld.chain._hub_events import ChannelEvent as ChannelEvent
from channeld.chain._hub_events import ChannelOpened as ChannelOpened
from channeld.chain._hub_events import ChannelSettled as ChannelSettled
from channeld.chain._hub_events import ChannelUnlocked as ChannelUnlocked
from channeld.chain._hub_events import ChannelWithdraw as ChannelWithdraw
from channeld.chain._hub_events import PayoutClaimed as PayoutClaimed
from channeld.chain._hub_events import PayoutDeferred as PayoutDeferred
from channeld.chain._hub_events import SecretRevealed as SecretRevealed
from channeld.chain._hub_events import UnknownEvent as UnknownEvent
from channeld.chain._hub_events import apply_event as apply_event
from channeld.chain._hub_events import decode_event as decode_event
from channeld.chain._hub_events import decode_registry_event as decode_registry_event
from channeld.chain._hub_events import event_topic as event_topic
from channeld.chain._hub_state import CHANNEL_TUPLE as CHANNEL_TUPLE
from channeld.chain._hub_state import CLOSING_TUPLE as CLOSING_TUPLE
from channeld.chain._hub_state import ETHER as ETHER
from channeld.chain._hub_state import NO_PROOF as NO_PROOF
from channeld.chain._hub_state import PROOF_TUPLE as PROOF_TUPLE
from channeld.chain._hub_state import SETTLED as SETTLED
from channeld.chain._hub_state import SETTLED_LOCKS_TUPLE as SETTLED_LOCKS_TUPLE
from channeld.chain._hub_state import UINT256_MAX as UINT256_MAX
from channeld.chain._hub_state import ZERO_ROOT as ZERO_ROOT
from channeld.chain._hub_state import ChannelState as ChannelState
from channeld.chain._hub_state import Closing as Closing
from channeld.chain._hub_state import InvalidCallArgument as InvalidCallArgument
from channeld.chain._hub_state import OnChainChannel as OnChainChannel
from channeld.chain._hub_state import SettledLocks as SettledLocks
from channeld.chain._hub_state import Settlement as Settlement
from channeld.chain._hub_state import StoredProof as StoredProof
from channeld.chain._hub_state import StoredProofFields as StoredProofFields
from channeld.chain._hub_state import _address, _bytes32, _uint
from channeld.chain._hub_state import closed_commitment as closed_commitment
from channeld.chain._hub_state import settled_commitment as settled_commitment
from channeld.chain._hub_state import settled_locks as settled_locks
from channeld.chain._hub_state import settlement as settlement
from channeld.chain.artifact import ContractArtifact, decode_error, error_selectors, load_artifact

# The EIP-712 document builders live beside the contract source; re-exported for the binding's users.
from channeld.contracts.eip712 import InvalidTypedData as InvalidTypedData
from channeld.contracts.eip712 import balance_proof_typed_data as balance_proof_typed_data
from channeld.contracts.eip712 import cooperative_settle_typed_data as cooperative_settle_typed_data
from channeld.contracts.eip712 import typed_data as typed_data
from channeld.contracts.eip712 import withdraw_typed_data as withdraw_typed_data
from channeld.contracts.locks import MAX_LOCKS as MAX_LOCKS
from channeld.contracts.locks import InvalidLock as InvalidLock
from channeld.contracts.locks import Lock as Lock
from channeld.contracts.locks import locks_root as locks_root
from channeld.contracts.locks import pack_locks as pack_locks
from channeld.contracts.locks import secret_hash as secret_hash
from channeld.errors import ChainError

SIGNATURE_TUPLE = "(bytes32,bytes32)"
HALF_CURVE_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


class ContractRevert(ChainError):
    """The contract refused a call with one of its custom errors (`name`, `args`)."""

    def __init__(self, name: str, args: tuple[Any, ...]) -> None:
        super().__init__(f"{name}{args!r}")
        self.name = name
        self.args_ = args


# ---------------------------------------------------------------------------------------------- artifact


@cache
def _artifact(contract: str) -> ContractArtifact:
    return load_artifact(contract)


def abi(contract: str = "ChannelHub") -> list[Mapping[str, Any]]:
    return list(_artifact(contract).abi)


def bytecode(contract: str = "ChannelHub") -> bytes:
    return _artifact(contract).bytecode


def encode_deploy(min_challenge_period: int, max_challenge_period: int) -> bytes:
    """Creation code of ChannelHub with its constructor arguments (challenge period bounds, seconds)."""
    _uint(min_challenge_period, "min_challenge_period")
    _uint(max_challenge_period, "max_challenge_period")
    return bytecode() + abi_encode(["uint256", "uint256"], [min_challenge_period, max_challenge_period])


# ---------------------------------------------------------------------------------------------- values


def _signature(value: bytes, name: str, *, allow_empty: bool = False) -> tuple[bytes, bytes]:
    """A 65-byte r||s||v signature as the contract takes it: EIP-2098 (r, (v - 27) << 255 | s).
    b"" (where allowed) becomes all zero: "the sender's own transaction is its consent"."""
    if allow_empty and value == b"":
        return (ZERO_ROOT, ZERO_ROOT)
    if not isinstance(value, bytes) or len(value) != 65:
        raise InvalidCallArgument(f"{name} must be a 65-byte r||s||v signature")
    s, v = int.from_bytes(value[32:64], "big"), value[64]
    if v not in (27, 28) or s > HALF_CURVE_ORDER:
        raise InvalidCallArgument(f"{name} needs v in {{27, 28}} and a low s")
    return (value[:32], ((v - 27) << 255 | s).to_bytes(32, "big"))


def channel_id(opener: str, partner: str, salt: int, opened_at: int) -> bytes:
    """The id `openChannel` assigns: keccak256(abi.encode(opener, partner, salt, block timestamp))."""
    encoded = abi_encode(
        ["address", "address", "uint256", "uint256"],
        [_address(opener, "opener"), _address(partner, "partner"), _uint(salt, "salt"),
         _uint(opened_at, "opened_at")],
    )
    return keccak(encoded)


# ---------------------------------------------------------------------------------------------- calls


def _call(signature: str, types: Sequence[str], values: Sequence[Any]) -> bytes:
    return keccak(text=signature)[:4] + abi_encode(list(types), list(values))


def encode_open_channel(
    partner: str, token: str, challenge_period: int, salt: int, deposit: int = 0
) -> bytes:
    """Calldata of openChannel; send `deposit` as value too when token is ETHER."""
    return _call(
        "openChannel(address,address,uint256,uint256,uint256)",
        ["address", "address", "uint256", "uint256", "uint256"],
        [_address(partner, "partner"), _address(token, "token"), _uint(challenge_period, "challenge_period"),
         _uint(salt, "salt"), _uint(deposit, "deposit")],
    )


def encode_set_total_deposit(cid: bytes, state: ChannelState, participant: str, total_deposit: int) -> bytes:
    """Calldata of setTotalDeposit; the sender pays the increase (as value when token is ETHER)."""
    state.is_first(participant)
    return _call(
        f"setTotalDeposit(bytes32,{CHANNEL_TUPLE},address,uint256)",
        ["bytes32", CHANNEL_TUPLE, "address", "uint256"],
        [_bytes32(cid, "channel_id"), state.as_abi(), participant, _uint(total_deposit, "total_deposit")],
    )


WITHDRAW_PACKED_SELECTOR = keccak(text="withdrawPacked()")[:4]


def _fits_packed_withdraw(state: ChannelState, total_withdraw: int) -> bool:
    """Whether withdrawPacked's fixed widths (4 bytes of challenge period, 16 per amount) hold the values."""
    amounts = (state.deposit1, state.deposit2, state.withdrawn1, state.withdrawn2,
               _uint(total_withdraw, "total_withdraw"))
    return state.challenge_period < 2**32 and all(amount < 2**128 for amount in amounts)


def encode_set_total_withdraw(
    cid: bytes, state: ChannelState, participant: str, total_withdraw: int, expiry: int, receiver: str,
    signature1: bytes, signature2: bytes,
) -> bytes:
    """Calldata of setTotalWithdraw; signature1/2 are participant1's/participant2's Withdraw signatures
    (the sender's own may be b"": its transaction is its consent). When the withdrawing participant's
    own signature is b"" and it is paid to itself, it must send the transaction itself, and the shorter,
    packed `withdrawPacked` call is used whenever the state's values fit its widths."""
    first = state.is_first(participant)
    own, partner_signature = (signature1, signature2) if first else (signature2, signature1)
    to_self = _address(receiver, "receiver") == _address(participant, "participant")
    if own == b"" and partner_signature != b"" and to_self and _fits_packed_withdraw(state, total_withdraw):
        r, vs = _signature(partner_signature, "partner_signature")
        addresses = (state.participant1, state.participant2, state.token)
        amounts = (state.deposit1, state.deposit2, state.withdrawn1, state.withdrawn2, total_withdraw)
        return b"".join((
            WITHDRAW_PACKED_SELECTOR, _bytes32(cid, "channel_id"),
            *(bytes.fromhex(address[2:]) for address in addresses),
            state.challenge_period.to_bytes(4, "big"), *(amount.to_bytes(16, "big") for amount in amounts),
            _uint(expiry, "expiry").to_bytes(32, "big"), r, vs,
        ))
    return _call(
        f"setTotalWithdraw(bytes32,{CHANNEL_TUPLE},address,uint256,uint256,address,{SIGNATURE_TUPLE},"
        f"{SIGNATURE_TUPLE})",
        ["bytes32", CHANNEL_TUPLE, "address", "uint256", "uint256", "address", SIGNATURE_TUPLE,
         SIGNATURE_TUPLE],
        [_bytes32(cid, "channel_id"), state.as_abi(), participant, _uint(total_withdraw, "total_withdraw"),
         _uint(expiry, "expiry"), _address(receiver, "receiver"),
         _signature(signature1, "signature1", allow_empty=True),
         _signature(signature2, "signature2", allow_empty=True)],
    )


def encode_close_channel(
    cid: bytes, state: ChannelState, partner_proof: StoredProof = NO_PROOF, partner_signature: bytes = b""
) -> bytes:
    """Calldata of closeChannel (sent by a participant) with the partner's latest proof, or none."""
    signature = _signature(partner_signature, "partner_signature", allow_empty=partner_proof.nonce == 0)
    return _call(
        f"closeChannel(bytes32,{CHANNEL_TUPLE},{PROOF_TUPLE},{SIGNATURE_TUPLE})",
        ["bytes32", CHANNEL_TUPLE, PROOF_TUPLE, SIGNATURE_TUPLE],
        [_bytes32(cid, "channel_id"), state.as_abi(), partner_proof.as_abi(), signature],
    )


def encode_update_balance_proof(
    cid: bytes, state: ChannelState, closing: Closing, closer_proof: StoredProof, closer_signature: bytes,
    partner_authorization: bytes = b"",
) -> bytes:
    """Calldata of updateBalanceProof. Without `partner_authorization` (the non-closer's
    BalanceProofUpdate signature) only the non-closing participant itself may send it."""
    return _call(
        f"updateBalanceProof(bytes32,{CHANNEL_TUPLE},{CLOSING_TUPLE},{PROOF_TUPLE},{SIGNATURE_TUPLE},"
        f"{SIGNATURE_TUPLE})",
        ["bytes32", CHANNEL_TUPLE, CLOSING_TUPLE, PROOF_TUPLE, SIGNATURE_TUPLE, SIGNATURE_TUPLE],
        [_bytes32(cid, "channel_id"), state.as_abi(), closing.as_abi(), closer_proof.as_abi(),
         _signature(closer_signature, "closer_signature"),
         _signature(partner_authorization, "partner_authorization", allow_empty=True)],
    )


def encode_settle_channel(cid: bytes, state: ChannelState, closing: Closing) -> bytes:
    return _call(
        f"settleChannel(bytes32,{CHANNEL_TUPLE},{CLOSING_TUPLE})",
        ["bytes32", CHANNEL_TUPLE, CLOSING_TUPLE],
        [_bytes32(cid, "channel_id"), state.as_abi(), closing.as_abi()],
    )


def encode_cooperative_settle(
    cid: bytes, state: ChannelState, amount1: int, receiver1: str, amount2: int, receiver2: str,
    signature1: bytes, signature2: bytes,
) -> bytes:
    """Calldata of cooperativeSettle; amount1 + amount2 must equal `state.held`. The sender's own
    signature may be b""."""
    return _call(
        f"cooperativeSettle(bytes32,{CHANNEL_TUPLE},uint256,address,uint256,address,{SIGNATURE_TUPLE},"
        f"{SIGNATURE_TUPLE})",
        ["bytes32", CHANNEL_TUPLE, "uint256", "address", "uint256", "address", SIGNATURE_TUPLE,
         SIGNATURE_TUPLE],
        [_bytes32(cid, "channel_id"), state.as_abi(), _uint(amount1, "amount1"),
         _address(receiver1, "receiver1"), _uint(amount2, "amount2"), _address(receiver2, "receiver2"),
         _signature(signature1, "signature1", allow_empty=True),
         _signature(signature2, "signature2", allow_empty=True)],
    )


def encode_unlock(cid: bytes, settled: SettledLocks, sender: str, packed_locks: bytes) -> bytes:
    """Calldata of unlock: release `sender`'s locked amount of a settled channel; `packed_locks` are the
    locks its last proof committed to (`pack_locks`). Anyone may send it."""
    if not isinstance(packed_locks, bytes) or len(packed_locks) % 96 or len(packed_locks) > 96 * MAX_LOCKS:
        raise InvalidCallArgument("packed_locks must be up to 32 locks of 96 bytes")
    if _address(sender, "sender") not in (settled.participant1, settled.participant2):
        raise InvalidCallArgument(f"{sender} is not a participant of this channel")
    return _call(
        f"unlock(bytes32,{SETTLED_LOCKS_TUPLE},address,bytes)",
        ["bytes32", SETTLED_LOCKS_TUPLE, "address", "bytes"],
        [_bytes32(cid, "channel_id"), settled.as_abi(), sender, packed_locks],
    )


def _registrable(secret: bytes) -> bytes:
    if _bytes32(secret, "secret") == ZERO_ROOT:
        raise InvalidCallArgument("the zero secret cannot be registered")
    return secret


def encode_register_secret(secret: bytes) -> bytes:
    """Calldata of SecretRegistry.registerSecret (send it to the registry, `secretRegistry()` of the hub)."""
    return _call("registerSecret(bytes32)", ["bytes32"], [_registrable(secret)])


def encode_register_secret_batch(secrets: Sequence[bytes]) -> bytes:
    return _call("registerSecretBatch(bytes32[])", ["bytes32[]"], [[_registrable(s) for s in secrets]])


def encode_registration_time(secrethash: bytes) -> bytes:
    """Calldata of the registry's `registrationTime(bytes32)` view (zero: never revealed)."""
    return _call("registrationTime(bytes32)", ["bytes32"], [_bytes32(secrethash, "secrethash")])


def encode_secret_registry() -> bytes:
    """Calldata of the hub's `secretRegistry()` view (the registry's address)."""
    return _call("secretRegistry()", [], [])


def encode_attach_extension(extension: str) -> bytes:
    """Calldata of attachExtension: the deployed ChannelBatch (`bytecode("ChannelBatch")`), once per hub."""
    return _call("attachExtension(address)", ["address"], [_address(extension, "extension")])


def encode_claim(token: str, to: str) -> bytes:
    """Calldata of claim: pay the sender's deferred payouts in `token` to `to`."""
    return _call("claim(address,address)", ["address", "address"],
                 [_address(token, "token"), _address(to, "to")])


def encode_channels(cid: bytes) -> bytes:
    """Calldata of the `channels(bytes32)` view (returns the slot's commitment)."""
    return _call("channels(bytes32)", ["bytes32"], [_bytes32(cid, "channel_id")])


# ---------------------------------------------------------------------------------------------- reverts


@cache
def _error_table() -> dict[bytes, tuple[str, list[str]]]:
    return error_selectors(abi() + abi("SecretRegistry") + abi("ChannelBatch"))


def decode_revert(data: bytes) -> ContractRevert:
    """The contract's custom error in revert data; data no error explains gives name "Unknown"."""
    name, args = decode_error(_error_table(), data) or ("Unknown", (data,))
    return ContractRevert(name, args)
