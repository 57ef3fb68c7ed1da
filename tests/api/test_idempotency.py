"""A payment retried with the same idempotency key pays once, however often and however concurrently."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor

from tests.api.conftest import Network


def _payments_of(network: Network, amount: int) -> list[dict[str, object]]:
    return [p for p in network.api_a.ok("GET", "/payments?limit=10000")
            if p["kind"] == "payment_sent" and p["amount"] == str(amount)]


def test_ten_retries_pay_once(network: Network) -> None:
    api = network.api_a.with_scope("pay")
    amount = 10**9 + secrets.randbelow(10**9)  # unique, so the payment can be found in the audit log
    body = {"node_id": network.b.node_id, "amount": str(amount)}
    key = {"Idempotency-Key": "order-" + secrets.token_hex(8)}
    before = int(network.api_b.ok("GET", f"/channels/{network.channel_id}")["our_balance"])

    def attempt(_: int) -> dict[str, object]:
        response = api.post("/payments", body, headers=key)
        assert response.status_code == 200, response.text
        return dict(response.json())

    with ThreadPoolExecutor(5) as pool:
        concurrent = list(pool.map(attempt, range(5)))
    sequential = [attempt(i) for i in range(5)]
    results = concurrent + sequential
    assert len({r["payment_id"] for r in results}) == 1
    assert all(r["status"] == "accepted" for r in results)
    assert len(_payments_of(network, amount)) == 1
    after = int(network.api_b.ok("GET", f"/channels/{network.channel_id}")["our_balance"])
    assert after - before == amount


def test_a_key_reused_for_another_payment_is_409(network: Network) -> None:
    api = network.api_a
    key = {"Idempotency-Key": "k-" + secrets.token_hex(8)}
    first = api.post("/payments", {"node_id": network.b.node_id, "amount": "11"}, headers=key)
    assert first.status_code == 200
    other = api.post("/payments", {"node_id": network.b.node_id, "amount": "12"}, headers=key)
    assert other.status_code == 409
    assert _payments_of(network, 12) == []


def test_a_refused_payment_frees_its_key_and_bad_keys_are_422(network: Network) -> None:
    api = network.api_a
    key = {"Idempotency-Key": "k-" + secrets.token_hex(8)}
    too_much = {"node_id": network.b.node_id, "amount": str(10**30)}
    assert api.post("/payments", too_much, headers=key).status_code == 400
    ok = api.post("/payments", {"node_id": network.b.node_id, "amount": "13"}, headers=key)
    assert ok.status_code == 200 and ok.json()["status"] == "accepted"
    bad = api.post("/payments", {"node_id": network.b.node_id, "amount": "1"},
                   headers={"Idempotency-Key": "spaces are not allowed"})
    assert bad.status_code == 422 and "idempotency-key" in bad.text


def test_keys_are_scoped_by_token(network: Network) -> None:
    """One token's key never returns another token's stored payment, nor refuses another's payment."""
    first, second = network.api_a.with_scope("pay"), network.api_a.with_scope("pay")
    key = {"Idempotency-Key": "shared-" + secrets.token_hex(8)}
    amount = 10**9 + secrets.randbelow(10**9)
    body = {"node_id": network.b.node_id, "amount": str(amount)}
    paid_first = first.post("/payments", body, headers=key)
    assert paid_first.status_code == 200, paid_first.text
    paid_second = second.post("/payments", body, headers=key)  # same key, same body, another token
    assert paid_second.status_code == 200, paid_second.text
    assert paid_second.json()["payment_id"] != paid_first.json()["payment_id"]
    assert len(_payments_of(network, amount)) == 2
    other_body = {"node_id": network.b.node_id, "amount": str(amount + 1)}
    assert second.post("/payments", other_body, headers=key).status_code == 409  # its own key, reused
    assert first.post("/payments", body, headers=key).json()["payment_id"] == paid_first.json()["payment_id"]
    assert len(_payments_of(network, amount)) == 2
