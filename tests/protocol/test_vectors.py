"""proto/vectors/*.json, loaded and checked against the code (and EIP-712 against eth_account)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import to_checksum_address

from channeld import protocol as p
from channeld import wire
from tests.protocol.vectors import VECTORS, eip712_vectors, from_json, invalid_vectors, message_vectors


def load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


KEYS = load("keys.json")


def hexb(value: str) -> bytes:
    assert value.startswith("0x")
    return bytes.fromhex(value[2:])


@pytest.mark.parametrize("name", sorted(KEYS))
def test_key_vectors(name: str) -> None:
    key = KEYS[name]
    signer = p.Signer(hexb(key["private_key"]))
    assert signer.public_key == hexb(key["public_key"])
    assert signer.address == hexb(key["address"])
    assert Account.from_key(hexb(key["private_key"])).address.lower() == key["address"]


EIP712_TYPES = {
    "BalanceProof": [("channelId", "bytes32"), ("nonce", "uint256"), ("transferredAmount", "uint256"),
                     ("lockedAmount", "uint256"), ("locksRoot", "bytes32")],
    "BalanceProofUpdate": [("channelId", "bytes32"), ("nonce", "uint256"), ("transferredAmount", "uint256"),
                           ("lockedAmount", "uint256"), ("locksRoot", "bytes32")],
    "Withdraw": [("channelId", "bytes32"), ("participant", "address"), ("totalWithdraw", "uint256"),
                 ("expiry", "uint256"), ("receiver", "address")],
    "CooperativeSettle": [("channelId", "bytes32"), ("participant1", "address"), ("amount1", "uint256"),
                          ("receiver1", "address"), ("participant2", "address"), ("amount2", "uint256"),
                          ("receiver2", "address")],
}


def eth_account_digest(case: dict[str, Any]) -> bytes:
    fields = EIP712_TYPES[case["type"]]
    message = {name: (int(case["message"][name]) if kind == "uint256" else
                      hexb(case["message"][name]) if kind == "bytes32" else
                      to_checksum_address(case["message"][name]))
               for name, kind in fields}
    domain_types = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}]
    typed = {"types": {"EIP712Domain": domain_types,
                       case["type"]: [{"name": n, "type": t} for n, t in fields]},
             "primaryType": case["type"], "domain": case["domain"], "message": message}
    signable = encode_typed_data(full_message=typed)
    return p.keccak256(b"\x19" + signable.version + signable.header + signable.body)


@pytest.mark.parametrize("case", load("eip712.json"), ids=lambda c: c["type"])
def test_eip712_vectors(case: dict[str, Any]) -> None:
    digest = hexb(case["digest"])
    assert eth_account_digest(case) == digest
    domain = case["domain"]
    assert p.domain_separator(domain["chainId"], hexb(domain["verifyingContract"])) == \
        hexb(case["domain_separator"])
    signer = p.Signer(hexb(KEYS[case["signer"]]["private_key"]))
    assert signer.sign(digest) == hexb(case["signature"])  # RFC 6979: deterministic
    assert p.recover_address(digest, hexb(case["signature"])) == signer.address


def test_eip712_vectors_are_what_the_code_computes() -> None:
    assert load("eip712.json") == eip712_vectors()


@pytest.mark.parametrize("case", load("messages.json"), ids=lambda c: c["type"])
def test_message_vectors(case: dict[str, Any]) -> None:
    cls = wire.CATALOGUE[case["tag"]]
    assert cls.__name__ == case["type"] and case["version"] == cls.VERSION
    msg = from_json(cls, case["fields"])
    encoded = hexb(case["encoded"])
    assert wire.encode(msg) == encoded  # type: ignore[arg-type]
    assert wire.decode(encoded) == msg


def test_message_vectors_cover_the_catalogue() -> None:
    assert sorted(c["tag"] for c in load("messages.json")) == sorted(wire.CATALOGUE)
    assert load("messages.json") == message_vectors()


@pytest.mark.parametrize("case", load("invalid.json"), ids=lambda c: c["description"])
def test_invalid_vectors(case: dict[str, Any]) -> None:
    error = getattr(wire, case["error"])
    with pytest.raises(error):
        wire.decode(hexb(case["encoded"]))


def test_invalid_vectors_are_current() -> None:
    assert load("invalid.json") == invalid_vectors()
