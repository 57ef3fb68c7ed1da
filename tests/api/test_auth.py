"""Bearer tokens: 401 for missing, wrong, expired or revoked; 403 outside the scope; 429 over the limit."""

from __future__ import annotations

import time

from channeld.api._tokens import Scope, TokenBook
from tests.api.conftest import BURST, Api, Network


def test_missing_and_wrong_tokens_are_401(network: Network) -> None:
    anonymous = Api(network.a, None)
    for response in (anonymous.get("/info"), Api(network.a, "chd_00000000_" + "0" * 48).get("/info")):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
    assert anonymous.http.get(network.api_a.root + "/metrics").status_code == 401
    malformed = anonymous.get("/info", headers={"Authorization": "Basic abc"})
    assert malformed.status_code == 401


def test_auth_is_checked_before_the_body(network: Network) -> None:
    response = Api(network.a, None).post("/payments", {"amount": "not a number"})
    assert response.status_code == 401


def test_expired_and_revoked_tokens_are_401(network: Network) -> None:
    short = network.api_a.with_scope("read", expires_in=3.0)  # room for a slow call on a loaded machine
    assert short.get("/info").status_code == 200
    time.sleep(3.1)
    expired = short.get("/info")
    assert expired.status_code == 401 and "expired" in expired.text
    revocable = network.api_a.with_scope("admin")
    assert revocable.get("/channels").status_code == 200
    token_id = revocable.token.split("_")[1]  # type: ignore[union-attr]
    TokenBook(network.a.datadir).revoke(token_id)
    revoked = revocable.get("/channels")
    assert revoked.status_code == 401 and "revoked" in revoked.text


def test_tokens_are_stored_hashed(network: Network) -> None:
    api = network.api_a.with_scope("read")
    stored = (network.a.datadir / "api-tokens.json").read_text()
    assert api.token is not None and api.token not in stored
    assert (network.a.datadir / "api-tokens.json").stat().st_mode & 0o777 == 0o600


def test_scopes_cover_their_calls_and_no_more(network: Network) -> None:
    read, invoice, pay = (network.api_b.with_scope(s) for s in ("read", "invoice", "pay"))
    assert read.get("/payments").status_code == 200
    assert read.post("/requests", {"amount": "5"}).status_code == 403
    created = invoice.post("/requests", {"amount": "5", "description": "shop order"})
    assert created.status_code == 201
    assert invoice.get("/payments").status_code == 200
    refused = invoice.post("/payments", {"node_id": network.a.node_id, "amount": "1"})
    assert refused.status_code == 403 and "invoice" in refused.json()["detail"]
    assert pay.post("/channels", {"uri": network.a.uri, "deposit": "1"}).status_code == 403
    assert pay.post("/watchtowers", {"uri": network.a.uri}).status_code == 403
    assert invoice.get("/audit/verify").status_code == 403


def test_over_the_rate_limit_is_429_with_retry_after(network: Network) -> None:
    api = network.api_a.with_scope("read")
    responses = [api.get("/health") for _ in range(BURST + 60)]
    statuses = [r.status_code for r in responses]
    assert statuses[:BURST // 2] == [200] * (BURST // 2)  # a burst is allowed at once
    limited = [r for r in responses if r.status_code == 429]
    assert limited and set(statuses) == {200, 429}
    assert int(limited[0].headers["retry-after"]) >= 1 and "rate limit" in limited[0].text
    other = network.api_a.with_scope("read")  # the limit is per token
    assert other.get("/health").status_code == 200


def test_cli_token_commands_round_trip(network: Network, capsys: object) -> None:
    from channeld.cli import main

    datadir = str(network.a.datadir)
    assert main(["--datadir", datadir, "token", "create", "--scope", "invoice", "--json",
                 "--expires", "1h", "--label", "cli"]) == 0
    import json

    created = json.loads(capsys.readouterr().out)  # type: ignore[attr-defined]
    assert created["scope"] == "invoice" and created["expires"] > time.time() + 3000
    api = Api(network.a, created["token"])
    assert api.get("/payments").status_code == 200
    assert main(["--datadir", datadir, "token", "revoke", created["id"]]) == 0
    assert api.get("/payments").status_code == 401
    assert main(["--datadir", datadir, "token", "revoke", "nosuchid"]) == 1
    assert Scope.parse("PAY") is Scope.PAY
