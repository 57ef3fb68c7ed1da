"""The binding refuses malformed values and logs before anything reaches the chain or the state."""

from __future__ import annotations

import pytest

from channeld.chain import contract as hub_abi
from channeld.chain.contract import (
    ChannelDeposit,
    ChannelState,
    InvalidCallArgument,
    StoredProof,
    UnknownEvent,
    decode_event,
    decode_revert,
    event_topic,
)

A, B = "0x" + "11" * 20, "0x" + "22" * 20


def test_state_requires_sorted_distinct_participants_and_uint_amounts() -> None:
    with pytest.raises(InvalidCallArgument):
        ChannelState(B, A, hub_abi.ETHER, 10)
    with pytest.raises(InvalidCallArgument):
        ChannelState(A, A, hub_abi.ETHER, 10)
    with pytest.raises(InvalidCallArgument):
        ChannelState(A, B, hub_abi.ETHER, 10, deposit1=-1)
    with pytest.raises(InvalidCallArgument):
        StoredProof(0, 5)  # nonce 0 is "no proof"


def test_signatures_must_be_65_bytes_with_low_s() -> None:
    state = ChannelState(A, B, hub_abi.ETHER, 10)
    with pytest.raises(InvalidCallArgument):
        hub_abi.encode_close_channel(b"\x00" * 32, state, StoredProof(1, 1), b"\x01" * 64)
    high_s = b"\x01" * 32 + b"\xff" * 32 + b"\x1b"
    with pytest.raises(InvalidCallArgument):
        hub_abi.encode_close_channel(b"\x00" * 32, state, StoredProof(1, 1), high_s)


def test_events_decode_and_foreign_logs_are_refused() -> None:
    cid = b"\x05" * 32
    log = {
        "topics": [event_topic(ChannelDeposit), cid, bytes(12) + bytes.fromhex(A[2:])],
        "data": (77).to_bytes(32, "big"),
    }
    assert decode_event(log) == ChannelDeposit(cid, hub_abi.to_checksum_address(A), 77)
    with pytest.raises(UnknownEvent):
        decode_event({"topics": [b"\x00" * 32], "data": b""})
    with pytest.raises(UnknownEvent):
        decode_event({"topics": log["topics"][:2], "data": log["data"]})
    with pytest.raises(UnknownEvent):
        decode_event({"topics": log["topics"], "data": b"\x01"})


def test_revert_data_decodes_to_the_named_error() -> None:
    from eth_utils import keccak

    data = keccak(text="NonceNotIncreasing(uint256,uint256)")[:4] + (5).to_bytes(32, "big") * 2
    refused = decode_revert(data)
    assert (refused.name, refused.args_) == ("NonceNotIncreasing", (5, 5))
    assert decode_revert(b"\xde\xad").name == "Unknown"


def test_withdraw_without_the_withdrawers_own_signature_uses_the_shorter_call() -> None:
    from eth_utils import keccak

    state = ChannelState(A, B, hub_abi.ETHER, 10, deposit1=100)
    signature = b"\x01" * 32 + b"\x02" * 32 + b"\x1b"
    short = hub_abi.encode_set_total_withdraw(b"\x00" * 32, state, A, 5, 99, A, b"", signature)
    full = hub_abi.encode_set_total_withdraw(b"\x00" * 32, state, A, 5, 99, A, signature, signature)
    by_partner = hub_abi.encode_set_total_withdraw(b"\x00" * 32, state, A, 5, 99, A, signature, b"")
    elsewhere = hub_abi.encode_set_total_withdraw(b"\x00" * 32, state, A, 5, 99, B, b"", signature)
    assert short[:4] == keccak(text="withdrawPacked()")[:4]
    assert full[:4] == by_partner[:4] == elsewhere[:4] != short[:4]
    assert len(short) == 4 + 272
    huge = ChannelState(A, B, hub_abi.ETHER, 10, deposit1=2**128)
    unpackable = hub_abi.encode_set_total_withdraw(b"\x00" * 32, huge, A, 5, 99, A, b"", signature)
    assert unpackable[:4] == full[:4]


def test_registry_logs_decode_and_others_are_refused() -> None:
    secret = b"\x09" * 32
    log = {"topics": [hub_abi.SECRET_REVEALED_TOPIC, hub_abi.secret_hash(secret)], "data": secret}
    assert hub_abi.decode_registry_event(log) == hub_abi.SecretRevealed(hub_abi.secret_hash(secret), secret)
    with pytest.raises(UnknownEvent):
        hub_abi.decode_registry_event({"topics": log["topics"][:1], "data": secret})
    with pytest.raises(UnknownEvent):
        hub_abi.decode_registry_event({"topics": [b"\x00" * 32, secret], "data": secret})


def test_unlock_events_apply_once_per_side_and_only_after_a_settle() -> None:
    cid = b"\x05" * 32
    state = ChannelState(A, B, hub_abi.ETHER, 10, deposit1=100)
    closing = hub_abi.Closing(B, 50, proof1=StoredProof(1, 0, 30, b"\x07" * 32))
    settled = hub_abi.OnChainChannel(cid, state, closing, hub_abi.settlement(state, closing))
    unlocked = hub_abi.apply_event(settled, hub_abi.ChannelUnlocked(cid, state.participant1, 30, 0))
    assert unlocked.unlocked1 and unlocked.commitment() == hub_abi.ZERO_ROOT
    with pytest.raises(UnknownEvent):
        hub_abi.apply_event(unlocked, hub_abi.ChannelUnlocked(cid, state.participant1, 30, 0))
    with pytest.raises(UnknownEvent):
        hub_abi.apply_event(hub_abi.OnChainChannel(cid, state), hub_abi.ChannelUnlocked(cid, A, 0, 0))
