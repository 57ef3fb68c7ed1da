"""Typed binding of the ChannelHub contract: call encoders, event decoders, state commitments.

No IO: every function here turns values into bytes or bytes into values. The contract keeps one
commitment per channel and expects the caller to pass the channel's current state, so this module also
rebuilds that state from the contract's events (`apply_event`) and computes the commitments the contract
stores (`ChannelState.commitment`, `closed_commitment`), which lets a node check its view against the slot.

Addresses are checksummed `str` (as web3 returns them), 32-byte values are `bytes`, amounts are `int`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_utils import keccak, to_checksum_address

# The EIP-712 document builders live beside the contract source; re-exported for the binding's users.
from channeld.addresses import InvalidAddress, checksum_address
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
from channeld.errors import ChainError, LocalFault

ETHER = "0x0000000000000000000000000000000000000000"
"""The `token` of a native-ether channel."""
ZERO_ROOT = b"\x00" * 32
SETTLED = (1).to_bytes(32, "big")
"""The slot of a cooperatively settled channel (a unilateral settle with nothing locked clears it)."""
UINT256_MAX = 2**256 - 1
CHANNEL_TUPLE = "(address,address,address,uint256,uint256,uint256,uint256,uint256)"
PROOF_TUPLE = "(uint256,uint256,uint256,bytes32)"
CLOSING_TUPLE = f"(address,uint256,{PROOF_TUPLE},{PROOF_TUPLE})"
SIGNATURE_TUPLE = "(bytes32,bytes32)"
HALF_CURVE_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


class InvalidCallArgument(LocalFault):
    """A value given to an encoder or a state type is out of range or malformed."""


class UnknownEvent(ChainError):
    """A log that is not one of the contract's events, or whose fields do not decode."""


class ContractRevert(ChainError):
    """The contract refused a call with one of its custom errors (`name`, `args`)."""

    def __init__(self, name: str, args: tuple[Any, ...]) -> None:
        super().__init__(f"{name}{args!r}")
        self.name = name
        self.args_ = args


# ---------------------------------------------------------------------------------------------- artifact


