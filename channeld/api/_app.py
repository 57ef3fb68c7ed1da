"""The control API (minimal): FastAPI under /api/v1 with a bearer token, plus /metrics.

Bodies are validated by pydantic: amounts are decimal strings below 2**256 (a float would round), ids
are 0x-hex of the right length; a bad field is answered 422 naming it, a refused request 400 (404 for an
unknown channel or operation), a missing or wrong token 401. Long on-chain operations answer 202 with an
operation id and, once sent, a transaction hash, pollable at /api/v1/operations/{id}.
"""

from __future__ import annotations

import hmac
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, BaseModel, Field

from channeld.errors import ChanneldError
from channeld.node._channels import UnknownChannel
from channeld.node._onchain import OperationStatus
from channeld.node._ops import OperationRefused
from channeld.transport import BadPeerUri

if TYPE_CHECKING:
    from channeld.node import Node

_DIGITS = re.compile(r"[0-9]{1,78}")
_HEX32 = re.compile(r"0x[0-9a-fA-F]{64}")
_HEX20 = re.compile(r"0x[0-9a-fA-F]{40}")
_NODE_ID = re.compile(r"(0x)?[0-9a-fA-F]{66}")


def _amount(text: str) -> str:
    if not _DIGITS.fullmatch(text) or int(text) >= 2**256:
        raise ValueError("must be a decimal string of base units below 2**256")
    if int(text) == 0:
        raise ValueError("must be positive")
    return text


def _address(text: str) -> str:
    if not _HEX20.fullmatch(text):
        raise ValueError("must be a 0x-prefixed 20-byte hex address")
    return text


def _node_id(text: str) -> str:
    if not _NODE_ID.fullmatch(text):
        raise ValueError("must be a 33-byte compressed public key in hex")
    return text.removeprefix("0x")


Amount = Annotated[str, AfterValidator(_amount)]
Address = Annotated[str, AfterValidator(_address)]
NodeId = Annotated[str, AfterValidator(_node_id)]


class ConnectBody(BaseModel):
    uri: str = Field(max_length=300)


class OpenBody(BaseModel):
    uri: str = Field(max_length=300)
    deposit: Amount
    token: Address | None = None
    challenge_period: int = Field(default=3600, ge=1, lt=2**64)


class AmountBody(BaseModel):
    amount: Amount


class WithdrawBody(BaseModel):
    amount: Amount
    to: Address | None = None


class PayBody(BaseModel):
    node_id: NodeId
    amount: Amount


class CloseBody(BaseModel):
    force: bool = False


class PathBody(BaseModel):
    path: str = Field(min_length=1, max_length=4096)


def _channel_id(text: str) -> bytes:
    if not _HEX32.fullmatch(text):
        detail = [{"loc": ["path", "channel_id"], "msg": "must be 0x-hex of 32 bytes"}]
        raise HTTPException(422, detail=detail)
    return bytes.fromhex(text[2:])


def _accepted(status: OperationStatus | None, waiting: str) -> JSONResponse:
    if status is None:
        return JSONResponse({"status": waiting, "operation_id": None, "tx_hash": None}, status_code=202)
    return JSONResponse(status.as_json(), status_code=202)


def create_app(node: Node, token: str) -> FastAPI:
    app = FastAPI(title="channeld control API", version="1", docs_url=None, redoc_url=None)
    expected = f"Bearer {token}".encode()

    def authorised(request: Request) -> None:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            raise HTTPException(401, detail="missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(ChanneldError)
    async def refused(request: Request, exc: ChanneldError) -> JSONResponse:
        code = 404 if isinstance(exc, UnknownChannel) or "no operation" in str(exc) else 400
        return JSONResponse({"error": str(exc), "kind": type(exc).__name__}, status_code=code)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(node.metrics.render(), media_type="text/plain; version=0.0.4")

    v1 = FastAPI()  # mounted below so that every /api/v1 route shares the token check
    _routes(v1, node)
    v1.add_exception_handler(ChanneldError, refused)  # type: ignore[arg-type]
    app.mount("/api/v1", v1)
    v1.router.dependencies.append(Depends(authorised))
    return app


def _routes(api: FastAPI, node: Node) -> None:
    @api.get("/info")
    async def info() -> dict[str, Any]:
        return node.info()

    @api.post("/peers")
    async def connect(body: ConnectBody) -> dict[str, Any]:
        try:
            node_id = await node.connect(body.uri)
        except BadPeerUri as exc:
            raise HTTPException(422, detail=[{"loc": ["body", "uri"], "msg": str(exc)}]) from None
        return {"node_id": node_id.hex(), "connected": True}

    @api.get("/channels")
    async def channels() -> list[dict[str, Any]]:
        return node.list_channels()

    @api.get("/channels/{channel_id}")
    async def channel(channel_id: str) -> dict[str, Any]:
        return node.channel(_channel_id(channel_id))

    @api.post("/channels")
    async def open_channel(body: OpenBody) -> JSONResponse:
        try:
            status = await node.open_channel(body.uri, int(body.deposit), body.token, body.challenge_period)
        except BadPeerUri as exc:
            raise HTTPException(422, detail=[{"loc": ["body", "uri"], "msg": str(exc)}]) from None
        return _accepted(status, "queued")

    @api.post("/channels/{channel_id}/deposit")
    async def deposit(channel_id: str, body: AmountBody) -> JSONResponse:
        return _accepted(await node.deposit(_channel_id(channel_id), int(body.amount)), "queued")

    @api.post("/channels/{channel_id}/withdraw")
    async def withdraw(channel_id: str, body: WithdrawBody) -> JSONResponse:
        status = await node.withdraw(_channel_id(channel_id), int(body.amount), body.to)
        return _accepted(status, "awaiting_partner")

    @api.post("/channels/{channel_id}/close")
    async def close(channel_id: str, body: CloseBody) -> JSONResponse:
        return _accepted(await node.close(_channel_id(channel_id), body.force), "awaiting_partner")

    @api.post("/channels/{channel_id}/settle")
    async def settle(channel_id: str) -> JSONResponse:
        return _accepted(await node.settle(_channel_id(channel_id)), "queued")

    @api.post("/payments")
    async def pay(body: PayBody) -> dict[str, Any]:
        return await node.pay(bytes.fromhex(body.node_id), int(body.amount))

    @api.get("/payments")
    async def payments(limit: int = 100) -> list[dict[str, Any]]:
        return node.list_payments(max(1, min(limit, 10_000)))

    @api.get("/operations/{operation_id}")
    async def operation(operation_id: int) -> dict[str, Any]:
        return node.operation(operation_id).as_json()

    @api.post("/backup")
    async def backup(body: PathBody) -> dict[str, Any]:
        return {"path": body.path, "records": await node.backup(Path(body.path))}

    @api.get("/audit/verify")
    async def audit_verify() -> dict[str, Any]:
        return node.audit_verify()

    @api.post("/audit/export")
    async def audit_export(body: PathBody) -> dict[str, Any]:
        return {"path": body.path, "entries": await node.audit_export(Path(body.path))}


__all__ = ["OperationRefused", "create_app"]
