"""`POST /api/v1/payments` without FastAPI's per-request machinery: the control API's hot path.

Measured on the paying daemon (docs/performance.md, "Control API"): FastAPI's routing, dependency
solving, query parsing and middleware cost more CPU per payment than the payment itself. This ASGI
wrapper answers a payment request that passes every check itself, with the same checks in the same
order as the FastAPI route (bearer token and scope, JSON body, `PayBody`, idempotency key, then the rate
limit) and the same answers. Anything it does not accept as is (a bad token, a malformed body or header,
a rate-limited caller, a large body, any other route) goes to the FastAPI application unchanged, body
included, so every refusal is the one the route gives, with nothing recorded before it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException
from fastapi.encoders import jsonable_encoder
from pydantic import ValidationError

from channeld.api._app import status_of
from channeld.api._models import PayBody
from channeld.api._tokens import AuthError, Scope
from channeld.errors import ChanneldError

if TYPE_CHECKING:
    from channeld.api._app import Guard
    from channeld.api._routes import Idempotency

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Message, Receive, Send], Awaitable[None]]

PAYMENTS_PATH = "/api/v1/payments"
MAX_BODY = 16384  # a payment body is under 2 KiB; a larger one is the route's to refuse
MAX_KEY = 64  # the route's `Idempotency-Key` max_length
_WANTED = {b"authorization", b"content-type", b"idempotency-key"}


class Declined(Exception):
    """Internal: this request is the FastAPI route's to answer (nothing was recorded)."""


class FastPayments:
    """The ASGI application the node serves: payments here, everything else to `app`."""

    def __init__(self, app: Asgi, guard: Guard, idempotency: Idempotency) -> None:
        self.app = app
        self.guard = guard
        self.idempotency = idempotency

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PAYMENTS_PATH:
            await self.app(scope, receive, send)
            return
        body, complete = await _read_body(receive)
        try:
            if not complete:
                raise Declined
            caller, key, request = self._admit(scope, body)
        except Declined:
            await self.app(scope, _replay(body, complete, receive), send)
            return
        await self._pay(caller, key, request, send)

    def _admit(self, scope: Message, body: bytes) -> tuple[str, str | None, PayBody]:
        """The caller's token id, idempotency key and body, if the route would accept them as they are."""
        headers = _headers(scope)
        try:
            record = self.guard.book.check(headers.get(b"authorization"), Scope.PAY)
        except AuthError:
            raise Declined from None
        if _media_type(headers.get(b"content-type")) != "application/json":
            raise Declined
        try:
            request = PayBody.model_validate(json.loads(body))
        except (ValueError, ValidationError):  # ValidationError is a ValueError; both named for the reader
            raise Declined from None
        key = headers.get(b"idempotency-key")
        if key is not None and len(key) > MAX_KEY:
            raise Declined
        if self.guard.limiter.take(record.id, time.monotonic()) > 0:
            raise Declined  # the route answers 429 with Retry-After (a refused take consumes nothing)
        return record.id, key, request

    async def _pay(self, caller: str, key: str | None, request: PayBody, send: Send) -> None:
        try:
            result: Any = await self.idempotency.run(caller, key, request)
            status, headers = 200, None
        except HTTPException as exc:
            result, status, headers = {"detail": exc.detail}, exc.status_code, exc.headers
        except ChanneldError as exc:  # as the API's `_refused` handler answers it
            result, status, headers = {"error": str(exc), "kind": type(exc).__name__}, status_of(exc), None
        await _send_json(send, status, result, headers)


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The request body, and whether it is complete (False: larger than `MAX_BODY`, read so far)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False  # the client went away: let the route see it too
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > MAX_BODY:
            return b"".join(chunks), False


def _replay(body: bytes, complete: bool, receive: Receive) -> Receive:
    """A `receive` that yields the body already read, then whatever the client still sends."""
    replayed = False

    async def again() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": not complete}

    return again


def _headers(scope: Message) -> dict[bytes, str]:
    """The headers the payment route reads; a repeated one declines (the route picks one of them)."""
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in _WANTED:
            if name in found:
                raise Declined
            found[name] = value.decode("latin-1")  # as Starlette decodes them: any byte is valid
    return found


def _media_type(value: str | None) -> str | None:
    return None if value is None else value.split(";", 1)[0].strip().lower()


async def _send_json(send: Send, status: int, content: Any, headers: Mapping[str, str] | None) -> None:
    try:
        payload = _dumps(content)
    except (TypeError, ValueError):  # not plain JSON types: encode it as FastAPI would
        payload = _dumps(jsonable_encoder(content))
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


def _dumps(content: Any) -> bytes:
    # byte for byte what Starlette's JSONResponse renders
    text = json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
    return text.encode()
