"""`channeld request` and `channeld pay <request>` against the running daemons."""

from __future__ import annotations

import json

import pytest

from channeld.cli import main
from tests.api.conftest import Network


def test_request_then_pay_it_from_the_cli(network: Network, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--datadir", str(network.b.datadir), "request", "1234wei", "--description", "cli",
                 "--expires", "10m", "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["amount"] == "1234" and created["description"] == "cli"
    assert main(["--datadir", str(network.a.datadir), "pay", created["request"]]) == 0
    out = capsys.readouterr().out
    assert "accepted" in out and "receipt (preimage) 0x" in out
    assert main(["--datadir", str(network.a.datadir), "pay", created["request"]]) == 1
    assert "already paid" in capsys.readouterr().err
    assert main(["--datadir", str(network.a.datadir), "pay", created["request"], "5"]) == 1
    assert "carries its amount" in capsys.readouterr().err
    assert main(["--datadir", str(network.a.datadir), "pay", network.b.node_id]) == 1
    assert "needs an AMOUNT" in capsys.readouterr().err
    assert main(["--datadir", str(network.b.datadir), "request", "1", "--expires", "soon"]) == 1
