"""The local control API: FastAPI on hypercorn's trio worker (see `_app.py` for the routes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from channeld.api._app import create_app
from channeld.keys import read_api_token

if TYPE_CHECKING:
    from channeld.node import Node


async def serve_api(node: Node, host: str, port: int,
                    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the node's API until cancelled; reports the bound port."""
    app = create_app(node, read_api_token(node.datadir))
    config = HypercornConfig()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    async with trio.open_nursery() as nursery:
        urls: list[str] = await nursery.start(_serve, app, config)
        task_status.started(int(urls[0].rsplit(":", 1)[1]))


async def _serve(app: object, config: HypercornConfig, task_status: trio.TaskStatus[list[str]]) -> None:
    await serve(app, config, shutdown_trigger=trio.sleep_forever, task_status=task_status)  # type: ignore[arg-type]


__all__ = ["create_app", "serve_api"]
