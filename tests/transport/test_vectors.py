"""BOLT 8 Appendix A, byte for byte, with every intermediate value asserted (ephemeral keys injected)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import coincurve
import pytest

from channeld.transport._errors import HandshakeError
from channeld.transport._framing import NEED_DATA, FrameDecoder, FrameEncoder
from channeld.transport._noise import (
    PROLOGUE,
    PROTOCOL_NAME,
    HandshakeState,
    Role,
    SymmetricState,
    ecdh,
    hkdf,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "proto" / "bolt8-vectors.json").read_text()
)
INITIATOR = VECTORS["initiator_success"]
RESPONDER = VECTORS["responder_success"]
MESSAGES = VECTORS["message_encryption"]


def b(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text)


def key(hex_text: str) -> coincurve.PrivateKey:
    return coincurve.PrivateKey(b(hex_text))


def initiator(case: dict[str, Any]) -> HandshakeState:
    return HandshakeState(Role.INITIATOR, key(case["ls_priv"]), b(case["rs_pub"]), key(case["e_priv"]))


def responder(case: dict[str, Any]) -> HandshakeState:
    return HandshakeState(Role.RESPONDER, key(case["ls_priv"]), ephemeral=key(case["e_priv"]))


def test_vector_file_names_the_protocol_we_implement() -> None:
    assert VECTORS["protocol_name"].encode() == PROTOCOL_NAME
    assert VECTORS["prologue"].encode() == PROLOGUE


def test_static_and_ephemeral_public_keys_match_the_vectors() -> None:
    for case in (INITIATOR, RESPONDER):
        assert key(case["ls_priv"]).public_key.format() == b(case["ls_pub"])
        assert key(case["e_priv"]).public_key.format() == b(case["e_pub"])


def test_initiator_act_one_step_by_step_with_spec_operations() -> None:
    v = INITIATOR["act_one"]
    sym = SymmetricState()
    sym.mix_hash(b(INITIATOR["rs_pub"]))
    assert sym.chaining_key == b(v["ck_before"])
    sym.mix_hash(b(INITIATOR["e_pub"]))
    assert sym.handshake_hash == b(v["h_after_e"])
    ss = ecdh(key(INITIATOR["e_priv"]), b(INITIATOR["rs_pub"]))
    assert ss == b(v["ss"])
    assert hkdf(sym.chaining_key, ss) == (b(v["ck"]), b(v["temp_k1"]))
    sym.mix_key(ss)
    assert (sym.chaining_key, sym.temp_key) == (b(v["ck"]), b(v["temp_k1"]))
    assert sym.encrypt_and_hash(b"") == b(v["c"])
    assert sym.handshake_hash == b(v["h"])


def test_initiator_full_handshake_every_intermediate_value() -> None:
    hs = initiator(INITIATOR)
    one, two, three = INITIATOR["act_one"], INITIATOR["act_two"], INITIATOR["act_three"]
    assert hs.write_act_one() == b(one["output"])
    assert (hs.symmetric.chaining_key, hs.symmetric.temp_key) == (b(one["ck"]), b(one["temp_k1"]))
    assert hs.symmetric.handshake_hash == b(one["h"])
    hs.read_act_two(b(two["input"]))
    assert (hs.symmetric.chaining_key, hs.symmetric.temp_key) == (b(two["ck"]), b(two["temp_k2"]))
    assert hs.symmetric.handshake_hash == b(two["h"])
    assert ecdh(key(INITIATOR["e_priv"]), b(two["re"])) == b(two["ss"])
    assert ecdh(key(INITIATOR["ls_priv"]), b(two["re"])) == b(three["ss"])
    act_three = hs.write_act_three()
    assert act_three == b(three["output"])
    assert act_three[1:50] == b(three["c"]) and act_three[50:] == b(three["t"])
    assert (hs.symmetric.chaining_key, hs.symmetric.temp_key) == (b(three["ck"]), b(three["temp_k3"]))
    assert hs.symmetric.handshake_hash == b(three["h"])
    keys = hs.split()
    assert (keys.send_key, keys.receive_key) == (b(INITIATOR["sk"]), b(INITIATOR["rk"]))
    assert keys.remote_static == b(INITIATOR["rs_pub"])


def test_initiator_act_two_intermediate_hash_before_decrypt() -> None:
    sym = SymmetricState()
    sym.mix_hash(b(INITIATOR["rs_pub"]))
    sym.mix_hash(b(INITIATOR["e_pub"]))
    sym.mix_key(b(INITIATOR["act_one"]["ss"]))
    sym.encrypt_and_hash(b"")
    sym.mix_hash(b(INITIATOR["act_two"]["re"]))
    assert sym.handshake_hash == b(INITIATOR["act_two"]["h_after_re"])


def test_responder_full_handshake_every_intermediate_value() -> None:
    hs = responder(RESPONDER)
    one, two, three = RESPONDER["act_one"], RESPONDER["act_two"], RESPONDER["act_three"]
    assert ecdh(key(RESPONDER["ls_priv"]), b(one["re"])) == b(one["ss"])
    hs.read_act_one(b(one["input"]))
    assert (hs.symmetric.chaining_key, hs.symmetric.temp_key) == (b(one["ck"]), b(one["temp_k1"]))
    assert hs.symmetric.handshake_hash == b(one["h"])
    assert ecdh(key(RESPONDER["e_priv"]), b(one["re"])) == b(two["ss"])
    act_two = hs.write_act_two()
    assert act_two == b(two["output"]) and act_two[34:] == b(two["c"])
    assert (hs.symmetric.chaining_key, hs.symmetric.temp_key) == (b(two["ck"]), b(two["temp_k2"]))
    assert hs.symmetric.handshake_hash == b(two["h"])
    assert ecdh(key(RESPONDER["e_priv"]), b(three["rs"])) == b(three["ss"])
    hs.read_act_three(b(three["input"]))
    assert hs.remote_static == b(three["rs"])
    assert (hs.symmetric.chaining_key, hs.symmetric.temp_key) == (b(three["ck"]), b(three["temp_k3"]))
    assert hs.symmetric.handshake_hash == b(three["h"])
    keys = hs.split()
    assert (keys.receive_key, keys.send_key) == (b(RESPONDER["rk"]), b(RESPONDER["sk"]))


def test_responder_intermediate_hashes_inside_acts() -> None:
    sym = SymmetricState()
    sym.mix_hash(b(RESPONDER["ls_pub"]))
    sym.mix_hash(b(RESPONDER["act_one"]["re"]))
    assert sym.handshake_hash == b(RESPONDER["act_one"]["h_after_re"])
    sym.mix_key(b(RESPONDER["act_one"]["ss"]))
    sym.decrypt_and_hash(b(RESPONDER["act_one"]["input"])[34:])
    sym.mix_hash(b(RESPONDER["e_pub"]))
    assert sym.handshake_hash == b(RESPONDER["act_two"]["h_after_e"])


@pytest.mark.parametrize("case", VECTORS["initiator_failures"], ids=lambda c: c["name"])
def test_initiator_failure_vectors(case: dict[str, Any]) -> None:
    hs = initiator(case)
    assert hs.write_act_one() == b(case["act_one_output"])
    with pytest.raises(HandshakeError) as failure:
        hs.read_act_two(b(case["act_two_input"]))
    assert (failure.value.act, failure.value.reason) == (case["act"], case["reason"])


@pytest.mark.parametrize("case", VECTORS["responder_failures"], ids=lambda c: c["name"])
def test_responder_failure_vectors(case: dict[str, Any]) -> None:
    hs = responder(case)
    with pytest.raises(HandshakeError) as failure:
        hs.read_act_one(b(case["act_one_input"]))
        assert hs.write_act_two() == b(case["act_two_output"])
        hs.read_act_three(b(case["act_three_input"]))
    assert (failure.value.act, failure.value.reason) == (case["act"], case["reason"])


def test_hkdf_rotation_vectors() -> None:
    for rotation in MESSAGES["rotations"]:
        assert hkdf(b(rotation["ck"]), b(rotation["k"])) == (b(rotation["new_ck"]), b(rotation["new_k"]))


def test_message_encryption_through_two_key_rotations() -> None:
    encoder = FrameEncoder(b(MESSAGES["sk"]), b(MESSAGES["ck"]))
    decoder = FrameDecoder(b(MESSAGES["sk"]), b(MESSAGES["ck"]))
    message = b(MESSAGES["message"])
    outputs = MESSAGES["outputs"]
    first = MESSAGES["first_encryptions"]
    for i in range(1002):
        frame = encoder.encrypt(message)
        if i < 2:
            assert frame[:18] == b(first[2 * i]["ciphertext"])
            assert frame[18:] == b(first[2 * i + 1]["ciphertext"])
        if str(i) in outputs:
            assert frame == b(outputs[str(i)]), f"output {i}"
        decoder.receive_data(frame)
        assert decoder.next_message() == message
        assert decoder.next_message() is NEED_DATA
    assert encoder.key == b(MESSAGES["rotations"][1]["new_k"])
    assert decoder.key == encoder.key
    assert encoder.nonce == decoder.nonce == 4  # messages 1000 and 1001 after the second rotation


def test_every_message_vector_index_was_checked() -> None:
    assert sorted(int(i) for i in MESSAGES["outputs"]) == [0, 1, 500, 501, 1000, 1001]
