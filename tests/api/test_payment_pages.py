"""`GET /payments?before=`: newest-first cursor pages over the audit log, and a streamed audit export."""

from __future__ import annotations

import json

import pytest

from channeld.api._routes import NEXT_BEFORE_HEADER
from channeld.cli import main
from tests.api.conftest import Network

PAYMENTS = 9


def test_before_cursor_pages_reach_every_payment_once(network: Network) -> None:
    payer, payee = network.api_a, network.api_b  # the payee's API has the default (higher) rate limit
    for i in range(PAYMENTS):
        paid = payer.ok("POST", "/payments", {"node_id": network.b.node_id, "amount": str(7_000 + i)})
        assert paid["status"] == "accepted"
    everything = payee.ok("GET", "/payments?limit=10000")
    assert len(everything) >= PAYMENTS
    assert [int(p["amount"]) for p in everything[-PAYMENTS:]] == [7_000 + i for i in range(PAYMENTS)]
    pages: list[list[dict[str, object]]] = []
    cursor = ""
    while True:
        response = payee.get(f"/payments?limit=4{cursor}")
        assert response.status_code == 200, response.text
        pages.append(response.json())
        following = response.headers.get(NEXT_BEFORE_HEADER)
        if following is None:
            break
        assert int(following) == pages[-1][0]["seq"]  # the oldest of the page: older ones come next
        cursor = f"&before={following}"
    assert all(len(page) == 4 for page in pages[:-1]) and 1 <= len(pages[-1]) <= 4
    assert [p for page in reversed(pages) for p in page] == everything  # each page oldest first
    newest = payee.ok("GET", "/payments?limit=3")
    assert newest == everything[-3:]
    assert payee.ok("GET", f"/payments?before={everything[0]['seq']}") == []
    between = payee.ok("GET", f"/payments?after={everything[-5]['seq']}&before={everything[-1]['seq']}")
    assert between == everything[-4:-1]


def test_bad_cursors_are_refused_with_422(network: Network) -> None:
    api = network.api_b
    for bad in ("0", "-1", "abc", str(2**63), "1.5", ""):
        response = api.get(f"/payments?before={bad}")
        assert response.status_code == 422, (bad, response.text)
    assert api.get("/payments?before=1").status_code == 200  # a cursor at the log's start: a last page


def test_audit_export_streams_every_entry(network: Network) -> None:
    api = network.api_a
    lines = []
    with api.http.stream("GET", "/audit/export") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        for line in response.iter_lines():
            lines.append(json.loads(line))
    seqs = [entry["seq"] for entry in lines]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert api.ok("GET", "/audit/verify")["entries"] >= len(lines)


def test_cli_pages_back_with_before(network: Network, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(3):
        network.api_a.ok("POST", "/payments", {"node_id": network.b.node_id, "amount": str(8_000 + i)})
    everything = network.api_b.ok("GET", "/payments?limit=10000")
    cli = ["--datadir", str(network.b.datadir), "payments", "--limit", "2"]
    assert main([*cli, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == everything[-2:]
    assert main(cli) == 0
    hint = capsys.readouterr().out.splitlines()[-1]
    assert hint == f"older: channeld payments --limit 2 --before {everything[-2]['seq']}"
    assert main([*cli, "--before", str(everything[-2]["seq"]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == everything[-4:-2]
    for bad in ("zero", "0", "-3"):
        assert main([*cli, "--before", bad]) == 1
        err = capsys.readouterr().err
        assert err.startswith("channeld payments: error: before:") and err.count("\n") == 1, err
