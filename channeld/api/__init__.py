"""The control API: FastAPI on hypercorn's trio worker (routes in `_routes.py`, docs/api.md).

It binds to loopback by default; binding anywhere else needs `node.api_tls_cert` and `node.api_tls_key`
(the config refuses to start without them), and the node says at start which it serves.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from channeld.api import _routes, _stream, _webhooks  # noqa: F401  (loaded once, before any fork)
from channeld.api._app import create_app
from channeld.api._tokens import RateLimiter, Scope, TokenBook, TokenRecord
from channeld.config import is_loopback
from channeld.errors import ConfigError

if TYPE_CHECKING:
    from channeld.node import Node

log = logging.getLogger("channeld.api")


def hypercorn_config(node: Node, host: str, port: int) -> HypercornConfig:
    settings = node.config.node
    if settings.api_tls_cert is None and not is_loopback(host):
        raise ConfigError(f"the control API may bind to {host} only with TLS (node.api_tls_cert/api_tls_key)")
    config = HypercornConfig()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    if settings.api_tls_cert is not None:
        config.certfile = settings.api_tls_cert
        config.keyfile = settings.api_tls_key
    return config


async def serve_api(node: Node, host: str, port: int,
                    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the node's API (and deliver its webhooks) until cancelled; reports the bound port."""
    config = hypercorn_config(node, host, port)
    app = create_app(node)
    async with trio.open_nursery() as nursery:
        await nursery.start(app.state.webhooks.run)
        urls: list[str] = await nursery.start(_serve, app.state.asgi, config)
        bound = int(urls[0].rsplit(":", 1)[1])
        tls = "with TLS" if config.ssl_enabled else "without TLS (loopback only)"
        log.info("control API on %s:%d %s", host, bound, tls)
        task_status.started(bound)


async def _serve(app: object, config: HypercornConfig, task_status: trio.TaskStatus[list[str]]) -> None:
    await serve(app, config, shutdown_trigger=trio.sleep_forever, task_status=task_status)  # type: ignore[arg-type]


__all__ = ["RateLimiter", "Scope", "TokenBook", "TokenRecord", "create_app", "hypercorn_config", "serve_api"]
