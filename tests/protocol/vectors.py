"""The JSON test vectors in proto/vectors/: how fields map to JSON, and how the files are (re)made.

JSON mapping: byte strings are "0x" hex; uint256 values are decimal strings (JSON numbers lose precision
past 2**53); narrower integers are numbers; text is a string; nested structures are objects.
Regenerate with `python -m tests.protocol.vectors` (only when the spec changes on purpose: the tests
compare the code against these files, so a silent change in the code fails them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from channeld import protocol as p
from channeld import wire
from channeld.wire._fields import Kind, Nested, Uint
from tests.protocol.pair import CHAIN_ID, CHANNEL_ID, CONTRACT, key_of
from tests.wire.samples import SAMPLES

VECTORS = Path(__file__).resolve().parents[2] / "proto" / "vectors"
KEY_NAMES = ("alice", "bob")


def to_json(part: wire.Part) -> dict[str, Any]:
    return {name: _value_to_json(kind, getattr(part, name)) for name, kind in part.FIELDS}


def _value_to_json(kind: Kind, value: Any) -> Any:
    if isinstance(kind, Nested):
        return to_json(value)
    if isinstance(kind, Uint):
        return str(value) if kind.bits > 64 else value
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


def from_json(cls: type[wire.Part], data: dict[str, Any]) -> wire.Part:
    if set(data) != {name for name, _ in cls.FIELDS}:
        raise ValueError(f"{cls.__name__} vector has fields {sorted(data)}")
    values = [_value_from_json(kind, data[name]) for name, kind in cls.FIELDS]
    return cls(*values)


def _value_from_json(kind: Kind, value: Any) -> Any:
    if isinstance(kind, Nested):
        return from_json(kind.part, value)
    if isinstance(kind, Uint):
        return int(value)
    if isinstance(value, str) and value.startswith("0x"):
        return bytes.fromhex(value[2:])
    return value


def keys_vector() -> dict[str, Any]:
    out = {}
    for name in KEY_NAMES:
        signer = p.Signer(key_of(name))
        out[name] = {"private_key": "0x" + key_of(name).hex(), "public_key": "0x" + signer.public_key.hex(),
                     "address": "0x" + signer.address.hex()}
    return out


def eip712_vectors() -> list[dict[str, Any]]:
    alice = p.Signer(key_of("alice"))
    bob = p.Signer(key_of("bob"))
    first, second = sorted((alice.address, bob.address))
    root = p.keccak256(b"locks")
    cases: list[tuple[str, dict[str, Any], bytes]] = [
        ("BalanceProof", {"channelId": CHANNEL_ID, "nonce": 1, "transferredAmount": 10**18,
                          "lockedAmount": 0, "locksRoot": bytes(32)},
         p.balance_proof_digest(CHAIN_ID, CONTRACT, CHANNEL_ID, 1, 10**18, 0, bytes(32))),
        ("BalanceProof", {"channelId": CHANNEL_ID, "nonce": 2**64 - 1, "transferredAmount": 2**256 - 1,
                          "lockedAmount": 5, "locksRoot": root},
         p.balance_proof_digest(CHAIN_ID, CONTRACT, CHANNEL_ID, 2**64 - 1, 2**256 - 1, 5, root)),
        ("BalanceProofUpdate", {"channelId": CHANNEL_ID, "nonce": 3, "transferredAmount": 500,
                                "lockedAmount": 0, "locksRoot": bytes(32)},
         p.balance_proof_update_digest(CHAIN_ID, CONTRACT, CHANNEL_ID, 3, 500, 0, bytes(32))),
        ("Withdraw", {"channelId": CHANNEL_ID, "participant": alice.address, "totalWithdraw": 123456789,
                      "expiry": 1_700_003_600, "receiver": alice.address},
         p.withdraw_digest(CHAIN_ID, CONTRACT, CHANNEL_ID, alice.address, 123456789, 1_700_003_600,
                           alice.address)),
        ("CooperativeSettle", {"channelId": CHANNEL_ID, "participant1": first, "amount1": 700,
                               "receiver1": first, "participant2": second, "amount2": 1300,
                               "receiver2": second},
         p.cooperative_settle_digest(CHAIN_ID, CONTRACT, CHANNEL_ID, first, 700, first, second, 1300,
                                     second)),
    ]
    out = []
    for primary, message, digest in cases:
        out.append({
            "type": primary,
            "domain": {"name": "channeld", "version": "1", "chainId": CHAIN_ID,
                       "verifyingContract": "0x" + CONTRACT.hex()},
            "message": {k: ("0x" + v.hex() if isinstance(v, bytes) else str(v)) for k, v in message.items()},
            "domain_separator": "0x" + p.domain_separator(CHAIN_ID, CONTRACT).hex(),
            "digest": "0x" + digest.hex(),
            "signer": "alice",
            "signature": "0x" + alice.sign(digest).hex(),
        })
    return out


def message_vectors() -> list[dict[str, Any]]:
    return [{"type": type(m).__name__, "tag": m.TAG, "version": m.VERSION, "fields": to_json(m),
             "encoded": "0x" + wire.encode(m).hex()} for m in SAMPLES]


def _payment_sample() -> wire.Payment:
    return next(m for m in SAMPLES if isinstance(m, wire.Payment))


def invalid_vectors() -> list[dict[str, Any]]:
    import msgpack

    ping = [wire.Ping.TAG, 1, 4, b""]
    cases = [
        ("unknown type tag", [250, 1], "UnknownMessageType"),
        ("unsupported version", [wire.Ping.TAG, 2, 4, b""], "UnsupportedVersion"),
        ("missing field", ping[:-1], "InvalidField"),
        ("extra field", [*ping, 0], "InvalidField"),
        ("uint16 out of range", [wire.Ping.TAG, 1, 70000, b""], "InvalidField"),
        ("bool where an integer belongs", [wire.Ping.TAG, 1, True, b""], "InvalidField"),
        ("text where bytes belong", [wire.Ping.TAG, 1, 4, "pad"], "InvalidField"),
        ("uint256 not 32 bytes", [wire.PaymentAccepted.TAG, 1, bytes(31), 1, 1], "InvalidField"),
        ("not an array", {"type": 3}, "InvalidField"),
        ("oversized metadata", [wire.Payment.TAG, 1, _payment_sample().to_wire()[0], 1,
                                (1).to_bytes(32, "big"), bytes(1025)], "InvalidField"),
    ]
    out = [{"description": d, "encoded": "0x" + msgpack.packb(v, use_bin_type=True).hex(), "error": e}
           for d, v, e in cases]
    out.append({"description": "trailing byte after a message",
                "encoded": "0x" + (wire.encode(wire.Pong(b"")) + b"\x00").hex(), "error": "InvalidField"})
    return out


def write_all() -> None:
    VECTORS.mkdir(parents=True, exist_ok=True)
    files = {"keys.json": keys_vector(), "eip712.json": eip712_vectors(), "messages.json": message_vectors(),
             "invalid.json": invalid_vectors()}
    for name, content in files.items():
        (VECTORS / name).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    write_all()
