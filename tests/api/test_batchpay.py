"""`POST /payments/batch`: each item paid once and answered as `POST /payments` would answer it alone.

Every test uses a token of its own (daemon A's rate limit is 10/s with a burst of 100 per token, and a
batch takes one per item), and unique amounts so that its payments can be found in the audit log.
"""

from __future__ import annotations

import secrets

from channeld.api._app import MAX_BODY_BYTES
from channeld.api._batchpay import MAX_ITEMS
from channeld.api._tokens import RateLimiter
from tests.api.conftest import BURST, Network


def _base_amount() -> int:
    return 10**9 + secrets.randbelow(10**9) * 1000  # items add 0..999: unique within and across tests


def _paid(network: Network, amounts: set[int]) -> list[int]:
    """The amounts among `amounts` that daemon A's audit log shows as sent, one entry per payment."""
    return [int(str(p["amount"])) for p in network.api_a.ok("GET", "/payments?limit=10000")
            if p["kind"] == "payment_sent" and int(str(p["amount"])) in amounts]


def _balance(network: Network) -> int:
    return int(network.api_b.ok("GET", f"/channels/{network.channel_id}")["our_balance"])


def test_a_batch_pays_every_item_once_in_order(network: Network) -> None:
    api = network.api_a.with_scope("pay")
    base = _base_amount()
    amounts = [base + i for i in range(40)]
    before = _balance(network)
    answer = api.ok("POST", "/payments/batch",
                    {"payments": [{"node_id": network.b.node_id, "amount": str(a)} for a in amounts]})
    assert answer["accepted"] == 40 and answer["not_accepted"] == 0
    assert [r["status"] for r in answer["results"]] == [200] * 40
    assert [r["body"]["amount"] for r in answer["results"]] == [str(a) for a in amounts]  # in order
    assert all(r["body"]["status"] == "accepted" for r in answer["results"])
    assert len({r["body"]["payment_id"] for r in answer["results"]}) == 40
    assert sorted(_paid(network, set(amounts))) == amounts
    assert _balance(network) - before == sum(amounts)


def test_each_item_is_answered_alone_and_a_refused_one_stores_nothing(network: Network) -> None:
    api = network.api_a.with_scope("pay")
    base = _base_amount()
    b = network.b.node_id
    key = "order-" + secrets.token_hex(8)
    items = [
        {"node_id": b, "amount": str(base)},  # paid
        {"node_id": b, "amount": "0"},  # 422: amount must be positive
        {"node_id": b, "amount": str(10**30)},  # 400: over the channel's capacity
        {"node_id": b, "amount": str(base + 3), "idempotency_key": "spaces are not allowed"},  # 422
        {"node_id": b, "amount": str(base + 4), "color": "red"},  # 422: unknown field
        {"request": "chpr1-not-a-request"},  # 400: not a payment request
        {"node_id": b, "amount": str(base + 6), "idempotency_key": key},  # paid
        {"node_id": b, "amount": str(base + 7), "idempotency_key": key},  # 409: the key paid another amount
    ]
    answer = api.ok("POST", "/payments/batch", {"payments": items})
    statuses = [r["status"] for r in answer["results"]]
    # the two items sharing a key run concurrently: whichever goes first pays, the other is refused
    assert statuses[:6] == [200, 422, 400, 422, 422, 400] and sorted(statuses[6:]) == [200, 409]
    assert answer["accepted"] == 2 and answer["not_accepted"] == 6
    results = answer["results"]
    assert results[1]["body"]["detail"][0]["loc"] == ["body", "payments", 1, "amount"]
    assert results[3]["body"]["detail"][0]["loc"] == ["body", "payments", 3, "idempotency_key"]
    assert results[4]["body"]["detail"][0]["loc"] == ["body", "payments", 4, "color"]
    assert results[2]["body"]["kind"] and results[5]["body"]["kind"]
    winner = base + 6 if statuses[6] == 200 else base + 7
    assert sorted(_paid(network, {base + i for i in range(8)})) == [base, winner]


def test_a_repeated_batch_with_keys_pays_once(network: Network) -> None:
    api = network.api_a.with_scope("pay")
    base = _base_amount()
    prefix = "payout-" + secrets.token_hex(6)
    body = {"payments": [{"node_id": network.b.node_id, "amount": str(base + i),
                          "idempotency_key": f"{prefix}-{i}"} for i in range(10)]}
    first = api.ok("POST", "/payments/batch", body)
    again = api.ok("POST", "/payments/batch", body)
    assert [r["body"]["payment_id"] for r in first["results"]] == [r["body"]["payment_id"]
                                                                    for r in again["results"]]
    assert again["accepted"] == 10
    assert len(_paid(network, {base + i for i in range(10)})) == 10
    single = api.post("/payments", {"node_id": network.b.node_id, "amount": str(base + 3)},
                      headers={"Idempotency-Key": f"{prefix}-3"})  # the header and the item share keys
    assert single.status_code == 200
    assert single.json()["payment_id"] == first["results"][3]["body"]["payment_id"]


