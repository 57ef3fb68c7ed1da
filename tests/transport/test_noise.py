"""The sans-io handshake and framing: turn order, tampering, chunking, limits."""

from __future__ import annotations

import coincurve
import pytest

from channeld.errors import ConfigError, LocalFault, PeerFault
from channeld.transport import (
    NEED_DATA,
    BadPeerUri,
    CipherState,
    FrameDecoder,
    FrameEncoder,
    FrameError,
    HandshakeError,
    HandshakeState,
    PeerUri,
    Role,
    TransportLimits,
    TransportMisuse,
)
from channeld.transport._noise import MAX_NONCE
from tests.transport.helpers import ALICE, BOB, node_id


def fresh_pair() -> tuple[HandshakeState, HandshakeState]:
    return HandshakeState(Role.INITIATOR, ALICE, node_id(BOB)), HandshakeState(Role.RESPONDER, BOB)


def run_handshake(initiator: HandshakeState, responder: HandshakeState) -> None:
    responder.read_act_one(initiator.write_act_one())
    initiator.read_act_two(responder.write_act_two())
    responder.read_act_three(initiator.write_act_three())


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def test_random_ephemeral_handshake_agrees_on_keys_and_identities() -> None:
    initiator, responder = fresh_pair()
    run_handshake(initiator, responder)
    ik, rk = initiator.split(), responder.split()
    assert (ik.send_key, ik.receive_key) == (rk.receive_key, rk.send_key)
    assert ik.send_key != ik.receive_key
    assert rk.remote_static == node_id(ALICE) and ik.remote_static == node_id(BOB)


@pytest.mark.parametrize("act", [1, 2, 3])
def test_flipping_any_bit_of_any_act_fails_the_handshake(act: int) -> None:
    sizes = {1: 50, 2: 50, 3: 66}
    for bit in range(sizes[act] * 8):
        initiator, responder = fresh_pair()
        message = initiator.write_act_one()
        with pytest.raises(HandshakeError) as failure:
            if act == 1:
                message = flip(message, bit)
            responder.read_act_one(message)
            message = responder.write_act_two()
            if act == 2:
                message = flip(message, bit)
            initiator.read_act_two(message)
            message = initiator.write_act_three()
            responder.read_act_three(flip(message, bit))
        assert failure.value.act == act, f"bit {bit}"


def test_act_one_for_another_responder_key_fails_with_bad_tag() -> None:
    initiator = HandshakeState(Role.INITIATOR, ALICE, node_id(coincurve.PrivateKey()))
    responder = HandshakeState(Role.RESPONDER, BOB)
    with pytest.raises(HandshakeError) as failure:
        responder.read_act_one(initiator.write_act_one())
    assert (failure.value.act, failure.value.reason) == (1, "bad_tag")


@pytest.mark.parametrize(
    ("role", "call"),
    [
        (Role.INITIATOR, "read_act_two"),
        (Role.INITIATOR, "write_act_three"),
        (Role.INITIATOR, "read_act_one"),
        (Role.RESPONDER, "write_act_two"),
        (Role.RESPONDER, "write_act_one"),
        (Role.RESPONDER, "read_act_three"),
    ],
)
def test_out_of_turn_operations_are_refused(role: Role, call: str) -> None:
    hs = HandshakeState(role, ALICE, node_id(BOB) if role is Role.INITIATOR else None)
    method = getattr(hs, call)
    with pytest.raises(TransportMisuse, match=call):
        method() if call.startswith("write") else method(bytes(66))


def test_split_before_done_and_reuse_after_failure_are_refused() -> None:
    initiator, responder = fresh_pair()
    with pytest.raises(TransportMisuse):
        initiator.split()
    with pytest.raises(HandshakeError):
        responder.read_act_one(bytes(50))
    with pytest.raises(TransportMisuse, match="failed"):
        responder.write_act_two()


def test_initiator_needs_a_valid_remote_key() -> None:
    with pytest.raises(TransportMisuse):
        HandshakeState(Role.INITIATOR, ALICE, None)
    with pytest.raises(TransportMisuse):
        HandshakeState(Role.INITIATOR, ALICE, b"\x02" + bytes(32))


def test_error_branches() -> None:
    assert issubclass(HandshakeError, PeerFault) and issubclass(FrameError, PeerFault)
    assert issubclass(TransportMisuse, LocalFault) and issubclass(BadPeerUri, ConfigError)