@cache
def artifact() -> dict[str, Any]:
    text = resources.files("channeld.contracts").joinpath("compiled.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def abi(contract: str = "ChannelHub") -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = artifact()["contracts"][contract]["abi"]
    return entries


def bytecode(contract: str = "ChannelHub") -> bytes:
    return bytes.fromhex(artifact()["contracts"][contract]["bytecode"][2:])


def encode_deploy(min_challenge_period: int, max_challenge_period: int) -> bytes:
    """Creation code of ChannelHub with its constructor arguments (challenge period bounds, seconds)."""
    _uint(min_challenge_period, "min_challenge_period")
    _uint(max_challenge_period, "max_challenge_period")
    return bytecode() + abi_encode(["uint256", "uint256"], [min_challenge_period, max_challenge_period])


# ---------------------------------------------------------------------------------------------- values


def _uint(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= UINT256_MAX:
        raise InvalidCallArgument(f"{name} must be an integer in [0, 2**256): {value!r}")
    return value


def _address(value: str, name: str) -> str:
    try:
        return checksum_address(value)
    except InvalidAddress:
        raise InvalidCallArgument(f"{name} must be a 20-byte hex address: {value!r}") from None


def _bytes32(value: bytes, name: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise InvalidCallArgument(f"{name} must be 32 bytes: {value!r}")
    return value


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


@dataclass(frozen=True, slots=True)
class StoredProof:
    """The fields of a balance proof the contract keeps; nonce 0 is "no proof" and must be all zero."""

    nonce: int = 0
    transferred_amount: int = 0
    locked_amount: int = 0
    locks_root: bytes = ZERO_ROOT

    def __post_init__(self) -> None:
        _uint(self.nonce, "nonce")
        _uint(self.transferred_amount, "transferred_amount")
        _uint(self.locked_amount, "locked_amount")
        _bytes32(self.locks_root, "locks_root")
        empty = self.transferred_amount == 0 and self.locked_amount == 0 and self.locks_root == ZERO_ROOT
        if self.nonce == 0 and not empty:
            raise InvalidCallArgument("a proof with nonce 0 stands for no proof: its fields must be zero")

    def as_abi(self) -> tuple[int, int, int, bytes]:
        return (self.nonce, self.transferred_amount, self.locked_amount, self.locks_root)


NO_PROOF = StoredProof()


@dataclass(frozen=True, slots=True)
class ChannelState:
    """The open state the contract commits to; participant1 is the lower address."""

    participant1: str
    participant2: str
    token: str
    challenge_period: int
    deposit1: int = 0
    deposit2: int = 0
    withdrawn1: int = 0
    withdrawn2: int = 0

    def __post_init__(self) -> None:
        for name in ("participant1", "participant2", "token"):
            object.__setattr__(self, name, _address(getattr(self, name), name))
        for name in ("challenge_period", "deposit1", "deposit2", "withdrawn1", "withdrawn2"):
            _uint(getattr(self, name), name)
        if int(self.participant1, 16) >= int(self.participant2, 16):
            raise InvalidCallArgument("participant1 must be the lower of two distinct addresses")

    def as_abi(self) -> tuple[str, str, str, int, int, int, int, int]:
        return (self.participant1, self.participant2, self.token, self.challenge_period,
                self.deposit1, self.deposit2, self.withdrawn1, self.withdrawn2)

    def commitment(self) -> bytes:
        return keccak(abi_encode([CHANNEL_TUPLE], [self.as_abi()]))

    @property
    def held(self) -> int:
        """What the contract holds for this channel."""
        return self.deposit1 + self.deposit2 - self.withdrawn1 - self.withdrawn2

    def is_first(self, participant: str) -> bool:
        """True for participant1, False for participant2; InvalidCallArgument for anyone else."""
        address = _address(participant, "participant")
        if address not in (self.participant1, self.participant2):
            raise InvalidCallArgument(f"{address} is not a participant of this channel")
        return address == self.participant1

    def partner_of(self, participant: str) -> str:
        return self.participant2 if self.is_first(participant) else self.participant1


@dataclass(frozen=True, slots=True)
class Closing:
    """What a close adds to the state: the closer, the last second for updates, both stored proofs."""

    closer: str
    settle_time: int
    proof1: StoredProof = NO_PROOF
    proof2: StoredProof = NO_PROOF

    def __post_init__(self) -> None:
        object.__setattr__(self, "closer", _address(self.closer, "closer"))
        _uint(self.settle_time, "settle_time")

    def as_abi(self) -> tuple[str, int, tuple[int, int, int, bytes], tuple[int, int, int, bytes]]:
        return (self.closer, self.settle_time, self.proof1.as_abi(), self.proof2.as_abi())


def closed_commitment(state: ChannelState, closing: Closing) -> bytes:
    return keccak(abi_encode([CHANNEL_TUPLE, CLOSING_TUPLE], [state.as_abi(), closing.as_abi()]))


@dataclass(frozen=True, slots=True)
class Settlement:
    """What settle pays each participant and keeps locked for each side."""

    amount1: int
    locked1: int
    amount2: int
    locked2: int


def settlement(state: ChannelState, closing: Closing) -> Settlement:
    """The contract's `settlement`, computed here (same saturating arithmetic)."""
    available = state.held
    credit1 = min(state.deposit1 + closing.proof2.transferred_amount, UINT256_MAX)
    debit1 = min(state.withdrawn1 + closing.proof1.transferred_amount, UINT256_MAX)
    net1 = min(max(credit1 - debit1, 0), available)
    net2 = available - net1
    locked1 = min(closing.proof1.locked_amount, net1)
    locked2 = min(closing.proof2.locked_amount, net2)
    return Settlement(net1 - locked1, locked1, net2 - locked2, locked2)


SETTLED_LOCKS_TUPLE = "(address,address,uint256,bytes32,address,uint256,bytes32)"


@dataclass(frozen=True, slots=True)
class SettledLocks:
    """What a unilateral settle keeps for later unlocks (the contract's SettledLocks); locked1/locks_root1
    are participant1's outgoing locks. A side that was unlocked reads zero and the zero root."""

    token: str
    participant1: str
    locked1: int
    locks_root1: bytes
    participant2: str
    locked2: int
    locks_root2: bytes

    def as_abi(self) -> tuple[str, str, int, bytes, str, int, bytes]:
        return (self.token, self.participant1, self.locked1, self.locks_root1, self.participant2,
                self.locked2, self.locks_root2)

    def commitment(self) -> bytes:
        """The slot: zero once nothing stays locked."""
        if self.locked1 == 0 and self.locked2 == 0:
            return ZERO_ROOT
        return keccak(abi_encode([SETTLED_LOCKS_TUPLE], [self.as_abi()]))


def settled_locks(
    state: ChannelState, closing: Closing, *, unlocked1: bool = False, unlocked2: bool = False
) -> SettledLocks:
    """The SettledLocks a settle of (state, closing) leaves, with the sides already unlocked cleared."""
    result = settlement(state, closing)
    locked1, root1 = (0, ZERO_ROOT) if unlocked1 else (result.locked1, closing.proof1.locks_root)
    locked2, root2 = (0, ZERO_ROOT) if unlocked2 else (result.locked2, closing.proof2.locks_root)
    return SettledLocks(state.token, state.participant1, locked1, root1, state.participant2, locked2, root2)


def settled_commitment(state: ChannelState, closing: Closing) -> bytes:
    """The slot after a unilateral settle: zero, or what a later unlock needs if anything stays locked."""
    return settled_locks(state, closing).commitment()


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


def encode_register_secret(secret: bytes) -> bytes:
    """Calldata of SecretRegistry.registerSecret (send it to the registry, `secretRegistry()` of the hub)."""
    if _bytes32(secret, "secret") == ZERO_ROOT:
        raise InvalidCallArgument("the zero secret cannot be registered")
    return _call("registerSecret(bytes32)", ["bytes32"], [secret])


def encode_register_secret_batch(secrets: Sequence[bytes]) -> bytes:
    for secret in secrets:
        if _bytes32(secret, "secret") == ZERO_ROOT:
            raise InvalidCallArgument("the zero secret cannot be registered")
    return _call("registerSecretBatch(bytes32[])", ["bytes32[]"], [list(secrets)])


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


# ---------------------------------------------------------------------------------------------- events
# Each event class lists the contract event's inputs in ABI order, so decoding is one table lookup.


@dataclass(frozen=True, slots=True)
class ChannelOpened:
    channel_id: bytes
    participant1: str
    participant2: str
    token: str
    challenge_period: int
    deposit1: int
    deposit2: int


@dataclass(frozen=True, slots=True)
class ChannelDeposit:
    channel_id: bytes
    participant: str
    total_deposit: int


@dataclass(frozen=True, slots=True)
class ChannelWithdraw:
    channel_id: bytes
    participant: str
    total_withdraw: int
    receiver: str


@dataclass(frozen=True, slots=True)
class ChannelClosed:
    """The proof fields are the partner's proof that the closer submitted."""

    channel_id: bytes
    closer: str
    settle_time: int
    nonce: int
    transferred_amount: int
    locked_amount: int
    locks_root: bytes

    @property
    def proof(self) -> StoredProof:
        return StoredProof(self.nonce, self.transferred_amount, self.locked_amount, self.locks_root)


@dataclass(frozen=True, slots=True)
class BalanceProofUpdated:
    """The closer's proof (signed by `signer`, the closer) that replaced the stored one."""

    channel_id: bytes
    signer: str
    nonce: int
    transferred_amount: int
    locked_amount: int
    locks_root: bytes

    @property
    def proof(self) -> StoredProof:
        return StoredProof(self.nonce, self.transferred_amount, self.locked_amount, self.locks_root)


@dataclass(frozen=True, slots=True)
class ChannelSettled:
    channel_id: bytes
    amount1: int
    amount2: int
    locked1: int
    locked2: int


@dataclass(frozen=True, slots=True)
class ChannelCooperativelySettled:
    channel_id: bytes
    amount1: int
    receiver1: str
    amount2: int
    receiver2: str


@dataclass(frozen=True, slots=True)
class PayoutDeferred:
    token: str
    recipient: str
    amount: int


@dataclass(frozen=True, slots=True)
class PayoutClaimed:
    token: str
    recipient: str
    to: str
    amount: int


@dataclass(frozen=True, slots=True)
class ChannelUnlocked:
    """`sender`'s locks were released: `claimed` to its partner, `returned` to `sender`."""

    channel_id: bytes
    sender: str
    claimed: int
    returned: int


@dataclass(frozen=True, slots=True)
class SecretRevealed:
    """Emitted by the SecretRegistry (its own address, `secretRegistry()` of the hub)."""

    secrethash: bytes
    secret: bytes


ChannelEvent = (
    ChannelOpened | ChannelDeposit | ChannelWithdraw | ChannelClosed | BalanceProofUpdated | ChannelSettled
    | ChannelCooperativelySettled | PayoutDeferred | PayoutClaimed | ChannelUnlocked
)
EVENT_CLASSES: tuple[type[ChannelEvent], ...] = (
    ChannelOpened, ChannelDeposit, ChannelWithdraw, ChannelClosed, BalanceProofUpdated, ChannelSettled,
    ChannelCooperativelySettled, PayoutDeferred, PayoutClaimed, ChannelUnlocked,
)


def _signature_of(entry: Mapping[str, Any]) -> str:
    return f"{entry['name']}({','.join(item['type'] for item in entry['inputs'])})"


@cache
def _event_table() -> dict[bytes, tuple[type[ChannelEvent], list[dict[str, Any]]]]:
    classes = {cls.__name__: cls for cls in EVENT_CLASSES}
    table = {}
    for entry in abi():
        if entry["type"] == "event":
            table[keccak(text=_signature_of(entry))] = (classes[entry["name"]], entry["inputs"])
    return table


SECRET_REVEALED_TOPIC = keccak(text="SecretRevealed(bytes32,bytes32)")


def decode_registry_event(log: Mapping[str, Any]) -> SecretRevealed:
    """A SecretRegistry log (its address is the hub's `secretRegistry()`); UnknownEvent otherwise."""
    try:
        topics = [_as_bytes(topic) for topic in log["topics"]]
        data = _as_bytes(log["data"])
    except (KeyError, TypeError, ValueError) as error:
        raise UnknownEvent(f"malformed log: {error}") from error
    if len(topics) != 2 or topics[0] != SECRET_REVEALED_TOPIC or len(topics[1]) != 32 or len(data) != 32:
        raise UnknownEvent("log is not a SecretRevealed event")
    return SecretRevealed(topics[1], data)


def event_topic(event: type[ChannelEvent]) -> bytes:
    """topic0 of an event class, for log filters."""
    return next(topic for topic, (cls, _) in _event_table().items() if cls is event)


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    raise UnknownEvent(f"not a byte string: {value!r}")


def decode_event(log: Mapping[str, Any]) -> ChannelEvent:
    """A log (web3's dict: `topics` and `data`) as its event dataclass; UnknownEvent if it is not one."""
    try:
        topics = [_as_bytes(topic) for topic in log["topics"]]
        data = _as_bytes(log["data"])
    except (KeyError, TypeError, ValueError) as error:
        raise UnknownEvent(f"malformed log: {error}") from error
    if not topics or topics[0] not in _event_table():
        raise UnknownEvent("log is not a ChannelHub event")
    cls, inputs = _event_table()[topics[0]]
    indexed = [item for item in inputs if item["indexed"]]
    plain = [item for item in inputs if not item["indexed"]]
    if len(topics) != 1 + len(indexed):
        raise UnknownEvent(f"{cls.__name__} needs {len(indexed)} indexed topics, got {len(topics) - 1}")
    try:
        topic_values = iter(abi_decode([item["type"] for item in indexed], b"".join(topics[1:]), strict=True))
        data_values = iter(abi_decode([item["type"] for item in plain], data, strict=True))
    except DecodingError as error:
        raise UnknownEvent(f"{cls.__name__} does not decode: {error}") from error
    fields: list[Any] = []
    for item in inputs:
        value = next(topic_values) if item["indexed"] else next(data_values)
        fields.append(to_checksum_address(value) if item["type"] == "address" else value)
    return cls(*fields)


# ---------------------------------------------------------------------------------- state from events


@dataclass(frozen=True, slots=True)
class OnChainChannel:
    """A channel as the contract holds it, rebuilt from events only; `commitment()` equals the slot."""

    channel_id: bytes
    state: ChannelState
    closing: Closing | None = None
    settled: Settlement | None = None
    cooperative: bool = False
    unlocked1: bool = False  # participant1's locks were released by unlock
    unlocked2: bool = False

    def commitment(self) -> bytes:
        if self.cooperative:
            return SETTLED
        if self.closing is None:
            return self.state.commitment()
        if self.settled is None:
            return closed_commitment(self.state, self.closing)
        return self.settled_locks().commitment()

    def settled_locks(self) -> SettledLocks:
        """What unlock takes as `settled`; InvalidCallArgument before a unilateral settle."""
        if self.closing is None or self.settled is None:
            raise InvalidCallArgument("the channel has not been settled unilaterally")
        return settled_locks(self.state, self.closing, unlocked1=self.unlocked1, unlocked2=self.unlocked2)


def apply_event(channel: OnChainChannel | None, event: ChannelEvent) -> OnChainChannel:
    """The channel after `event`. `channel` is None only before its ChannelOpened; a payout event or an
    event that does not fit the channel's phase raises UnknownEvent (a follower bug or a wrong contract)."""
    if isinstance(event, ChannelOpened):
        if channel is not None:
            raise UnknownEvent("ChannelOpened for a channel that already exists")
        state = ChannelState(event.participant1, event.participant2, event.token, event.challenge_period,
                             event.deposit1, event.deposit2)
        return OnChainChannel(event.channel_id, state)
    if channel is None or isinstance(event, PayoutDeferred | PayoutClaimed):
        raise UnknownEvent(f"{type(event).__name__} does not apply to a channel's state")
    if event.channel_id != channel.channel_id:
        raise UnknownEvent(f"{type(event).__name__} does not apply to this channel")
    if isinstance(event, ChannelUnlocked):
        return _apply_unlock(channel, event)
    if channel.settled is not None or channel.cooperative:
        raise UnknownEvent(f"{type(event).__name__} after the channel was settled")
    if channel.closing is None:
        return _apply_while_open(channel, event)
    return _apply_while_closed(channel, channel.closing, event)


def _apply_unlock(channel: OnChainChannel, event: ChannelUnlocked) -> OnChainChannel:
    if channel.settled is None or channel.cooperative:
        raise UnknownEvent("ChannelUnlocked before a unilateral settle")
    if channel.state.is_first(event.sender):
        if channel.unlocked1:
            raise UnknownEvent("ChannelUnlocked twice for the same side")
        return replace(channel, unlocked1=True)
    if channel.unlocked2:
        raise UnknownEvent("ChannelUnlocked twice for the same side")
    return replace(channel, unlocked2=True)


def _apply_while_open(channel: OnChainChannel, event: ChannelEvent) -> OnChainChannel:
    state = channel.state
    if isinstance(event, ChannelDeposit):
        total = event.total_deposit
        if state.is_first(event.participant):
            return replace(channel, state=replace(state, deposit1=total))
        return replace(channel, state=replace(state, deposit2=total))
    if isinstance(event, ChannelWithdraw):
        total = event.total_withdraw
        if state.is_first(event.participant):
            return replace(channel, state=replace(state, withdrawn1=total))
        return replace(channel, state=replace(state, withdrawn2=total))
    if isinstance(event, ChannelClosed):
        if state.is_first(event.closer):
            closing = Closing(event.closer, event.settle_time, proof2=event.proof)
        else:
            closing = Closing(event.closer, event.settle_time, proof1=event.proof)
        return replace(channel, closing=closing)
    if isinstance(event, ChannelCooperativelySettled):
        return replace(channel, cooperative=True)
    raise UnknownEvent(f"{type(event).__name__} while the channel is open")


def _apply_while_closed(channel: OnChainChannel, closing: Closing, event: ChannelEvent) -> OnChainChannel:
    if isinstance(event, BalanceProofUpdated) and event.signer == closing.closer:
        if channel.state.is_first(event.signer):
            return replace(channel, closing=replace(closing, proof1=event.proof))
        return replace(channel, closing=replace(closing, proof2=event.proof))
    if isinstance(event, ChannelSettled):
        settled = Settlement(event.amount1, event.locked1, event.amount2, event.locked2)
        return replace(channel, settled=settled)
    raise UnknownEvent(f"{type(event).__name__} while the channel is closed")


# ---------------------------------------------------------------------------------------------- reverts


@cache
def _error_table() -> dict[bytes, tuple[str, list[str]]]:
    table = {}
    for entry in abi() + abi("SecretRegistry") + abi("ChannelBatch"):
        if entry["type"] == "error":
            selector = keccak(text=_signature_of(entry))[:4]
            table[selector] = (entry["name"], [item["type"] for item in entry["inputs"]])
    return table


def decode_revert(data: bytes) -> ContractRevert:
    """The contract's custom error in revert data; UnknownEvent-free: unknown data gives name "Unknown"."""
    if len(data) >= 4 and data[:4] in _error_table():
        name, types = _error_table()[data[:4]]
        try:
            values = abi_decode(types, data[4:], strict=True)
        except DecodingError:
            return ContractRevert("Unknown", (data,))
        return ContractRevert(name, tuple(to_checksum_address(v) if t == "address" else v
                                          for v, t in zip(values, types, strict=True)))
    return ContractRevert("Unknown", (data,))
