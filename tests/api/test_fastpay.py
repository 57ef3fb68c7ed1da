"""The payments fast path (api/_fastpay.py): what it does not accept as is reaches the FastAPI route
unchanged (body included, nothing recorded), and what it answers itself reads as the route's answers."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from channeld.api._app import Guard
from channeld.api._fastpay import MAX_BODY, FastPayments, Message
from channeld.api._routes import Idempotency
from channeld.api._tokens import RateLimiter, Scope, TokenBook
from channeld.keys import write_api_token
from tests.api.conftest import Network

NODE_ID = "02" + "ab" * 32


class Route:
    """Stands for the FastAPI application behind the fast path: records what reached it and answers 299."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []

    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        self.calls.append((scope["path"], b"".join(chunks)))
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


class Unpayable(Idempotency):
    """A declined request must never get here; reaching it fails the test."""

    def __init__(self) -> None:
        self.reached = False

    async def run(self, token_id: str, given: str | None, body: Any) -> dict[str, Any]:
        self.reached = True
        raise AssertionError("the fast path paid a request it should have declined")


@pytest.fixture
def tokens(tmp_path: Path) -> TokenBook:
    write_api_token(tmp_path)
    return TokenBook(tmp_path)


def _scope(token: str | None, path: str = "/api/v1/payments", method: str = "POST",
           content_type: bytes = b"application/json", extra: list[tuple[bytes, bytes]] | None = None
           ) -> Message:
    headers = [(b"content-type", content_type), *(extra or [])]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return {"type": "http", "method": method, "path": path, "headers": headers}


async def _call(app: FastPayments, scope: Message, chunks: list[bytes]) -> int:
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                for i, c in enumerate(chunks)]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


def _valid_body() -> bytes:
    return json.dumps({"node_id": NODE_ID, "amount": "5"}).encode()


async def test_requests_it_does_not_accept_reach_the_route_with_their_body(tokens: TokenBook) -> None:
    route, idempotency = Route(), Unpayable()
    limiter = RateLimiter(0.001, 1)  # one request in its burst: any take by a declined request shows
    app = FastPayments(route, Guard(tokens, limiter), idempotency)
    reader, _ = tokens.create(Scope.READ)
    payer, _ = tokens.create(Scope.PAY)
    body = _valid_body()
    declined = [
        (_scope(payer, path="/api/v1/channels"), [body]),  # another route
        (_scope(payer, method="PUT"), [body]),
        (_scope(None), [body]),  # no token: 401 is the route's
        (_scope("chd_unknown"), [body]),
        (_scope(reader), [body]),  # scope too small: 403
        (_scope(payer, content_type=b"text/plain"), [body]),
        (_scope(payer), [b"{not json"]),
        (_scope(payer), [b""]),
        (_scope(payer), [json.dumps({"node_id": NODE_ID}).encode()]),  # PayBody refuses it: 422
        (_scope(payer), [json.dumps({"node_id": NODE_ID, "amount": "5", "extra": 1}).encode()]),
        (_scope(payer, extra=[(b"idempotency-key", b"k" * 65)]), [body]),  # the header's max_length
        (_scope(payer, extra=[(b"authorization", f"Bearer {payer}".encode())]), [body]),  # twice
        (_scope(payer), [b" " * MAX_BODY, b" " * 10, body]),  # larger than the fast path reads
    ]
    for scope, chunks in declined:
        assert await _call(app, scope, chunks) == 299
        assert route.calls[-1] == (scope["path"], b"".join(chunks))
    assert len(route.calls) == len(declined) and not idempotency.reached
    # none of the declined requests took from the payer's rate budget (the route takes it once itself)
    assert limiter.take(tokens.check(f"Bearer {payer}", Scope.PAY).id, time.monotonic()) == 0.0


async def test_a_rate_limited_caller_is_the_routes_to_answer(tokens: TokenBook) -> None:
    route, idempotency = Route(), Unpayable()
    app = FastPayments(route, Guard(tokens, RateLimiter(0.001, 1)), idempotency)
    payer, record = tokens.create(Scope.PAY)
    app.guard.limiter.take(record.id, time.monotonic())  # the one request of its burst is spent
    assert await _call(app, _scope(payer), [_valid_body()]) == 299  # the route answers 429
    assert not idempotency.reached


def test_answers_of_the_fast_path_read_as_the_routes(network: Network) -> None:
    api = network.api_a.with_scope("pay")
    paid = api.post("/payments", {"node_id": network.b.node_id, "amount": "3"})
    assert paid.status_code == 200 and paid.headers["content-type"] == "application/json"
    assert paid.json()["status"] == "accepted" and paid.json()["amount"] == "3"
    refused = api.post("/payments", {"node_id": network.b.node_id, "amount": str(10**30)})
    assert refused.status_code == 400
    assert set(refused.json()) == {"error", "kind"} and refused.json()["kind"] == "OperationRefused"
    key = {"Idempotency-Key": "fast-" + secrets.token_hex(8)}
    first = api.post("/payments", {"node_id": network.b.node_id, "amount": "4"}, headers=key)
    assert first.status_code == 200
    reused = api.post("/payments", {"node_id": network.b.node_id, "amount": "5"}, headers=key)
    assert reused.status_code == 409
    assert reused.json() == {"detail": "this idempotency key was used for a different payment"}
    bad_key = api.post("/payments", {"node_id": network.b.node_id, "amount": "1"},
                       headers={"Idempotency-Key": "no spaces"})
    assert bad_key.status_code == 422 and bad_key.json()["detail"][0]["loc"] == ["header", "idempotency-key"]
    unknown = api.post("/payments", {"node_id": "03" + "cd" * 32, "amount": "1"})
    assert unknown.status_code == 400 and "kind" in unknown.json()
