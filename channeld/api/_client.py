"""The CLI's side of the control API: find the running node, call it with the bearer token, map errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from channeld.errors import ChanneldError, LocalFault
from channeld.keys import read_api_token

RUNTIME_FILE = "node.json"


class ApiError(ChanneldError):
    """The node refused a request (the message is the node's own), or could not be reached."""


class NodeNotRunning(LocalFault):
    """No node answers for this data directory."""


def _runtime(datadir: Path) -> dict[str, Any]:
    path = Path(datadir) / RUNTIME_FILE
    try:
        document = json.loads(path.read_text())
        str(document["api"])
    except (OSError, ValueError, KeyError, TypeError):
        raise NodeNotRunning(f"no running node for {datadir}: start one with `channeld node`") from None
    return dict(document)


def api_url(datadir: Path) -> str:
    return str(_runtime(datadir)["api"])


class ApiClient:
    def __init__(self, datadir: Path, timeout: float = 60.0) -> None:
        runtime = _runtime(datadir)
        self.base = str(runtime["api"]) + "/api/v1"
        # A node serving TLS with its own certificate: trust exactly that certificate.
        self.verify: str | bool = str(runtime["tls_cert"]) if runtime.get("tls_cert") else True
        self.token = read_api_token(Path(datadir))
        self.timeout = timeout

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            response = httpx.request(method, self.base + path, json=body, headers=headers,
                                     timeout=self.timeout, verify=self.verify)
        except httpx.HTTPError as exc:
            raise NodeNotRunning(f"the node's API at {self.base} does not answer: {exc}") from None
        if response.status_code >= 400:
            raise ApiError(_error_text(response))
        return response.json()


def _error_text(response: httpx.Response) -> str:
    try:
        document = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(document, dict) and "error" in document:
        return str(document["error"])
    detail = document.get("detail") if isinstance(document, dict) else None
    if isinstance(detail, list):
        parts = []
        for item in detail:
            loc = ".".join(str(p) for p in item.get("loc", [])[1:]) or "request"
            parts.append(f"{loc}: {item.get('msg')}")
        return "; ".join(parts)
    return str(detail or f"HTTP {response.status_code}")
