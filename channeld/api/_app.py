"""The control API application: FastAPI under /api/v1 (its OpenAPI at /api/v1/openapi.json), /metrics.

Every route declares the scope it needs; `Guard` checks the bearer token (401 when missing, unknown,
expired or revoked; 403 when its scope does not cover the call) and the token's rate limit (429 with
Retry-After) before the body is even validated. A refused request is answered 400 (404 for an unknown
channel, operation, payment or request) with `{"error", "kind"}`; a bad field 422 naming it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from channeld.api._tokens import AuthError, RateLimiter, Scope, TokenBook, TokenRecord, retry_after
from channeld.errors import ChanneldError
from channeld.node._channels import UnknownChannel
from channeld.node._invoices import UnknownRequest

if TYPE_CHECKING:
    from channeld.node import Node

# any request body larger is answered 413 before it is buffered: the largest legitimate one, a batch of
# 1,000 payments each with a maximal payment request string, is about 1.4 MB
MAX_BODY_BYTES = 2 * 1024 * 1024
_bearer = HTTPBearer(auto_error=False, description="a token from `channeld init` or `channeld token create`")


class NotFound(ChanneldError):
    """The named payment, request or webhook does not exist."""


class Guard:
    def __init__(self, book: TokenBook, limiter: RateLimiter) -> None:
        self.book = book
        self.limiter = limiter

    def admit(self, authorization: str | None, needed: Scope) -> TokenRecord:
        """The caller's token record; raises the HTTP error to answer instead."""
        record = self.check(authorization, needed)
        self.meter(record.id, 1)
        return record

    def check(self, authorization: str | None, needed: Scope) -> TokenRecord:
        """The caller's token record, the rate limit not yet taken (401/403 raised as HTTP errors)."""
        try:
            return self.book.check(authorization, needed)
        except AuthError as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            raise HTTPException(exc.status, detail=str(exc), headers=headers) from None

    def meter(self, token_id: str, requests: int) -> None:
        """Take `requests` from the token's rate limit, all or none (429 with Retry-After if it cannot)."""
        wait = self.limiter.take(token_id, time.monotonic(), requests)
        if wait > 0:
            raise HTTPException(429, detail="rate limit exceeded", headers={"Retry-After": retry_after(wait)})

    def need(self, scope: Scope, metered: bool = True) -> Callable[..., Any]:
        """The route dependency; unmetered routes take their own share of the rate limit (a batch)."""
        # async on purpose: FastAPI runs a plain `def` dependency in a worker thread, a thread hop per
        # request that serialised concurrent requests behind the GIL and the thread limiter
        async def dependency(request: Request,
                             _: HTTPAuthorizationCredentials | None = Security(_bearer)) -> TokenRecord:  # noqa: B008
            authorization = request.headers.get("authorization")
            return self.admit(authorization, scope) if metered else self.check(authorization, scope)

        return dependency


def status_of(exc: ChanneldError) -> int:
    unknown_operation = str(exc).startswith("no operation")  # _ops.operation's refusal
    if isinstance(exc, UnknownChannel | UnknownRequest | NotFound) or unknown_operation:
        return 404
    return 400


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ChanneldError)
    return JSONResponse({"error": str(exc), "kind": type(exc).__name__}, status_code=status_of(exc))


def create_app(node: Node, book: TokenBook | None = None, limiter: RateLimiter | None = None) -> FastAPI:
    from channeld.api._batchpay import register_batch_payments
    from channeld.api._dashboard import register_dashboard
    from channeld.api._fastpay import FastPayments
    from channeld.api._routes import Idempotency, register_routes
    from channeld.api._stream import register_stream
    from channeld.api._webhooks import WebhookService, register_webhooks

    book = book or TokenBook(node.datadir)
    limiter = limiter or RateLimiter(node.config.node.api_rate, node.config.node.api_burst)
    guard = Guard(book, limiter)
    app = FastAPI(title="channeld control API", version="1", docs_url=None, redoc_url=None, openapi_url=None,
                  max_body_size=MAX_BODY_BYTES)

    @app.get("/metrics", dependencies=[Depends(guard.need(Scope.READ))])
    async def metrics() -> Response:
        return Response(node.metrics.render(), media_type="text/plain; version=0.0.4")

    v1 = FastAPI(title="channeld control API", version="1", docs_url=None, redoc_url=None,
                 description="Local control API of a channeld node. See docs/api.md.")
    v1.add_exception_handler(ChanneldError, _refused)
    idempotency = Idempotency(node)
    register_batch_payments(v1, guard, idempotency)
    register_routes(v1, node, guard, idempotency)
    register_stream(v1, node, guard)
    webhooks = WebhookService(node)
    register_webhooks(v1, webhooks, guard)
    app.state.webhooks = webhooks
    app.mount("/api/v1", v1)
    register_dashboard(app, v1, node, guard)
    app.state.asgi = FastPayments(app, guard, idempotency)  # what the node serves (api/_fastpay.py)
    return app
