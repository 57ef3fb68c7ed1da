"""Webhooks: retried until acknowledged, each event delivered once, signed, replays refused."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from channeld.client import WebhookRejected, WebhookVerifier, sign
from tests.api.conftest import Network
from tests.node.helpers import wait_until


class Receiver:
    """A real HTTP receiver that answers 500 to its first `failures` calls, then 200."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[tuple[dict[str, str], bytes, int]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 500 if len(receiver.calls) < receiver.failures else 200
                receiver.calls.append((dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def acknowledged(self) -> list[tuple[dict[str, str], bytes]]:
        return [(headers, body) for headers, body, status in self.calls if status == 200]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(failures=3)
    yield found
    found.server.shutdown()
    found.server.server_close()


def test_failing_receiver_gets_each_event_once_signed_and_refuses_replays(
        network: Network, receiver: Receiver) -> None:
    shop = network.api_b.with_scope("invoice")
    hook = shop.ok("POST", "/webhooks", {"url": receiver.url}, status=201)
    assert len(hook["secret"]) == 64 and "secret" not in json.dumps(shop.ok("GET", "/webhooks"))
    for _ in range(3):
        network.api_a.ok("POST", "/payments", {"node_id": network.b.node_id, "amount": "21"})
    verifier = WebhookVerifier(hook["secret"])

    def delivered() -> list[dict[str, Any]]:
        events = [json.loads(body) for _, body in receiver.acknowledged()]
        return events if sum(e["kind"] == "payment_received" for e in events) >= 3 else []

    events = wait_until(delivered, what="three payments delivered")
    assert [call[2] for call in receiver.calls[:4]] == [500, 500, 500, 200]
    assert receiver.calls[0][1] == receiver.calls[3][1]  # the same event retried until acknowledged
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(hook["cursor"] + 1, hook["cursor"] + 1 + len(seqs)))  # in order, each once
    for headers, body in receiver.acknowledged():
        assert verifier.verify(headers, body)["seq"] in seqs
    headers, body = receiver.acknowledged()[0]
    with pytest.raises(WebhookRejected, match="replay"):
        verifier.verify(headers, body)
    forged = body.replace(b'"amount": "21"', b'"amount": "99"')
    with pytest.raises(WebhookRejected, match="signature"):
        WebhookVerifier(hook["secret"]).verify(headers, forged)
    stale = {**headers, "Channeld-Timestamp": "1000", "Channeld-Signature": sign(hook["secret"], 1000, body)}
    with pytest.raises(WebhookRejected, match="tolerance"):
        WebhookVerifier(hook["secret"]).verify(stale, body)
    assert shop.http.delete(f"/webhooks/{hook['id']}").status_code == 204
    assert shop.http.delete(f"/webhooks/{hook['id']}").status_code == 404


def test_webhook_urls_are_validated(network: Network) -> None:
    api = network.api_b.with_scope("invoice")
    for url in ("ftp://x.example/hook", "not a url", "http://" + "a" * 3000):
        response = api.post("/webhooks", {"url": url})
        assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "url"]
    assert network.api_b.with_scope("read").post("/webhooks", {"url": "http://x.example/"}).status_code == 403


def test_undelivered_events_survive_a_node_restart(network: Network) -> None:
    down = Receiver(failures=10**9)  # answers 500 until told otherwise
    try:
        hook = network.api_b.with_scope("invoice").ok("POST", "/webhooks", {"url": down.url}, status=201)
        network.api_a.ok("POST", "/payments", {"node_id": network.b.node_id, "amount": "31"})
        wait_until(lambda: len(down.calls) >= 2, what="delivery attempts")
        network.b.kill(signal.SIGTERM)
        network.b.start()
        down.failures = 0
        verifier = WebhookVerifier(hook["secret"])

        def paid() -> bool:
            events = [verifier.verify(h, b) for h, b in down.acknowledged()[len(verifier_seen):]]
            verifier_seen.extend(events)
            return any(e["kind"] == "payment_received" and e["amount"] == "31" for e in verifier_seen)

        verifier_seen: list[dict[str, Any]] = []
        wait_until(paid, what="the payment delivered after the restart")
        seqs = [e["seq"] for e in verifier_seen]
        assert seqs == list(range(hook["cursor"] + 1, hook["cursor"] + 1 + len(seqs)))
        network.api_b.http.delete(f"/webhooks/{hook['id']}")
    finally:
        down.server.shutdown()
        down.server.server_close()
    wait_until(lambda: network.b.node_id in network.api_a.ok("GET", "/info")["peers"], what="reconnect")
