"""Two real daemons (separate processes) on a real anvil, with a channel between them, for tests/api.

Session-scoped: starting daemons and opening a channel costs seconds, so every API test shares one
pair and makes its own payments, requests, tokens and webhooks (distinct ids keep them apart).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from channeld.api._tokens import Scope, TokenBook
from tests.node.helpers import Daemon, Zygote, deploy_hub, make_daemon, open_channel, wait_until
from tests.tools import Anvil

ETH = 10**18
RATE, BURST = 10, 100  # daemon A's API rate limit per token (B keeps the defaults)


class Api:
    """An HTTP client for one daemon's /api/v1 with a given token."""

    def __init__(self, daemon: Daemon, token: str | None) -> None:
        self.daemon = daemon
        self.root = f"http://127.0.0.1:{daemon.api}"
        self.base = self.root + "/api/v1"
        self.token = token
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        self.http = httpx.Client(base_url=self.base, headers=headers, timeout=30.0)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.http.post(path, json=body, **kw)

    def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = self.http.request(method, path, json=body)
        assert response.status_code == status, (response.status_code, response.text)
        return response.json()

    def with_scope(self, scope: str, expires_in: float | None = None) -> Api:
        token, _ = TokenBook(self.daemon.datadir).create(Scope.parse(scope), f"test {scope}", expires_in)
        return Api(self.daemon, token)


class Network:
    def __init__(self, anvil: Anvil, a: Daemon, b: Daemon, channel_id: str) -> None:
        self.anvil = anvil
        self.a, self.b = a, b
        self.channel_id = channel_id
        self.api_a = Api(a, a.client().token)
        self.api_b = Api(b, b.client().token)


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    root: Path = tmp_path_factory.mktemp("apinet")
    anvil = Anvil()
    zygote = Zygote()
    try:
        contract = deploy_hub(anvil)
        a = make_daemon(root, "a", anvil, contract, zygote)
        (a.datadir / "channeld.toml").write_text(f"[node]\napi_rate = {RATE}\napi_burst = {BURST}\n")
        b = make_daemon(root, "b", anvil, contract, zygote)
        a.start()
        b.start()
        cid = open_channel(a, b, 10 * ETH)
        b.call("POST", f"/channels/{cid}/deposit", {"amount": str(5 * ETH)})
        wait_until(lambda: a.channel()["partner_deposit"] == b.channel()["our_deposit"] == str(5 * ETH),
                   what="B's deposit, seen by both")
        yield Network(anvil, a, b, cid)
    finally:
        zygote.stop()
        anvil.stop()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
