"""The operator dashboard: its static page at `/`, one-time login links, and the few reads it needs.

`channeld dashboard` writes a login link (a random code whose sha256 names a file in
`dashboard-links/`, holding the scope and the link's expiry) and prints the page's URL with the code in
its fragment, so the code never reaches a server log or a proxy. The page posts the code to
`/api/v1/dashboard/login`; the node deletes the file (deleting succeeds once, so a link works once,
even against two racing requests) and mints an expiring token of the link's scope, which the page keeps
for its session. Everything else the page shows comes from the ordinary API and its event stream.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope as AsgiScope

from channeld.api._app import Guard
from channeld.api._history import anchored, balance_history, channel_trail
from channeld.api._models import channel_id_param
from channeld.api._tokens import Scope, TokenBook, TokenRecord
from channeld.errors import ConfigError

if TYPE_CHECKING:
    from channeld.node import Node

LINKS_DIR = "dashboard-links"
LINK_LIFETIME = 600.0  # seconds a printed login link stays usable
SESSION_LIFETIME = 12 * 3600.0  # seconds the token a link is exchanged for stays valid
STATIC_DIR = Path(__file__).parent / "static"
LATENCY_WINDOW = 3600.0
LATENCY_SPACING = 5.0  # at most one latency sample per this many seconds, however many pages poll
AUDIT_LIMIT = 500
_CODE = re.compile(r"[A-Za-z0-9_-]{43}")

# The page loads nothing from elsewhere; this keeps it so even if a value it shows carried markup.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
                               "style-src 'self'; script-src 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


# --- login links ---------------------------------------------------------------------------------------


def _link_path(datadir: Path, code: str) -> Path:
    return Path(datadir) / LINKS_DIR / hashlib.sha256(code.encode()).hexdigest()


def create_login_link(datadir: Path, scope: Scope, lifetime: float = LINK_LIFETIME,
                      session: float = SESSION_LIFETIME) -> str:
    """Write a one-time login link for `scope`; return its code (shown once, stored only hashed)."""
    if lifetime <= 0 or session <= 0:
        raise ConfigError("a login link's lifetime and its session's must be positive")
    folder = Path(datadir) / LINKS_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    _forget_expired(folder, time.time())
    code = secrets.token_urlsafe(32)
    record = {"scope": scope.name.lower(), "expires": time.time() + lifetime, "session": session}
    fd = os.open(_link_path(datadir, code), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(record, out)
    return code


def _forget_expired(folder: Path, now: float) -> None:
    for path in folder.iterdir():
        try:
            if json.loads(path.read_text())["expires"] <= now:
                path.unlink()
        except (OSError, ValueError, KeyError, TypeError):
            continue


class LoginRefused(HTTPException):
    def __init__(self) -> None:
        super().__init__(401, detail="this login link is unknown, used or expired: "
                                     "run `channeld dashboard` for a new one")


def redeem_login_code(datadir: Path, code: str, now: float | None = None) -> dict[str, Any]:
    """Spend a login code: a fresh token of its scope, or `LoginRefused` (nothing changes then)."""
    if not _CODE.fullmatch(code):
        raise LoginRefused()
    path = _link_path(datadir, code)
    try:
        record = json.loads(path.read_text())
        path.unlink()  # only one of two racing redeemers gets past this line
        scope, expires = Scope.parse(record["scope"]), float(record["expires"])
        session = float(record["session"])
    except (OSError, ValueError, KeyError, TypeError, ConfigError):
        raise LoginRefused() from None
    if (time.time() if now is None else now) >= expires:
        raise LoginRefused()
    token, minted = TokenBook(datadir).create(scope, "dashboard login", session)
    return {"token": token, "scope": minted.scope.name.lower(), "expires": minted.expires}


class LoginBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=100)


# --- reads the page needs beyond the ordinary API --------------------------------------------------------


class LatencySamples:
    """The node's payment-latency histogram sampled over the last hour, so the page can chart it."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.samples: deque[tuple[float, float, float]] = deque()

    def take(self, now: float) -> list[dict[str, float]]:
        registry = self.node.metrics.registry
        count = registry.get_sample_value("channeld_payment_latency_seconds_count") or 0.0
        total = registry.get_sample_value("channeld_payment_latency_seconds_sum") or 0.0
        if not self.samples or now - self.samples[-1][0] >= LATENCY_SPACING:
            self.samples.append((now, count, total))
        while self.samples and now - self.samples[0][0] > LATENCY_WINDOW:
            self.samples.popleft()
        return [{"at": t, "count": c, "sum": s} for t, c, s in self.samples]


async def summary(node: Node, latency: LatencySamples) -> dict[str, Any]:
    head = node.watcher.head
    onchain = await node.chain.run(node.chain.backend.balance, node.key.address)
    return {"chain_head": head, "follower_block": node.watcher.follower.cursor.position.number,
            "onchain_balance": str(onchain), "latency": latency.take(time.time()),
            "disputes": _disputes(node), "pending_transactions": node.worker.pending_count(),
            "event_seq": node.bus.last_seq}


def _disputes(node: Node) -> int:
    """Proofs this node put on chain against a partner's close (its watchtowers report their own)."""
    return sum(1 for e in node.worker.operations.values() if e.kind == "update" and e.status == "mined")


async def channel_audit(node: Node, channel_id: str) -> list[dict[str, Any]]:
    """The channel's audit trail (its newest `AUDIT_LIMIT` entries, oldest first), each entry with both
    balances after it, replayed from the channel's opening deposits; the log is read newest first in a
    thread, over a bounded number of entries (see `_history`)."""
    cid = channel_id_param(channel_id)
    state = node.channels.entry(cid).state
    entries, whole = await trio.to_thread.run_sync(channel_trail, node.store.iter_audit_newest(), cid)
    history = balance_history(entries, state.our.address, state.our.deposit, state.partner.deposit)
    if not whole:
        history = anchored(history, state.our_balance(), state.partner_balance())
    return history[-AUDIT_LIMIT:]


# --- serving -----------------------------------------------------------------------------------------


class DashboardFiles(StaticFiles):
    """The page's files, with headers that keep it self-contained."""

    async def get_response(self, path: str, scope: AsgiScope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def register_dashboard(app: FastAPI, v1: FastAPI, node: Node, guard: Guard) -> None:
    """Add the dashboard's routes to `v1` and its page at `/` (mounted last: it answers what is left)."""
    latency = LatencySamples(node)
    read = [Depends(guard.need(Scope.READ))]

    @v1.post("/dashboard/login")
    async def login(body: LoginBody) -> dict[str, Any]:
        return redeem_login_code(node.datadir, body.code)

    @v1.get("/dashboard/whoami")
    async def whoami(record: TokenRecord = Depends(guard.need(Scope.READ))) -> dict[str, Any]:  # noqa: B008
        return {"scope": record.scope.name.lower(), "expires": record.expires, "label": record.label}

    @v1.get("/dashboard/summary", dependencies=read)
    async def dashboard_summary() -> dict[str, Any]:
        return await summary(node, latency)

    @v1.get("/dashboard/channels/{channel_id}/audit", dependencies=read)
    async def audit(channel_id: str) -> list[dict[str, Any]]:
        return await channel_audit(node, channel_id)

    app.mount("/", DashboardFiles(directory=STATIC_DIR, html=True), name="dashboard")
