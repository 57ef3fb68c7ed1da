"""`POST /api/v1/payments/batch`: many payments in one request, each answered as `POST /payments` would.

A shop paying out many recipients pays per HTTP request what the server costs (parsing, a task, routing,
two socket writes: most of the paying daemon's CPU per API payment, docs/performance.md), so a batch
spreads that over its items. Each item is a `POST /payments` body plus an optional `idempotency_key`
(the header's rules and scope: per calling token). The envelope (a JSON object with 1 to `MAX_ITEMS`
objects under `payments`) is checked first and refused whole (422); then the batch takes one rate-limit
token per item (429 with Retry-After, nothing paid, when the caller's bucket cannot cover them all);
then every item is validated and paid on its own, at most `WINDOW` at a time, and its `status` and
`body` are exactly the status and JSON body `POST /payments` would have answered for it alone (200 with
the payment's result; 400/404 refused; 409 key reused for another payment; 422 a bad field). An item
refused before paying leaves nothing behind, whatever the others do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio
from fastapi import Depends, FastAPI, HTTPException
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError

from channeld.api._app import Guard, status_of
from channeld.api._fastpay import _dumps as dumps  # byte for byte what JSONResponse renders
from channeld.api._models import IDEMPOTENCY_KEY, Body, PayBody, field_error
from channeld.api._tokens import Scope, TokenRecord
from channeld.errors import ChanneldError

if TYPE_CHECKING:
    from channeld.api._routes import Idempotency

MAX_ITEMS = 1000  # about 200 KB of JSON: large enough that the per-request cost vanishes
WINDOW = 64  # items of one batch in flight at once (the channel's own back-pressure is MAX_IN_FLIGHT)
KEY_FIELD = "idempotency_key"


class PayBatchBody(Body):
    """The envelope; each item is validated on its own, so one bad item refuses only itself."""

    payments: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ITEMS)


class PayItemAnswer(BaseModel):
    status: int  # what `POST /payments` would have answered for this item alone
    body: dict[str, Any]


class PayBatchAnswer(BaseModel):
    """The answer's shape, for the OpenAPI document (the route renders plain JSON itself)."""

    results: list[PayItemAnswer]
    accepted: int
    not_accepted: int


def take_items(guard: Guard, caller: str, count: int) -> None:
    """Take one rate-limit token per item, all or none; raises the 422/429 to answer instead."""
    if count > guard.limiter.burst:  # a bucket never holds more than its burst: say so, not "retry"
        raise field_error("body", "payments", f"this token may send at most {guard.limiter.burst} payments "
                                              "at once (node.api_burst)")
    guard.meter(caller, count)


async def pay_item(idempotency: Idempotency, caller: str, index: int, item: dict[str, Any]) -> dict[str, Any]:
    """One item's `{"status", "body"}`: what `POST /payments` answers for it."""
    fields = dict(item)
    key = fields.pop(KEY_FIELD, None)
    try:
        if key is not None and (not isinstance(key, str) or not IDEMPOTENCY_KEY.fullmatch(key)):
            raise HTTPException(422, detail=[{"loc": ["body", "payments", index, KEY_FIELD],
                                              "msg": "must be 1-64 characters of A-Z a-z 0-9 _ . : -",
                                              "type": "value_error"}])
        body = PayBody.model_validate(fields)
        result: Any = await idempotency.run(caller, key, body)
    except ValidationError as exc:
        errors = [{"loc": ["body", "payments", index, *e["loc"]], "msg": e["msg"], "type": e["type"]}
                  for e in exc.errors(include_url=False)]
        return {"status": 422, "body": {"detail": errors}}
    except HTTPException as exc:
        return {"status": exc.status_code, "body": {"detail": jsonable_encoder(exc.detail)}}
    except ChanneldError as exc:  # as the API's `_refused` handler answers it
        return {"status": status_of(exc), "body": {"error": str(exc), "kind": type(exc).__name__}}
    return {"status": 200, "body": result}


async def pay_batch(idempotency: Idempotency, caller: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    results: list[dict[str, Any]] = [{} for _ in items]
    pending = iter(range(len(items)))

    async def worker() -> None:
        # a few long-lived workers rather than a task per item: half the scheduling cost per payment
        for index in pending:
            results[index] = await pay_item(idempotency, caller, index, items[index])

    async with trio.open_nursery() as nursery:
        for _ in range(min(WINDOW, len(items))):
            nursery.start_soon(worker)
    accepted = sum(1 for r in results if r["status"] == 200 and r["body"].get("status") == "accepted")
    return {"results": results, "accepted": accepted, "not_accepted": len(items) - accepted}


def register_batch_payments(api: FastAPI, guard: Guard, idempotency: Idempotency) -> None:
    @api.post("/payments/batch", response_model=None, responses={200: {"model": PayBatchAnswer}})
    async def pay_many(body: PayBatchBody,
                       caller: TokenRecord = Depends(guard.need(Scope.PAY, metered=False))  # noqa: B008
                       ) -> Response:
        """Pay up to 1,000 payments; each item answered as `POST /payments` would answer it alone."""
        take_items(guard, caller.id, len(body.payments))
        answer = await pay_batch(idempotency, caller.id, body.payments)
        try:  # plain JSON types: skip FastAPI's generic encoder, ten times json.dumps' cost per item
            return Response(dumps(answer), media_type="application/json")
        except (TypeError, ValueError):
            return JSONResponse(jsonable_encoder(answer))
