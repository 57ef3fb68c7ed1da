from __future__ import annotations

import contextlib
import copy
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channeld import wire
from channeld.errors import LocalFault, PeerFault
from tests.wire.samples import CHANNEL, CONTRACT, SAMPLES, SIG, proof


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def wire_list(msg: wire.Message) -> list[Any]:
    return [msg.TAG, msg.VERSION, *msg.to_wire()]


PAYMENT = next(m for m in SAMPLES if isinstance(m, wire.Payment))


def test_catalogue_has_every_sample_type_once() -> None:
    assert sorted(type(m).TAG for m in SAMPLES) == sorted(wire.CATALOGUE)


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip_all_at_once(msg: wire.Message) -> None:
    data = wire.encode(msg)
    assert wire.decode(data) == msg
    assert wire.encode(wire.decode(data)) == data


def test_stream_byte_by_byte_yields_each_message_when_complete() -> None:
    stream = wire.MessageStream()
    got: list[wire.Message] = []
    for msg in SAMPLES:
        data = wire.encode(msg)
        for i, byte in enumerate(data):
            stream.receive_data(bytes([byte]))
            out = stream.next_message()
            if i < len(data) - 1:
                assert out is None
            else:
                got.append(out)  # type: ignore[arg-type]
    assert got == SAMPLES


def test_stream_all_at_once_yields_all_then_needs_data() -> None:
    stream = wire.MessageStream()
    stream.receive_data(b"".join(wire.encode(m) for m in SAMPLES))
    assert [stream.next_message() for _ in SAMPLES] == SAMPLES
    assert stream.next_message() is None


def test_stream_is_unusable_after_a_decode_error() -> None:
    stream = wire.MessageStream()
    stream.receive_data(pack([999, 1]))
    with pytest.raises(wire.UnknownMessageType):
        stream.next_message()
    with pytest.raises(wire.DecodeError, match="already failed"):
        stream.receive_data(wire.encode(SAMPLES[0]))


def test_stream_refuses_a_flood_without_a_message() -> None:
    stream = wire.MessageStream()
    # a bin header announcing 200 kB: the unpacker would wait forever for it
    with pytest.raises(wire.DecodeError):
        stream.receive_data(b"\xc6\x00\x03\x0d\x40" + bytes(140_000))
        stream.next_message()


def test_stream_refuses_a_message_over_the_size_limit() -> None:
    stream = wire.MessageStream()
    big = pack([wire.Ping.TAG, 1, 0, bytes(60_000), bytes(60_000)])
    stream.receive_data(big)
    with pytest.raises(wire.MessageTooLarge):
        stream.next_message()


def test_decode_refuses_trailing_bytes() -> None:
    with pytest.raises(wire.DecodeError):
        wire.decode(wire.encode(SAMPLES[0]) + b"\x00")


def test_decode_refuses_truncated_message() -> None:
    data = wire.encode(PAYMENT)
    for cut in range(len(data)):
        with pytest.raises(wire.DecodeError):
            wire.decode(data[:cut])


def test_decode_refuses_oversized_input_before_parsing() -> None:
    with pytest.raises(wire.MessageTooLarge):
        wire.decode(bytes(wire.MAX_MESSAGE_SIZE + 1))


def test_unknown_type_and_version() -> None:
    with pytest.raises(wire.UnknownMessageType):
        wire.decode(pack([250, 1]))
    with pytest.raises(wire.UnknownMessageType):
        wire.decode(pack(["1", 1]))
    bad_version = wire_list(SAMPLES[0])
    bad_version[1] = SAMPLES[0].VERSION + 1
    with pytest.raises(wire.UnsupportedVersion):
        wire.decode(pack(bad_version))
    bad_version[1] = True  # msgpack true is not the integer 1
    with pytest.raises(wire.UnsupportedVersion):
        wire.decode(pack(bad_version))


def test_missing_and_extra_fields() -> None:
    fields = wire_list(SAMPLES[0])
    with pytest.raises(wire.InvalidField, match="5 fields"):
        wire.decode(pack(fields[:-1]))
    with pytest.raises(wire.InvalidField, match="5 fields"):
        wire.decode(pack([*fields, 0]))


def test_nested_proof_with_missing_field() -> None:
    fields = wire_list(PAYMENT)
    fields[2] = fields[2][:-1]
    with pytest.raises(wire.InvalidField, match="BalanceProof with 8 fields"):
        wire.decode(pack(fields))


# (position in the Payment's wire list (2 = the proof), index inside the proof or None, bad value)
BAD_PAYMENT_FIELDS = [
    (2, 0, "31337"),             # chain id as text
    (2, 0, True),                # a bool is not an integer
    (2, 0, -1),                  # negative
    (2, 0, 1.5),                 # float
    (2, 1, bytes(19)),           # address too short
    (2, 2, bytes(33)),           # channel id too long
    (2, 3, 0),                   # nonce 0 is never signed
    (2, 4, 5),                   # uint256 must be 32 bytes, not a msgpack int
    (2, 4, bytes(31)),           # uint256 of 31 bytes
    (2, 5, (1).to_bytes(32, "big")),  # locked amount without a locks root
    (2, 7, bytes(64)),           # signature too short
    (2, 7, None),                # nil
    (3, None, 2**64),            # payment id beyond uint64 (msgpack cannot even carry it: bin)
    (4, None, bytes(32)),        # payment amount zero
    (5, None, bytes(1025)),      # oversized metadata
    (5, None, "text"),           # str where bytes are required
    (2, None, {"a": 1}),         # a map where the proof belongs
]


