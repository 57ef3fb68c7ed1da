"""Backends: the embedded py-evm chain and a JSON-RPC URL (real anvil), and deployment checks."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from channeld.chain.artifact import ContractArtifact, artifact_from_json, decode_revert
from channeld.chain.backend import (
    EMBEDDED_CHAIN_ID,
    ChainBackend,
    connect_rpc,
    embedded_fork_name,
    start_embedded,
)
from channeld.chain.deploy import Deployment, deploy, find_deploy_block, verify_deployment
from channeld.chain.errors import DeploymentMismatch, RpcUnreachable, TransactionReverted
from channeld.chain.sender import TransactionSender
from channeld.errors import ConfigError
from tests.chain.conftest import LIMIT
from tests.chain.helpers import ping, ping_id
from tests.tools import free_port


def test_embedded_chain_runs_prague_and_deploys(emitter_artifact: ContractArtifact) -> None:
    backend, keys = start_embedded()
    assert embedded_fork_name(backend) == "PragueVM"
    sender = TransactionSender(backend, Account.from_key(keys[0]), emitter_artifact.abi)
    deployment = deploy(sender, emitter_artifact, [LIMIT])
    verify_deployment(backend, emitter_artifact, deployment.address)
    receipt = sender.transact(ping(deployment.address, 7))
    logs = backend.get_logs(deployment.address, deployment.block, backend.head())
    assert [ping_id(log) for log in logs] == [7]
    assert logs[0].tx_hash == receipt.tx_hash


def test_embedded_chain_takes_another_chain_id(emitter_artifact: ContractArtifact) -> None:
    backend, keys = start_embedded(accounts=1, chain_id=4343)
    assert backend.chain_id() == 4343
    # the EVM's CHAINID (what a contract's EIP-712 domain reads), not only the RPC's answer
    chainid_code = bytes.fromhex("4660005260206000f3")  # CHAINID; MSTORE at 0; RETURN 32 bytes
    assert int.from_bytes(backend.call({"data": "0x" + chainid_code.hex()}), "big") == 4343
    sender = TransactionSender(backend, Account.from_key(keys[0]), emitter_artifact.abi)
    deployment = deploy(sender, emitter_artifact, [LIMIT])
    sender.transact(ping(deployment.address, 3))
    default, _ = start_embedded(accounts=1)
    assert default.chain_id() == EMBEDDED_CHAIN_ID


@pytest.mark.parametrize("chain_id", [0, 1 << 64])
def test_embedded_chain_id_out_of_range_is_refused(chain_id: int) -> None:
    with pytest.raises(ConfigError, match="positive uint64"):
        start_embedded(accounts=1, chain_id=chain_id)


def test_embedded_revert_is_decoded_to_the_custom_error(emitter_artifact: ContractArtifact) -> None:
    backend, keys = start_embedded()
    sender = TransactionSender(backend, Account.from_key(keys[0]), emitter_artifact.abi)
    deployment = deploy(sender, emitter_artifact, [LIMIT])
    with pytest.raises(TransactionReverted) as caught:
        sender.submit(ping(deployment.address, LIMIT + 1))
    assert (caught.value.error_name, caught.value.error_args) == ("TooBig", (LIMIT + 1, LIMIT))


def test_embedded_time_advances_by_the_requested_seconds() -> None:
    backend, _ = start_embedded(accounts=1)
    before = backend.timestamp()
    backend.advance_time(3600)
    assert backend.timestamp() == before + 3600


def test_rpc_backend_reads_chain_id_and_time(backend: ChainBackend) -> None:
    assert backend.chain_id() == 31337
    before = backend.timestamp()
    backend.advance_time(100)
    assert backend.timestamp() >= before + 100


def test_unreachable_url_is_a_clear_error() -> None:
    with pytest.raises(RpcUnreachable, match="cannot reach"):
        connect_rpc(f"http://127.0.0.1:{free_port()}", timeout=2)


@pytest.mark.parametrize("url", ["ftp://example.org", "localhost:8545", "http://"])
def test_non_http_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        connect_rpc(url)


def test_verify_accepts_the_deployed_code_despite_immutables(
    backend: ChainBackend, emitter: Deployment, emitter_artifact: ContractArtifact
) -> None:
    assert emitter_artifact.immutable_ranges, "the test contract must exercise immutable masking"
    verify_deployment(backend, emitter_artifact, emitter.address)


def test_verify_refuses_an_address_without_code(
    backend: ChainBackend, emitter_artifact: ContractArtifact
) -> None:
    with pytest.raises(DeploymentMismatch, match="no contract code"):
        verify_deployment(backend, emitter_artifact, Account.create().address)


def test_verify_refuses_other_code(
    backend: ChainBackend, emitter: Deployment, emitter_artifact: ContractArtifact
) -> None:
    flipped = bytearray(emitter_artifact.runtime_bytecode)
    flipped[0] ^= 0xFF
    other = artifact_from_json("Other", {"abi": [], "bytecode": "0x00",
                                         "deployedBytecode": "0x" + flipped.hex()})
    with pytest.raises(DeploymentMismatch, match="not the Other contract"):
        verify_deployment(backend, other, emitter.address)


def test_find_deploy_block_bisects_to_the_creation_block(
    backend: ChainBackend, emitter: Deployment, account: LocalAccount
) -> None:
    backend.mine(3)
    assert find_deploy_block(backend, emitter.address) == emitter.block


def test_unknown_revert_data_is_reported_raw() -> None:
    reverted = decode_revert([], bytes.fromhex("deadbeef01"))
    assert reverted.error_name == "unknown error 0xdeadbeef01"
    assert decode_revert([], b"").error_name == "empty revert"


def test_immutables_are_found_without_solc_references(
    backend: ChainBackend, emitter: Deployment, emitter_artifact: ContractArtifact
) -> None:
    bare = artifact_from_json("Emitter", {"abi": [], "bytecode": "0x00",
                                          "deployedBytecode": "0x" + emitter_artifact.runtime_bytecode.hex()})
    assert bare.immutable_ranges == emitter_artifact.immutable_ranges
    verify_deployment(backend, bare, emitter.address)