def test_cipher_refuses_at_the_nonce_ceiling_before_encrypting() -> None:
    cipher = CipherState(bytes(32), nonce=MAX_NONCE)
    with pytest.raises(TransportMisuse, match="nonce"):
        cipher.encrypt_with_ad(b"", b"x")
    assert cipher.nonce == MAX_NONCE


def codec_pair(max_size: int = 65535) -> tuple[FrameEncoder, FrameDecoder]:
    key, ck = bytes(range(32)), bytes(range(32, 64))
    return FrameEncoder(key, ck, max_size), FrameDecoder(key, ck, max_size)


def drain(decoder: FrameDecoder) -> list[bytes]:
    out = []
    while (message := decoder.next_message()) is not NEED_DATA:
        assert isinstance(message, bytes)
        out.append(message)
    return out


def test_decoder_byte_by_byte_and_all_at_once_agree() -> None:
    messages = [b"", b"a", bytes(1000), bytes(range(256)) * 3, b"z" * 65535]
    encoder, decoder = codec_pair()
    stream = b"".join(encoder.encrypt(m) for m in messages)
    got: list[bytes] = []
    for i in range(len(stream)):
        decoder.receive_data(stream[i:i + 1])
        got += drain(decoder)
    assert got == messages
    encoder, decoder = codec_pair()
    decoder.receive_data(b"".join(encoder.encrypt(m) for m in messages))
    assert drain(decoder) == messages
    assert decoder.buffered == 0


def test_tampered_length_or_body_raises_and_decoder_stays_failed() -> None:
    for position in (0, 17, 18, 30):
        encoder, decoder = codec_pair()
        decoder.receive_data(flip(encoder.encrypt(b"hello world, this is a message"), position * 8))
        with pytest.raises(FrameError, match="bad MAC"):
            drain(decoder)
        with pytest.raises(TransportMisuse):
            decoder.next_message()
        with pytest.raises(TransportMisuse):
            decoder.receive_data(b"more")


def test_frame_announcing_more_than_the_limit_is_refused_before_the_body_arrives() -> None:
    big_encoder, _ = codec_pair()
    _, small_decoder = codec_pair(max_size=1000)
    frame = big_encoder.encrypt(bytes(1001))
    small_decoder.receive_data(frame[:18])
    with pytest.raises(FrameError, match="1001-byte"):
        small_decoder.next_message()


def test_encoder_refuses_messages_over_its_limit() -> None:
    encoder, _ = codec_pair(max_size=10)
    with pytest.raises(TransportMisuse):
        encoder.encrypt(bytes(11))
    assert encoder.nonce == 0
    encoder, _ = codec_pair()
    with pytest.raises(TransportMisuse):
        encoder.encrypt(bytes(65536))


def test_rotation_keeps_both_directions_in_step_over_many_messages() -> None:
    encoder, decoder = codec_pair()
    for i in range(1600):
        decoder.receive_data(encoder.encrypt(i.to_bytes(2, "big")))
        assert drain(decoder) == [i.to_bytes(2, "big")]
    assert encoder.key == decoder.key != bytes(range(32))


def test_limits_are_validated() -> None:
    assert TransportLimits().max_message_size == 65535
    for bad in ({"handshake_timeout": 0}, {"max_connections": 1.5}, {"max_message_size": 70000},
                {"ping_interval": 10, "idle_timeout": 5}, {"send_queue_size": True},
                {"max_messages_per_second": float("inf")}):
        with pytest.raises(ConfigError):
            TransportLimits(**bad)  # type: ignore[arg-type]


def test_peer_uri_round_trip_and_refusals() -> None:
    key_hex = node_id(BOB).hex()
    uri = PeerUri.parse(f"{key_hex}@127.0.0.1:9735")
    assert (uri.node_id, uri.host, uri.port) == (node_id(BOB), "127.0.0.1", 9735)
    assert str(uri) == f"{key_hex}@127.0.0.1:9735"
    v6 = PeerUri.parse(f"{key_hex}@[::1]:1")
    assert v6.host == "::1" and str(v6) == f"{key_hex}@[::1]:1"
    for bad in ("", "nohost", f"{key_hex}@host", f"{key_hex}@host:0", f"{key_hex}@host:65536",
                f"{key_hex}@::1:5", f"zz{key_hex[2:]}@h:1", f"04{key_hex[2:]}@h:1", f"{key_hex}00@h:1",
                f"{key_hex}@:1", f"{key_hex}@host:-1"):
        with pytest.raises(BadPeerUri):
            PeerUri.parse(bad)