@pytest.mark.parametrize(("position", "inner", "value"), BAD_PAYMENT_FIELDS)
def test_bad_payment_field_is_a_decode_error(position: int, inner: int | None, value: Any) -> None:
    fields = copy.deepcopy(wire_list(PAYMENT))
    if inner is None:
        fields[position] = value if value != 2**64 else (2**64).to_bytes(9, "big")
    else:
        fields[2][inner] = value
    with pytest.raises(wire.DecodeError):
        wire.decode(pack(fields))


def test_invalid_utf8_text_is_a_decode_error() -> None:
    data = wire.encode(wire.Error(wire.ZERO32, 1, "ab"))
    with pytest.raises(wire.DecodeError):
        wire.decode(data.replace(b"\xa2ab", b"\xa2\xff\xfe"))


def test_text_over_its_byte_limit() -> None:
    with pytest.raises(wire.DecodeError):
        wire.decode(pack([wire.Error.TAG, 1, bytes(32), 1, "é" * 600]))


def test_ext_types_and_maps_are_refused() -> None:
    with pytest.raises(wire.DecodeError):
        wire.decode(pack([wire.Pong.TAG, 1, msgpack.ExtType(1, b"x")]))
    with pytest.raises(wire.DecodeError):
        wire.decode(pack({"type": 4}))
    with pytest.raises(wire.DecodeError):
        wire.decode(pack(4))


def test_uint16_out_of_range() -> None:
    with pytest.raises(wire.InvalidField, match="uint16"):
        wire.decode(pack([wire.Ping.TAG, 1, 70_000, b""]))


def test_decode_errors_are_peer_faults() -> None:
    assert issubclass(wire.DecodeError, PeerFault)


def test_building_an_invalid_message_is_a_local_fault() -> None:
    with pytest.raises(wire.InvalidMessage):
        wire.Ping(-1, b"")
    with pytest.raises(wire.InvalidMessage):
        wire.BalanceProof(1, CONTRACT, CHANNEL, 1, 2**256, 0, wire.ZERO32, SIG)
    with pytest.raises(wire.InvalidMessage, match="participant1 must be lower"):
        wire.ChannelOpened(1, CONTRACT, CHANNEL, b"\x22" * 20, b"\x11" * 20, 10)
    with pytest.raises(wire.InvalidMessage, match="locked_amount must include"):
        wire.LockedTransfer(proof(locked=5), wire.Lock(6, 1, bytes(32)), 1, CONTRACT, CONTRACT, b"")
    with pytest.raises(LocalFault):
        wire.encode("not a message")  # type: ignore[arg-type]


def test_uint256_is_32_big_endian_bytes_on_the_wire() -> None:
    amount = 2**255 + 1
    msg = wire.WithdrawRequest(1, CONTRACT, CHANNEL, CONTRACT, amount, 2, CONTRACT, SIG)
    assert amount.to_bytes(32, "big") in wire.encode(msg)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash_the_decoder(data: bytes) -> None:
    with contextlib.suppress(wire.DecodeError):
        wire.decode(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SAMPLES), st.data())
def test_mutated_messages_decode_or_fail_cleanly(msg: wire.Message, data: st.DataObject) -> None:
    encoded = bytearray(wire.encode(msg))
    position = data.draw(st.integers(0, len(encoded) - 1))
    encoded[position] = data.draw(st.integers(0, 255))
    try:
        decoded = wire.decode(bytes(encoded))
    except wire.DecodeError:
        return
    assert wire.decode(wire.encode(decoded)) == decoded


def fast_and_checked_agree(cls: type[wire.Part], values: Any) -> None:
    fast = cls.fast_decode(values)
    try:
        checked = cls.checked_from_wire_fields(cls.__name__, values)
    except wire.DecodeError:
        assert fast is None
        return
    assert fast == checked


@pytest.mark.parametrize(("position", "inner", "value"), BAD_PAYMENT_FIELDS)
def test_generated_decoder_refuses_what_the_checked_one_refuses(position: int, inner: int | None,
                                                               value: Any) -> None:
    fields = copy.deepcopy(wire_list(PAYMENT))
    if inner is None:
        fields[position] = value
    else:
        fields[2][inner] = value
    assert wire.Payment.fast_decode(fields[2:]) is None
    fast_and_checked_agree(wire.Payment, fields[2:])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SAMPLES), st.data())
def test_generated_and_checked_decoders_agree_on_mutations(msg: wire.Message, data: st.DataObject) -> None:
    encoded = bytearray(wire.encode(msg))
    position = data.draw(st.integers(0, len(encoded) - 1))
    encoded[position] = data.draw(st.integers(0, 255))
    try:
        value = msgpack.unpackb(bytes(encoded), raw=False)
    except Exception:  # not msgpack at all: nothing reaches the field decoders
        return
    if isinstance(value, list) and len(value) >= 2 and value[0] == msg.TAG:
        fast_and_checked_agree(type(msg), value[2:])
