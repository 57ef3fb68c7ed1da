"""Each example in examples/ runs against real daemons on a real anvil and does what it says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from channeld.api._tokens import Scope, TokenBook
from channeld.chain import connect_rpc
from channeld.keys import create_datadir
from tests.node.helpers import PASSWORD, Zygote, deploy_hub, make_daemon
from tests.tools import REPO, Anvil


@pytest.fixture(scope="module")
def chain() -> tuple[Anvil, str]:
    anvil = Anvil()
    yield anvil, deploy_hub(anvil)  # type: ignore[misc]
    anvil.stop()


def test_wallet_example_opens_pays_receives_and_closes(tmp_path: Path, chain: tuple[Anvil, str]) -> None:
    anvil, contract = chain
    zygote = Zygote()
    try:
        node = make_daemon(tmp_path, "node", anvil, contract, zygote)
        node.start()
        wallet_dir = tmp_path / "wallet"
        key = create_datadir(wallet_dir, PASSWORD, scrypt_n=2)
        connect_rpc(anvil.url).rpc("anvil_setBalance", [key.address, hex(10**20)])
        (tmp_path / "pw").write_text(PASSWORD)
        token, _ = TokenBook(node.datadir).create(Scope.PAY, "wallet example")
        (tmp_path / "token").write_text(token)
        run = subprocess.run(
            [sys.executable, str(REPO / "examples" / "wallet.py"), str(wallet_dir), "--password-file",
             str(tmp_path / "pw"), "--rpc-url", anvil.url, "--contract", contract, "--node", node.uri,
             "--node-api", f"http://127.0.0.1:{node.api}", "--node-token-file", str(tmp_path / "token")],
            capture_output=True, text=True, timeout=120, cwd=REPO)
        assert run.returncode == 0, run.stdout + run.stderr + node.log()[-2000:]
        lines = run.stdout.splitlines()
        assert lines[0].startswith(f"wallet {key.address}")
        assert "paid 3000000000000000: accepted" in lines
        assert any(line.startswith("received 1000000000000000 for request 0x") for line in lines)
        assert lines[-1] == "closed cooperatively: settled"
        channel = node.channel()
        assert channel["status"] == "settled"
    finally:
        zygote.stop()
