"""A read-only status endpoint (`--api HOST:PORT`): `GET /status` answers the tower's statistics as JSON.

It tells nothing about any channel or client, only counts, so it is safe to expose to a monitor.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

if TYPE_CHECKING:
    from channeld.watchtower._service import Watchtower

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def status_app(tower: Watchtower) -> Callable[[dict[str, Any], Receive, Send], Awaitable[None]]:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan and websocket scopes: nothing to set up, nothing served
        if scope["method"] == "GET" and scope["path"] == "/status":
            status, body = 200, dataclasses.asdict(tower.statistics())
            body["node_id"] = tower.node_id.hex()
            body["chain_id"] = tower.chain_id
            body["contract"] = "0x" + tower.contract.hex()
        else:
            status, body = 404, {"error": "only GET /status is served"}
        payload = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    return app


async def serve_status(tower: Watchtower, host: str, port: int,
                       task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    await serve(status_app(tower), config, task_status=task_status)  # type: ignore[arg-type]
