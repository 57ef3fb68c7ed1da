"""Compiled contracts (ABI + creation and runtime bytecode) and decoding of their revert data.

A contract's entry is JSON with `abi`, `bytecode` (creation code) and `deployedBytecode` (runtime code);
solc's `immutableReferences`, when present, tell code checks which bytes a constructor fills in, and
without them the zero PUSH32 immediates solc leaves for immutables are masked instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from channeld.chain.errors import DeploymentMismatch, TransactionReverted
from channeld.errors import ConfigError

# Solidity's built-in revert payloads: Error(string) and Panic(uint256).
_ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")
_PANIC_SELECTOR = bytes.fromhex("4e487b71")


@dataclass(frozen=True, slots=True)
class ContractArtifact:
    name: str
    abi: tuple[Mapping[str, Any], ...]
    bytecode: bytes
    runtime_bytecode: bytes
    # (start, length) byte ranges of the runtime code that the constructor writes (immutables).
    immutable_ranges: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if not self.bytecode or not self.runtime_bytecode:
            raise ConfigError(f"artifact {self.name} has no bytecode")

    def runtime_matches(self, code: bytes) -> bool:
        """Whether `code` (read from the chain) is this artifact's runtime code, immutables aside."""
        if len(code) != len(self.runtime_bytecode):
            return False
        expected, actual = bytearray(self.runtime_bytecode), bytearray(code)
        for start, length in self.immutable_ranges:
            expected[start:start + length] = bytes(length)
            actual[start:start + length] = bytes(length)
        return expected == actual

    def check_deployed(self, address: str, code: bytes) -> None:
        if not code:
            raise DeploymentMismatch(f"no contract code at {address}: is it the right chain and address?")
        if not self.runtime_matches(code):
            raise DeploymentMismatch(
                f"the code at {address} is not the {self.name} contract this channeld ships"
            )


def artifact_from_json(name: str, document: Mapping[str, Any]) -> ContractArtifact:
    try:
        runtime = document["deployedBytecode"]
        references: Mapping[str, Any] = {}
        if isinstance(runtime, Mapping):
            references = runtime.get("immutableReferences", {})
            runtime = runtime["object"]
        creation = document["bytecode"]
        if isinstance(creation, Mapping):
            creation = creation["object"]
        references = document.get("immutableReferences", references)
        runtime_code = _hex_bytes(runtime)
        ranges = tuple(
            (int(spot["start"]), int(spot["length"])) for spots in references.values() for spot in spots
        ) if references else zero_push32_ranges(runtime_code)
        return ContractArtifact(
            name=name,
            abi=tuple(document["abi"]),
            bytecode=_hex_bytes(creation),
            runtime_bytecode=runtime_code,
            immutable_ranges=ranges,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"artifact {name} is malformed: {error!r}") from error


ARTIFACT_FILE = "compiled.json"


def load_artifact(name: str, package: str = "channeld.contracts") -> ContractArtifact:
    """Contract `name` from the compiled artifact shipped as package data (`compiled.json`)."""
    try:
        text = resources.files(package).joinpath(ARTIFACT_FILE).read_text()
        contracts = json.loads(text)["contracts"]
    except (FileNotFoundError, KeyError, ValueError) as error:
        raise ConfigError(f"no usable compiled artifact {ARTIFACT_FILE} in {package}: {error!r}") from error
    if name not in contracts:
        raise ConfigError(f"the compiled artifact has no contract {name} (it has {sorted(contracts)})")
    return artifact_from_json(name, contracts[name])


def zero_push32_ranges(runtime: bytes) -> tuple[tuple[int, int], ...]:
    """Immediates of PUSH32 instructions that push zero: where solc leaves room for immutables.

    Used when the artifact lacks solc's `immutableReferences`; the walk skips push data so that bytes
    inside another instruction's immediate are never taken for an opcode.
    """
    ranges, position = [], 0
    while position < len(runtime):
        opcode = runtime[position]
        width = opcode - 0x5F if 0x60 <= opcode <= 0x7F else 0
        if width == 32 and not any(runtime[position + 1:position + 33]):
            ranges.append((position + 1, 32))
        position += 1 + width
    return tuple(ranges)


def _hex_bytes(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


ErrorTable = dict[bytes, tuple[str, list[str]]]
"""4-byte selector -> (error name, its argument types), as `error_selectors` builds it."""


def error_selectors(abi: Sequence[Mapping[str, Any]]) -> ErrorTable:
    """The custom errors of `abi`, plus Solidity's built-in Error(string) and Panic(uint256)."""
    selectors: ErrorTable = {
        _ERROR_STRING_SELECTOR: ("Error", ["string"]),
        _PANIC_SELECTOR: ("Panic", ["uint256"]),
    }
    for entry in abi:
        if entry.get("type") != "error":
            continue
        types = [_canonical_type(item) for item in entry.get("inputs", [])]
        signature = f"{entry['name']}({','.join(types)})"
        selectors[function_signature_to_4byte_selector(signature)] = (entry["name"], types)
    return selectors


def _canonical_type(item: Mapping[str, Any]) -> str:
    kind = str(item["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_canonical_type(part) for part in item["components"])
        return f"({inner}){kind[len('tuple'):]}"
    return kind


def decode_error(errors: ErrorTable, data: bytes) -> tuple[str, tuple[Any, ...]] | None:
    """The name and arguments (addresses checksummed) of the error in revert `data`, or None when no
    entry of `errors` has its selector. Arguments that do not decode are reported raw."""
    if data[:4] not in errors:
        return None
    name, types = errors[data[:4]]
    payload = data[4:]
    try:
        values = abi_decode(types, payload)
    except DecodingError:
        return name, (f"undecodable 0x{payload.hex()}",)
    shown = (to_checksum_address(v) if t == "address" else v for v, t in zip(values, types, strict=True))
    return name, tuple(shown)


def decode_revert(
    abi: Sequence[Mapping[str, Any]], data: bytes, tx_hash: bytes | None = None
) -> TransactionReverted:
    """Turn raw revert data into a `TransactionReverted` naming the error and its arguments."""
    decoded = decode_error(error_selectors(abi), data)
    if decoded is None:
        label = "empty revert" if not data else f"unknown error 0x{data.hex()}"
        return TransactionReverted(label, (), tx_hash)
    return TransactionReverted(*decoded, tx_hash)
