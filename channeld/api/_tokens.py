"""API tokens: the admin token `channeld init` writes, scoped tokens made with `channeld token create`.

Scopes are ordered, each covering the ones before it: `read` (look), `invoice` (create payment requests,
register webhooks), `pay` (send money), `admin` (channels, peers, watchtowers, backups). Only a token's
sha256 is stored (`api-tokens.json`, mode 0600, next to the admin token file); the token itself is shown
once, when it is made. The running node re-reads the file when it changes, so `token create` and
`token revoke` take effect at once without a restart. Rate limiting is a token bucket per token.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import os
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from channeld.errors import ChanneldError, ConfigError
from channeld.keys import read_api_token

TOKENS_FILE = "api-tokens.json"
TOKEN_PREFIX = "chd_"
ADMIN_ID = "admin"


class Scope(enum.IntEnum):
    READ = 0
    INVOICE = 1
    PAY = 2
    ADMIN = 3

    @classmethod
    def parse(cls, text: str) -> Scope:
        try:
            return cls[text.upper()]
        except KeyError:
            raise ConfigError(f"scope {text!r} is not one of read, invoice, pay, admin") from None


class AuthError(ChanneldError):
    """A request's token is missing, unknown, expired or revoked (401), or lacks the scope (403)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: str
    hash: str
    scope: Scope
    label: str
    created: float
    expires: float | None = None
    revoked: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "hash": self.hash, "scope": self.scope.name.lower(), "label": self.label,
                "created": self.created, "expires": self.expires, "revoked": self.revoked}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> TokenRecord:
        return cls(str(raw["id"]), str(raw["hash"]), Scope.parse(str(raw["scope"])), str(raw["label"]),
                   float(raw["created"]), None if raw["expires"] is None else float(raw["expires"]),
                   bool(raw["revoked"]))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenBook:
    """The data directory's tokens, as the running node checks them and the CLI edits them."""

    def __init__(self, datadir: Path) -> None:
        self.path = Path(datadir) / TOKENS_FILE
        self._admin_hash = token_hash(read_api_token(Path(datadir)))
        self._stamp: tuple[int, int] | None = None
        self._records: dict[str, TokenRecord] = {}

    # --- checking ------------------------------------------------------------------------------------

    def check(self, authorization: str | None, needed: Scope, now: float | None = None) -> TokenRecord:
        """The token record for an `Authorization` header value that may do `needed`; raises `AuthError`."""
        if not authorization or not authorization.startswith("Bearer "):
            raise AuthError(401, "missing bearer token")
        digest = token_hash(authorization.removeprefix("Bearer ").strip())
        record = self._lookup(digest)
        if record is None:
            raise AuthError(401, "unknown bearer token")
        if record.revoked:
            raise AuthError(401, "the token was revoked")
        if record.expires is not None and (time.time() if now is None else now) >= record.expires:
            raise AuthError(401, "the token has expired")
        if record.scope < needed:
            raise AuthError(403, f"the token's scope {record.scope.name.lower()} does not cover "
                                 f"{needed.name.lower()}")
        return record

    def _lookup(self, digest: str) -> TokenRecord | None:
        if secrets.compare_digest(digest, self._admin_hash):
            return TokenRecord(ADMIN_ID, digest, Scope.ADMIN, "admin token (api-token file)", 0.0)
        self._reload()
        for record in self._records.values():
            if secrets.compare_digest(digest, record.hash):
                return record
        return None

    def _reload(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._records, self._stamp = {}, None
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._records = self._read()
            self._stamp = stamp

    def _read(self) -> dict[str, TokenRecord]:
        try:
            document = json.loads(self.path.read_text())
            return {r["id"]: TokenRecord.from_json(r) for r in document["tokens"]}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{self.path} is unreadable or malformed: {exc}") from None

    # --- editing (the CLI) ---------------------------------------------------------------------------

    def create(self, scope: Scope, label: str = "",
               expires_in: float | None = None) -> tuple[str, TokenRecord]:
        """Make a token; return it (shown once, never stored) and its record."""
        if expires_in is not None and expires_in <= 0:
            raise ConfigError("--expires must be positive")
        records = self._read()
        token_id = secrets.token_hex(4)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_hex(24)}"
        now = time.time()
        record = TokenRecord(token_id, token_hash(token), scope, label[:100], now,
                             None if expires_in is None else now + expires_in)
        records[token_id] = record
        self._write(records)
        return token, record

    def revoke(self, token_id: str) -> TokenRecord:
        records = self._read()
        if token_id not in records:
            raise ConfigError(f"no token {token_id!r} (the admin token is replaced by `channeld init`)")
        records[token_id] = replace(records[token_id], revoked=True)
        self._write(records)
        return records[token_id]

    def list(self) -> list[TokenRecord]:
        return list(self._read().values())

    def _write(self, records: dict[str, TokenRecord]) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"tokens": [r.as_json() for r in records.values()]}, out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.path)


class RateLimiter:
    """A token bucket per API token: `rate` requests a second on average, `burst` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, now: float, cost: int = 1) -> float:
        """0 if `cost` requests may go now (and they are taken), else the seconds to wait for them."""
        level, last = self._buckets.get(key, (float(self.burst), now))
        level = min(float(self.burst), level + (now - last) * self.rate)
        if level < cost:
            self._buckets[key] = (level, now)
            return (cost - level) / self.rate
        self._buckets[key] = (level - cost, now)
        return 0.0


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
