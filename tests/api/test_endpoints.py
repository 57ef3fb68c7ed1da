"""Every endpoint's success and refusal paths, against two real daemons on anvil."""

from __future__ import annotations

import json

from eth_utils import to_checksum_address

from channeld.client import PaymentRequest
from tests.api.conftest import Network
from tests.node.helpers import wait_until


def test_info_health_and_metrics(network: Network) -> None:
    api = network.api_a
    info = api.ok("GET", "/info")
    assert info["node_id"] == network.a.node_id and info["channels"] == 1
    assert api.ok("GET", "/health")["status"] == "ok"
    metrics = api.http.get(api.root + "/metrics")
    assert metrics.status_code == 200 and "channeld_payments_total" in metrics.text


def test_openapi_is_served_under_v1(network: Network) -> None:
    document = network.api_a.http.get(network.api_a.base + "/openapi.json").json()
    wanted = {"/payments", "/requests", "/channels/{channel_id}/close", "/watchtowers"}
    assert wanted <= set(document["paths"])


def test_peers_list_and_connect_refusals(network: Network) -> None:
    api = network.api_a
    peers = api.ok("GET", "/peers")
    assert [p["node_id"] for p in peers] == [network.b.node_id] and peers[0]["connected"]
    assert api.ok("POST", "/peers", {"uri": network.b.uri})["node_id"] == network.b.node_id
    bad = api.post("/peers", {"uri": "not-a-uri"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "uri"]


def test_channels_list_filters_and_get(network: Network) -> None:
    api = network.api_a
    assert [c["channel_id"] for c in api.ok("GET", "/channels?status=open")] == [network.channel_id]
    assert api.ok("GET", "/channels?status=settled") == []
    assert len(api.ok("GET", f"/channels?peer={network.b.node_id}")) == 1
    assert api.ok("GET", f"/channels?peer=02{'11' * 32}") == []
    ether = to_checksum_address("0x" + "00" * 20)
    assert len(api.ok("GET", f"/channels?token={ether}")) == 1
    assert api.get("/channels?status=bogus").status_code == 422
    assert api.ok("GET", f"/channels/{network.channel_id}")["status"] == "open"
    assert api.get("/channels/0x" + "ab" * 32).status_code == 404
    wrong = api.get("/channels/0x12")
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["path", "channel_id"]


def test_on_chain_operations_answer_202_and_refusals_400(network: Network) -> None:
    api, cid = network.api_b, network.channel_id
    accepted = api.post(f"/channels/{cid}/deposit", {"amount": "1000"})
    assert accepted.status_code == 202
    op = accepted.json()
    assert op["kind"] == "deposit" and isinstance(op["operation_id"], int)
    wait_until(lambda: api.ok("GET", f"/operations/{op['operation_id']}")["status"] == "mined",
               what="deposit mined")
    mined = api.ok("GET", f"/operations/{op['operation_id']}")
    assert mined["tx_hash"].startswith("0x") and len(mined["tx_hash"]) == 66
    assert api.get("/operations/99999999").status_code == 404
    settle = api.post(f"/channels/{cid}/settle")
    assert settle.status_code == 400 and "not closed" in settle.json()["error"]
    too_much = api.post(f"/channels/{cid}/withdraw", {"amount": str(10**30)})
    assert too_much.status_code == 400
    assert api.post("/channels/0x" + "cd" * 32 + "/close", {}).status_code == 404


def test_amount_and_address_validation_names_the_field(network: Network) -> None:
    api, cid = network.api_a, network.channel_id
    for amount in ("0", "-1", "1.5", str(2**256), "1e18", 5):
        response = api.post(f"/channels/{cid}/deposit", {"amount": amount})
        assert response.status_code == 422, amount
        assert response.json()["detail"][0]["loc"][-1] == "amount"
    lower = "0x" + "ab" * 20
    response = api.post(f"/channels/{cid}/withdraw", {"amount": "1", "to": lower})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"][-1] == "to"
    extra = api.post(f"/channels/{cid}/deposit", {"amount": "1", "sneaky": True})
    assert extra.status_code == 422
    # only our side is compared: the partner's earlier deposit (another test) may land meanwhile
    ours = ("status", "our_deposit", "our_withdrawn", "our_nonce", "in_flight")
    before = {key: api.ok("GET", f"/channels/{cid}")[key] for key in ours}
    assert api.post("/payments", {"node_id": "02" + "zz" * 32, "amount": "1"}).status_code == 422
    assert {key: api.ok("GET", f"/channels/{cid}")[key] for key in ours} == before  # nothing changed


def test_payments_send_list_page_and_get(network: Network) -> None:
    api = network.api_a
    sent = [api.ok("POST", "/payments", {"node_id": network.b.node_id, "amount": str(100 + i)})
            for i in range(3)]
    assert all(p["status"] == "accepted" for p in sent)
    everything = api.ok("GET", "/payments?limit=10000")
    first_page = api.ok("GET", "/payments?after=0&limit=2")
    assert first_page == everything[:2]
    second_page = api.ok("GET", f"/payments?after={first_page[-1]['seq']}&limit=2")
    assert second_page == everything[2:4]
    one = api.ok("GET", f"/payments/{sent[1]['payment_id']}")
    assert [p["amount"] for p in one] == ["101"] and one[0]["kind"] == "payment_sent"
    received = network.api_b.ok("GET", f"/payments/{sent[1]['payment_id']}")
    assert received[0]["kind"] == "payment_received"
    assert api.get("/payments/12345").status_code == 404
    assert api.get("/payments?limit=0").status_code == 422
    nowhere = api.post("/payments", {"node_id": "02" + "11" * 32, "amount": "1"})
    assert nowhere.status_code == 400 and "no open channel" in nowhere.json()["error"]
    assert api.post("/payments", {"amount": "1"}).status_code == 422


def test_payment_request_create_get_qr_decode_pay_once(network: Network) -> None:
    shop, buyer = network.api_b.with_scope("invoice"), network.api_a
    created = shop.ok("POST", "/requests", {"amount": "777", "description": "two coffees"}, status=201)
    assert "preimage" not in created and created["status"] == "open"
    request = PaymentRequest.decode(created["request"])
    assert request.amount == 777 and request.node_id.hex() == network.b.node_id
    assert shop.ok("GET", f"/requests/{created['payment_hash']}")["description"] == "two coffees"
    svg = shop.get(f"/requests/{created['payment_hash']}/qr")
    assert svg.headers["content-type"] == "image/svg+xml" and b"<svg" in svg.content
    png = shop.get(f"/requests/{created['payment_hash']}/qr?format=png")
    assert png.content.startswith(b"\x89PNG")
    decoded = buyer.ok("POST", "/requests/decode", {"request": created["request"]})
    assert decoded["amount"] == "777" and decoded["expired"] is False
    paid = buyer.ok("POST", "/payments", {"request": created["request"]})
    assert paid["status"] == "accepted" and paid["amount"] == "777"
    import hashlib

    assert hashlib.sha256(bytes.fromhex(paid["preimage"][2:])).hexdigest() == created["payment_hash"][2:]
    assert shop.ok("GET", f"/requests/{created['payment_hash']}")["status"] == "paid"
    again = buyer.post("/payments", {"request": created["request"]})
    assert again.status_code == 400 and "already paid" in again.json()["error"]


def test_payment_request_refusals(network: Network) -> None:
    api = network.api_a
    created = network.api_b.ok("POST", "/requests", {"amount": "5"}, status=201)
    text = created["request"]
    flipped = text[:-3] + ("a" if text[-3] != "a" else "b") + text[-2:]
    for bad in (flipped, "chpr1" + "a" * 30, "lnbc1" + text[5:]):
        response = api.post("/payments", {"request": bad})
        assert response.status_code == 400 and "bad payment request" in response.json()["error"]
    ours = api.ok("POST", "/requests", {"amount": "5"}, status=201)["request"]
    own = api.post("/payments", {"request": ours})
    assert own.status_code == 400 and "our own" in own.json()["error"]
    assert api.get("/requests/0x" + "00" * 32).status_code == 404
    assert api.post("/requests", {"amount": "5", "expires_in": 0}).status_code == 422
    assert api.post("/requests", {"amount": "5", "description": "x" * 300}).status_code == 422
    assert api.post("/payments", {"request": text, "amount": "5"}).status_code == 422


def test_watchtowers_add_and_list(network: Network) -> None:
    api = network.api_a
    tower = f"02{'33' * 32}@127.0.0.1:9"
    added = api.ok("POST", "/watchtowers", {"uri": tower}, status=201)
    assert added["uri"] == tower and added["connected"] is False
    assert tower in [t["uri"] for t in api.ok("GET", "/watchtowers")]
    assert api.post("/watchtowers", {"uri": tower}).status_code == 400
    assert api.post("/watchtowers", {"uri": "nope"}).status_code == 422


def test_audit_export_and_verify(network: Network) -> None:
    api = network.api_a
    assert api.ok("GET", "/audit/verify")["ok"] is True
    exported = api.get("/audit/export")
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert exported.status_code == 200 and lines and {"seq", "kind", "amount"} <= set(lines[0])
    assert [entry["seq"] for entry in lines] == sorted(entry["seq"] for entry in lines)
