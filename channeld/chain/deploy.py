"""Deploying the contracts and checking an existing deployment before a node relies on it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_abi import encode as abi_encode

from channeld.chain.artifact import ContractArtifact
from channeld.chain.backend import ChainBackend
from channeld.chain.errors import ChainError, DeploymentMismatch
from channeld.chain.sender import TransactionSender, TxRequest
from channeld.errors import LocalFault


@dataclass(frozen=True, slots=True)
class Deployment:
    name: str
    address: str
    block: int  # the follower's floor: no log of this contract can be older
    tx_hash: bytes
    gas_used: int


def constructor_data(artifact: ContractArtifact, args: Sequence[object] = ()) -> bytes:
    """Creation code followed by the ABI-encoded constructor arguments."""
    constructors = [entry for entry in artifact.abi if entry.get("type") == "constructor"]
    inputs = constructors[0].get("inputs", []) if constructors else []
    if len(inputs) != len(args):
        raise LocalFault(f"{artifact.name} constructor takes {len(inputs)} arguments, got {len(args)}")
    types = [str(item["type"]) for item in inputs]
    return artifact.bytecode + (abi_encode(types, list(args)) if types else b"")


def deploy(
    sender: TransactionSender, artifact: ContractArtifact, args: Sequence[object] = (), timeout: float = 60.0
) -> Deployment:
    receipt = sender.transact(TxRequest(to=None, data=constructor_data(artifact, args)), timeout=timeout)
    if receipt.contract_address is None:
        raise ChainError(f"deploying {artifact.name} produced no contract address")
    return Deployment(artifact.name, receipt.contract_address, receipt.block_number, receipt.tx_hash,
                      receipt.gas_used)


def verify_deployment(backend: ChainBackend, artifact: ContractArtifact, address: str) -> None:
    """Refuse an address without code, or whose code is not this artifact's runtime code."""
    artifact.check_deployed(address, backend.get_code(address))


def find_deploy_block(backend: ChainBackend, address: str) -> int:
    """The block that created the contract at `address`, by bisecting on `eth_getCode` at a block.

    Needs a node that answers state queries for old blocks (anvil, an archive node); others fail
    with a `ChainError` and the operator passes the deploy block explicitly.
    """
    high = backend.head()
    if not backend.get_code(address, high):
        raise DeploymentMismatch(f"no contract code at {address}")
    low = 0
    while low < high:
        middle = (low + high) // 2
        if backend.get_code(address, middle):
            high = middle
        else:
            low = middle + 1
    return low
