"""`channeld node --chain embedded`: a node on its own in-process EVM, started as a real daemon."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from channeld.cli import main
from channeld.keys import create_datadir
from tests.node.helpers import PASSWORD, Zygote, wait_until
from tests.tools import free_port


def test_an_embedded_node_deploys_its_contract_and_serves(tmp_path: Path, zygote: Zygote,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    datadir = tmp_path / "solo"
    key = create_datadir(datadir, PASSWORD, scrypt_n=2)
    password = tmp_path / "password"
    password.write_text(PASSWORD)
    argv = ["--datadir", str(datadir), "node", "--password-file", str(password), "--chain", "embedded",
            "--listen", f"127.0.0.1:{free_port()}", "--api", f"127.0.0.1:{free_port()}"]
    pid = zygote.spawn(argv, tmp_path / "solo.log")
    try:
        runtime = wait_until(lambda: (datadir / "node.json").exists() and json.loads(
            (datadir / "node.json").read_text()), timeout=60, what="the embedded node to start")
        assert runtime["pid"] == pid
        capsys.readouterr()
        assert main(["--datadir", str(datadir), "info", "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["address"] == key.address and info["contract"].startswith("0x")
        assert info["chain_id"] == runtime["chain_id"] and info["channels"] == 0
        assert main(["--datadir", str(datadir), "channels", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == []
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not _alive(pid), what="the node to stop on SIGTERM")
    assert "Traceback" not in (tmp_path / "solo.log").read_text()


def test_embedded_and_an_rpc_url_together_are_refused(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    create_datadir(tmp_path / "solo", PASSWORD, scrypt_n=2)
    (tmp_path / "password").write_text(PASSWORD)
    code = main(["--datadir", str(tmp_path / "solo"), "node", "--password-file", str(tmp_path / "password"),
                 "--chain", "embedded", "--rpc-url", "http://127.0.0.1:1"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not both" in err[0]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