def test_two_items_with_one_key_and_one_body_pay_once(network: Network) -> None:
    api = network.api_a.with_scope("pay")
    base = _base_amount()
    key = "twin-" + secrets.token_hex(6)
    item = {"node_id": network.b.node_id, "amount": str(base), "idempotency_key": key}
    answer = api.ok("POST", "/payments/batch", {"payments": [item, item]})
    first, second = answer["results"]
    assert first["status"] == second["status"] == 200 and first["body"] == second["body"]
    assert answer["accepted"] == 2  # both answered "accepted": the second is the first's result
    assert _paid(network, {base}) == [base]


def test_auth_and_envelope_refusals_pay_nothing(network: Network) -> None:
    base = _base_amount()
    body = {"payments": [{"node_id": network.b.node_id, "amount": str(base)}]}
    anonymous = network.api_a.with_scope("pay")
    anonymous.http.headers.pop("Authorization")
    assert anonymous.post("/payments/batch", body).status_code == 401
    assert network.api_a.with_scope("read").post("/payments/batch", body).status_code == 403
    assert network.api_a.with_scope("invoice").post("/payments/batch", body).status_code == 403
    api = network.api_a.with_scope("pay")
    assert api.post("/payments/batch", {"payments": []}).status_code == 422
    assert api.post("/payments/batch", {"payments": ["not an object"]}).status_code == 422
    assert api.post("/payments/batch", {"payments": body["payments"], "more": 1}).status_code == 422
    too_many = api.post("/payments/batch", {"payments": body["payments"] * (MAX_ITEMS + 1)})
    assert too_many.status_code == 422
    over_burst = api.post("/payments/batch", {"payments": body["payments"] * (BURST + 1)})
    assert over_burst.status_code == 422 and "node.api_burst" in over_burst.text
    assert _paid(network, {base}) == []


def test_a_batch_takes_one_rate_limit_token_per_item(network: Network) -> None:
    api = network.api_a.with_scope("pay")
    base = _base_amount()
    invalid = {"node_id": network.b.node_id, "amount": "0"}  # refused per item, after the rate limit
    drained = api.ok("POST", "/payments/batch", {"payments": [invalid] * (BURST - 5)})
    assert {r["status"] for r in drained["results"]} == {422}
    valid = [{"node_id": network.b.node_id, "amount": str(base + i)} for i in range(40)]
    limited = api.post("/payments/batch", {"payments": valid})  # 40 more need ~3.5 s of refill at 10/s
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert api.post("/payments", valid[0]).status_code == 200  # single payments still fit the bucket
    assert _paid(network, {base + i for i in range(40)}) == [base]


def test_a_body_over_the_limit_is_413_and_pays_nothing(network: Network) -> None:
    api = network.api_a.with_scope("pay")
    base = _base_amount()
    item = {"node_id": network.b.node_id, "amount": str(base), "padding": "x" * 4096}
    huge = {"payments": [item] * (MAX_BODY_BYTES // 4096 + 1)}
    assert api.post("/payments/batch", huge).status_code == 413
    single = api.post("/payments", {"node_id": network.b.node_id, "amount": str(base + 1),
                                    "memo": "x" * (MAX_BODY_BYTES + 1)})  # past the fast path's 16 KiB too
    assert single.status_code == 413
    assert _paid(network, {base, base + 1}) == []


def test_the_batch_route_and_its_answer_are_in_the_openapi_document(network: Network) -> None:
    document = network.api_a.http.get(network.api_a.base + "/openapi.json").json()
    operation = document["paths"]["/payments/batch"]["post"]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert answer.endswith("/PayBatchAnswer")
    assert {"results", "accepted", "not_accepted"} <= set(document["components"]["schemas"]["PayBatchAnswer"]
                                                               ["properties"])


def test_the_rate_limiter_takes_a_cost_all_or_none() -> None:
    limiter = RateLimiter(rate=10, burst=100)
    assert limiter.take("t", 0.0, 60) == 0.0
    assert limiter.take("t", 0.0, 60) == 2.0  # 40 left, 20 short at 10/s; nothing taken
    assert limiter.take("t", 0.0, 40) == 0.0
    assert limiter.take("t", 0.0) == 0.1
