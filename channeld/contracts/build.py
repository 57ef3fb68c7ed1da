"""Compile the contracts with the pinned solc (npm package, standard JSON); write the committed artifact.

    python -m channeld.contracts.build           # rewrite compiled.json
    python -m channeld.contracts.build --check   # exit 1 if compiled.json differs from the sources

The settings below are part of the artifact's identity: changing any of them changes the bytecode, and
the artifact test fails until the artifact is rebuilt and committed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from channeld.errors import ConfigError

CONTRACTS_DIR = Path(__file__).resolve().parent
ARTIFACT_PATH = CONTRACTS_DIR / "compiled.json"
REPO = CONTRACTS_DIR.parent.parent
SOLC_VERSION = "0.8.37"
SOURCES = (
    "Bls12381.sol", "ChannelBase.sol", "ChannelBatch.sol", "ChannelHub.sol", "SecretRegistry.sol",
    "test/TestTokens.sol",
)
# Few runs: with more (1,000,000) each channel operation saves 100 to 500 gas, but ChannelHub grows to 15 kB
# and its deployment (with the SecretRegistry it creates) past 3.4M gas; see docs/gas.md.
SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "viaIR": True,
    "evmVersion": "prague",
    # No metadata hash: the bytecode then depends on the source text and settings only, not on paths.
    "metadata": {"bytecodeHash": "none", "appendCBOR": False},
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}


# solcjs's command line exits before a large stdout pipe drains (the JSON arrives cut), so the compiler
# runs through the solc package's JS API and writes its answer to a file.
NODE_COMPILE = """
const fs = require("fs");
const solc = require(process.argv[1]);
if (solc.version().split("+")[0] !== process.argv[2]) {
  console.error("solc is " + solc.version() + ", the artifact is pinned to " + process.argv[2]);
  process.exit(2);
}
fs.writeFileSync(process.argv[4], solc.compile(fs.readFileSync(process.argv[3], "utf8")));
"""


def solc_package() -> Path:
    override = os.environ.get("CHANNELD_SOLC_PACKAGE")
    path = Path(override) if override else REPO / ".tools" / "node_modules" / "solc"
    if not (path / "package.json").exists():
        raise ConfigError(f"no solc npm package at {path}: run `make setup` or set CHANNELD_SOLC_PACKAGE")
    return path


# ChannelHub accepts as its batch extension only code whose hash it was compiled with. The hash comes from
# a first compile of the extension alone and reaches the hub as a generated source, never written to disk.
EXTENSION = "ChannelBatch"
EXTENSION_SOURCES = ("Bls12381.sol", "ChannelBase.sol", "ChannelBatch.sol")
CODEHASH_SOURCE = "BatchCodehash.sol"


def codehash_source(codehash: bytes) -> str:
    return (f"// SPDX-License-Identifier: MIT\npragma solidity {SOLC_VERSION};\n\n"
            f"bytes32 constant BATCH_CODEHASH = 0x{codehash.hex()};\n")


def standard_input(
    names: tuple[str, ...] = SOURCES, generated: dict[str, str] | None = None
) -> dict[str, Any]:
    sources = {name: {"content": (CONTRACTS_DIR / name).read_text()} for name in names}
    sources.update({name: {"content": text} for name, text in (generated or {}).items()})
    return {"language": "Solidity", "sources": sources, "settings": SETTINGS}


def extension_runtime(output: dict[str, Any]) -> bytes:
    compiled = output["contracts"][f"{EXTENSION}.sol"][EXTENSION]
    return bytes.fromhex(compiled["evm"]["deployedBytecode"]["object"])


def run_solc(request: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        request_path, output_path = Path(scratch) / "in.json", Path(scratch) / "out.json"
        request_path.write_text(json.dumps(request))
        args = [str(solc_package()), SOLC_VERSION, str(request_path), str(output_path)]
        done = subprocess.run(["node", "-e", NODE_COMPILE, *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise ConfigError(f"solc did not run: {done.stderr.strip()}")
        output: dict[str, Any] = json.loads(output_path.read_text())
    # Warnings count as failures too: the contracts are small enough to keep warning-free.
    problems = output.get("errors", [])
    if problems:
        raise ConfigError("solc reported:\n" + "\n".join(e["formattedMessage"] for e in problems))
    return output


def committed_codehash() -> bytes | None:
    """The extension's code hash in the committed artifact: a guess that saves the first compile."""
    from eth_utils import keccak

    if not ARTIFACT_PATH.exists():
        return None
    contracts = json.loads(ARTIFACT_PATH.read_text()).get("contracts", {})
    if EXTENSION not in contracts:
        return None
    return keccak(bytes.fromhex(contracts[EXTENSION]["deployedBytecode"][2:]))


def compile_all(codehash_guess: bytes | None) -> dict[str, Any]:
    """solc's output for every source, the hub compiled with the extension's true code hash. A guess is
    kept when the extension compiled beside it hashes to it (one compile); otherwise the extension is
    compiled alone first for its hash (two compiles)."""
    from eth_utils import keccak

    if codehash_guess is not None:
        output = run_solc(standard_input(SOURCES, {CODEHASH_SOURCE: codehash_source(codehash_guess)}))
        if keccak(extension_runtime(output)) == codehash_guess:
            return output
    extension = extension_runtime(run_solc(standard_input(EXTENSION_SOURCES)))
    output = run_solc(standard_input(SOURCES, {CODEHASH_SOURCE: codehash_source(keccak(extension))}))
    if extension_runtime(output) != extension:
        raise ConfigError(f"{EXTENSION} compiled differently beside the hub: its code hash would not match")
    return output


def compile_artifact(codehash_guess: bytes | None = None) -> dict[str, Any]:
    """The artifact as the sources compile today: {"solc", "settings", "contracts": {name: {...}}}."""
    output = compile_all(codehash_guess)
    contracts: dict[str, Any] = {}
    for source in SOURCES:
        for name, compiled in sorted(output["contracts"][source].items()):
            if not compiled["evm"]["bytecode"]["object"]:
                continue  # an interface: nothing to deploy
            contracts[name] = {
                "source": source,
                "abi": compiled["abi"],
                "bytecode": "0x" + compiled["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + compiled["evm"]["deployedBytecode"]["object"],
            }
    settings = {key: value for key, value in SETTINGS.items() if key != "outputSelection"}
    return {"solc": SOLC_VERSION, "settings": settings, "contracts": contracts}


def render(artifact: dict[str, Any]) -> str:
    return json.dumps(artifact, indent=1, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    fresh = render(compile_artifact(committed_codehash()))
    if "--check" in argv:
        same = ARTIFACT_PATH.exists() and ARTIFACT_PATH.read_text() == fresh
        print("artifact up to date" if same else f"{ARTIFACT_PATH} differs from the sources: rebuild it")
        return 0 if same else 1
    ARTIFACT_PATH.write_text(fresh)
    print(f"wrote {ARTIFACT_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
