"""CLI commands around the node: init (success and refusal), and the API commands with no node running."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from channeld.cli import main


def test_init_prints_address_and_node_id_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHANNELD_PASSWORD", "pw for tests")
    assert main(["--datadir", str(tmp_path / "n"), "init", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["address"].startswith("0x") and len(document["node_id"]) == 66
    assert (tmp_path / "n" / "api-token").exists() and (tmp_path / "n" / "channeld.toml").exists()


def test_init_refuses_an_existing_key(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHANNELD_PASSWORD", "pw for tests")
    assert main(["--datadir", str(tmp_path / "n"), "init"]) == 0
    capsys.readouterr()
    assert main(["--datadir", str(tmp_path / "n"), "init"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing to overwrite" in err[0]


@pytest.mark.parametrize("command", [["info"], ["channels"], ["payments"], ["connect", "x@y:1"],
                                     ["pay", "02" + "11" * 32, "5"], ["close", "0x" + "00" * 32],
                                     ["settle", "0x" + "00" * 32], ["audit", "verify"]])
def test_api_commands_without_a_running_node_fail_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    assert main(["--datadir", str(tmp_path), *command]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no running node" in err[0], err
