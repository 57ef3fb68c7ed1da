"""`channeld deploy` as a real subprocess against real anvil: success and its error paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from channeld.chain.artifact import load_artifact
from channeld.chain.backend import connect_rpc
from channeld.chain.deploy import verify_deployment
from channeld.cli import DEPLOY_KEY_ENV, read_deploy_key
from channeld.errors import ConfigError
from tests.tools import Anvil, free_port


def channeld(*args: str, env_key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name != DEPLOY_KEY_ENV}
    if env_key is not None:
        env[DEPLOY_KEY_ENV] = env_key
    return subprocess.run([sys.executable, "-m", "channeld.cli", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def key_file(tmp_path: Path, account: LocalAccount) -> Path:
    path = tmp_path / "deploy.key"
    path.write_text(account.key.hex() + "\n")
    return path


@pytest.fixture
def funded(anvil: Anvil) -> LocalAccount:
    account: LocalAccount = Account.create()
    connect_rpc(anvil.url).rpc("anvil_setBalance", [account.address, hex(10**20)])
    return account


def test_deploy_prints_addresses_of_verified_contracts(
    anvil: Anvil, funded: LocalAccount, tmp_path: Path
) -> None:
    done = channeld("deploy", "--rpc-url", anvil.url, "--private-key-file", str(key_file(tmp_path, funded)),
                    "--test-token", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["chain_id"] == anvil.chain_id and document["deployer"] == funded.address
    backend = connect_rpc(anvil.url)
    for name in ("ChannelHub", "TestToken"):
        verify_deployment(backend, load_artifact(name), document["contracts"][name]["address"])
    assert funded.key.hex() not in done.stdout + done.stderr


def test_deploy_takes_the_key_from_the_environment(anvil: Anvil, funded: LocalAccount) -> None:
    done = channeld("deploy", "--rpc-url", anvil.url, env_key="0x" + funded.key.hex())
    assert done.returncode == 0, done.stderr
    assert "ChannelHub at 0x" in done.stdout and "TestToken" not in done.stdout


def test_unreachable_url_fails_in_one_line(funded: LocalAccount) -> None:
    done = channeld("deploy", "--rpc-url", f"http://127.0.0.1:{free_port()}", env_key=funded.key.hex())
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "cannot reach the chain" in done.stderr


def test_missing_key_is_a_clear_error(anvil: Anvil) -> None:
    done = channeld("deploy", "--rpc-url", anvil.url)
    assert done.returncode == 1
    expected = f"no paying key: pass --private-key-file or set {DEPLOY_KEY_ENV}"
    assert done.stderr == f"channeld deploy: error: {expected}\n"


def test_unfunded_key_cannot_pay_and_is_never_printed(anvil: Anvil, tmp_path: Path) -> None:
    pauper: LocalAccount = Account.create()
    done = channeld("deploy", "--rpc-url", anvil.url, "--private-key-file", str(key_file(tmp_path, pauper)))
    assert done.returncode == 1
    assert f"account {pauper.address} cannot pay" in done.stderr
    assert pauper.key.hex() not in done.stdout + done.stderr


def test_malformed_key_file_is_refused_without_echo(anvil: Anvil, tmp_path: Path) -> None:
    path = tmp_path / "bad.key"
    path.write_text("not-a-key-secret-words")
    done = channeld("deploy", "--rpc-url", anvil.url, "--private-key-file", str(path))
    assert done.returncode == 1 and "does not hold a 32-byte hex" in done.stderr
    assert "secret-words" not in done.stderr


def test_unknown_command_is_a_usage_error() -> None:
    done = channeld("fly")
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_missing_key_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read private key file"):
        read_deploy_key(tmp_path / "absent.key", environ={})


def test_key_file_wins_over_the_environment(tmp_path: Path) -> None:
    chosen: LocalAccount = Account.create()
    other: LocalAccount = Account.create()
    loaded = read_deploy_key(key_file(tmp_path, chosen), environ={DEPLOY_KEY_ENV: other.key.hex()})
    assert loaded.address == chosen.address
