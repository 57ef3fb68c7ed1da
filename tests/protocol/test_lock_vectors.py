"""proto/vectors/locks.json against the code, and checked independently (hashlib, eth_abi, eth_utils)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from eth_abi.packed import encode_packed
from eth_utils import keccak

from channeld import protocol as p
from tests.protocol.lock_vectors import LOCKS_FILE, lock_vectors

VECTORS = json.loads(LOCKS_FILE.read_text())


def hx(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def test_lock_vectors_are_what_the_code_computes() -> None:
    assert lock_vectors() == VECTORS


@pytest.mark.parametrize("case", VECTORS["locks"])
def test_lock_packing_independently(case: dict[str, Any]) -> None:
    assert hashlib.sha256(hx(case["secret"])).digest() == hx(case["secrethash"])
    packed = encode_packed(["uint256", "uint256", "bytes32"],
                           [int(case["amount"]), case["expiration"], hx(case["secrethash"])])
    assert packed == hx(case["packed"]) and len(packed) == 96


@pytest.mark.parametrize("case", VECTORS["roots"])
def test_locks_root_independently(case: dict[str, Any]) -> None:
    packed = b"".join(hx(VECTORS["locks"][i]["packed"]) for i in case["locks"])
    assert hx(case["locks_root"]) == (keccak(packed) if packed else bytes(32))
    assert int(case["locked_amount"]) == sum(int(VECTORS["locks"][i]["amount"]) for i in case["locks"])


@pytest.mark.parametrize("case", VECTORS["fees"])
def test_fee_vectors_and_their_inverse(case: dict[str, Any]) -> None:
    policy = p.FeePolicy(case["base"], case["ppm"])
    out = case["amount_out"]
    expected_fee = case["base"] + (out * case["ppm"] + 999_999) // 1_000_000
    assert case["fee"] == expected_fee and int(case["amount_in"]) == out + expected_fee
    assert policy.amount_out(int(case["amount_in"])) == out  # a mediator forwards what the payer planned
