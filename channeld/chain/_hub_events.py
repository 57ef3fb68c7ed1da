"""The ChannelHub's events as dataclasses, decoded from logs, and the channel state rebuilt from them.

No IO: `decode_event` turns a log (web3's dict) into its event, `apply_event` folds events into the
`OnChainChannel` whose `commitment()` equals the contract's slot. Re-exported by `channeld.chain.contract`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils import keccak, to_checksum_address

from channeld.chain._hub_state import ChannelState, Closing, OnChainChannel, Settlement, StoredProofFields
from channeld.chain.artifact import load_artifact
from channeld.errors import ChainError


class UnknownEvent(ChainError):
    """A log that is not one of the contract's events, or whose fields do not decode."""


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
class ChannelClosed(StoredProofFields):
    """The proof fields are the partner's proof that the closer submitted."""

    channel_id: bytes
    closer: str
    settle_time: int
    nonce: int
    transferred_amount: int
    locked_amount: int
    locks_root: bytes


@dataclass(frozen=True, slots=True)
class BalanceProofUpdated(StoredProofFields):
    """The closer's proof (signed by `signer`, the closer) that replaced the stored one."""

    channel_id: bytes
    signer: str
    nonce: int
    transferred_amount: int
    locked_amount: int
    locks_root: bytes


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


EventInputs = Sequence[Mapping[str, Any]]


@cache
def _event_table() -> dict[bytes, tuple[type[ChannelEvent], EventInputs]]:
    classes = {cls.__name__: cls for cls in EVENT_CLASSES}
    table = {}
    for entry in load_artifact("ChannelHub").abi:
        if entry["type"] == "event":
            signature = f"{entry['name']}({','.join(item['type'] for item in entry['inputs'])})"
            table[keccak(text=signature)] = (classes[entry["name"]], entry["inputs"])
    return table


SECRET_REVEALED_TOPIC = keccak(text="SecretRevealed(bytes32,bytes32)")


def decode_registry_event(log: Mapping[str, Any]) -> SecretRevealed:
    """A SecretRegistry log (its address is the hub's `secretRegistry()`); UnknownEvent otherwise."""
    topics, data = _topics_and_data(log)
    if len(topics) != 2 or topics[0] != SECRET_REVEALED_TOPIC or len(topics[1]) != 32 or len(data) != 32:
        raise UnknownEvent("log is not a SecretRevealed event")
    return SecretRevealed(topics[1], data)


def event_topic(event: type[ChannelEvent]) -> bytes:
    """topic0 of an event class, for log filters."""
    return next(topic for topic, (cls, _) in _event_table().items() if cls is event)


def _topics_and_data(log: Mapping[str, Any]) -> tuple[list[bytes], bytes]:
    try:
        return [_as_bytes(topic) for topic in log["topics"]], _as_bytes(log["data"])
    except (KeyError, TypeError, ValueError) as error:
        raise UnknownEvent(f"malformed log: {error}") from error


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    raise UnknownEvent(f"not a byte string: {value!r}")


def decode_event(log: Mapping[str, Any]) -> ChannelEvent:
    """A log (web3's dict: `topics` and `data`) as its event dataclass; UnknownEvent if it is not one."""
    topics, data = _topics_and_data(log)
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

