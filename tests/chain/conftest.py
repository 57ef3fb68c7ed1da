"""Chain-layer fixtures: a tiny event-emitting contract compiled with the repo's solcjs, funded accounts."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from channeld.chain.artifact import ContractArtifact, artifact_from_json
from channeld.chain.backend import ChainBackend, connect_rpc
from channeld.chain.deploy import Deployment, deploy
from channeld.chain.sender import TransactionSender
from tests.tools import SOLCJS, Anvil

HERE = Path(__file__).resolve().parent
LIMIT = 1000  # the Emitter's constructor argument: ping(id) reverts above it


def compile_contract(source: Path, name: str) -> ContractArtifact:
    """Compile one Solidity file with the repo's pinned solcjs (standard JSON: runtime code too)."""
    request = {
        "language": "Solidity",
        "sources": {source.name: {"content": source.read_text()}},
        "settings": {"outputSelection": {"*": {"*": ["abi", "evm.bytecode.object",
                                                      "evm.deployedBytecode"]}}},
    }
    done = subprocess.run([str(SOLCJS), "--standard-json"], input=json.dumps(request), text=True,
                          check=True, capture_output=True)
    output = json.loads(done.stdout[done.stdout.index("{"):])
    compiled = output["contracts"][source.name][name]
    return artifact_from_json(name, {"abi": compiled["abi"], "bytecode": compiled["evm"]["bytecode"],
                                     "deployedBytecode": compiled["evm"]["deployedBytecode"]})


@pytest.fixture(scope="session")
def emitter_artifact() -> ContractArtifact:
    return compile_contract(HERE / "Emitter.sol", "Emitter")


def fund(anvil: Anvil, address: str, wei: int = 10**21) -> None:
    backend = connect_rpc(anvil.url)
    backend.rpc("anvil_setBalance", [address, hex(wei)])


@pytest.fixture
def account(anvil: Anvil) -> LocalAccount:
    """A fresh funded account, so tests sharing the session anvil never share nonces."""
    fresh: LocalAccount = Account.create()
    fund(anvil, fresh.address)
    return fresh


@pytest.fixture
def backend(anvil: Anvil) -> ChainBackend:
    return connect_rpc(anvil.url)


@pytest.fixture
def emitter(backend: ChainBackend, account: LocalAccount, emitter_artifact: ContractArtifact) -> Deployment:
    return deploy(TransactionSender(backend, account, emitter_artifact.abi), emitter_artifact, [LIMIT])


@pytest.fixture
def fresh(fresh_anvil: Anvil) -> Iterator[tuple[Anvil, ChainBackend, LocalAccount]]:
    """A private anvil (for automine switches, snapshots and reverts) with one funded account."""
    fresh_account: LocalAccount = Account.create()
    fund(fresh_anvil, fresh_account.address)
    yield fresh_anvil, connect_rpc(fresh_anvil.url), fresh_account
