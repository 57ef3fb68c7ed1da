"""`channeld node` refuses to start, with one line and exit status 1, on bad input or a busy datadir."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from channeld.cli import main
from tests.node.helpers import PASSWORD, Zygote, make_daemon
from tests.tools import Anvil


def _node(datadir: Path, password_file: Path, anvil: Anvil, contract: str, *extra: str) -> list[str]:
    return ["--datadir", str(datadir), "node", "--password-file", str(password_file), "--rpc-url", anvil.url,
            "--contract", contract, *extra]


def _one_line_error(capsys: pytest.CaptureFixture[str], *words: str) -> None:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if " INFO " not in line]
    assert len(err) == 1 and err[0].startswith("channeld node: error:"), err
    for word in words:
        assert word in err[0], err[0]


def test_bad_config_value_is_one_line_and_exit_1(tmp_path: Path, chain: tuple[Anvil, str], zygote: Zygote,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    anvil, contract = chain
    d = make_daemon(tmp_path, "a", anvil, contract, zygote)
    (d.datadir / "channeld.toml").write_text("[chain]\nconfirmations = -3\n")
    assert main(_node(d.datadir, d.password_file, anvil, contract)) == 1
    _one_line_error(capsys, "chain.confirmations")


def test_wrong_password_is_refused(tmp_path: Path, chain: tuple[Anvil, str], zygote: Zygote,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    anvil, contract = chain
    d = make_daemon(tmp_path, "a", anvil, contract, zygote)
    d.password_file.write_text(PASSWORD + " typo")
    assert main(_node(d.datadir, d.password_file, anvil, contract)) == 1
    _one_line_error(capsys, "decrypt")


def test_second_node_on_the_same_datadir_is_refused(tmp_path: Path, chain: tuple[Anvil, str], zygote: Zygote,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    anvil, contract = chain
    d = make_daemon(tmp_path, "a", anvil, contract, zygote)
    d.start()
    try:
        assert main(_node(d.datadir, d.password_file, anvil, contract, "--listen", "127.0.0.1:1",
                          "--api", "127.0.0.1:2")) == 1
        _one_line_error(capsys, "in use by another process")
    finally:
        d.kill(signal.SIGTERM)


@pytest.mark.skipif(os.geteuid() != 0, reason="a read-only bind mount needs root")
def test_read_only_datadir_is_refused(tmp_path: Path, chain: tuple[Anvil, str], zygote: Zygote,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    anvil, contract = chain
    d = make_daemon(tmp_path, "a", anvil, contract, zygote)
    subprocess.run(["mount", "--bind", "-o", "ro", str(d.datadir), str(d.datadir)], check=True)
    try:
        assert main(_node(d.datadir, d.password_file, anvil, contract)) == 1
        _one_line_error(capsys, "not writable")
    finally:
        subprocess.run(["umount", str(d.datadir)], check=True)
