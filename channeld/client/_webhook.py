"""Webhook signatures: how the node signs a call and how a receiver checks it.

Each call carries `Channeld-Timestamp` (unix seconds) and `Channeld-Signature: v1=<hex>`, the
HMAC-SHA256, keyed with the webhook's secret, of `<timestamp>.<body>`. A receiver refuses a call whose
signature does not match (forged), whose timestamp is outside its tolerance (an old call replayed), or
whose event it has already taken (a recent call replayed): `WebhookVerifier` does all three.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from channeld.errors import PeerFault

TIMESTAMP_HEADER = "Channeld-Timestamp"
SIGNATURE_HEADER = "Channeld-Signature"
DEFAULT_TOLERANCE = 300.0
_REMEMBERED = 100_000


class WebhookRejected(PeerFault):
    """A webhook call that is unsigned, forged, too old, malformed or already seen."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    timestamp = int(time.time() if now is None else now)
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body),
            "Content-Type": "application/json"}


class WebhookVerifier:
    """Checks webhook calls for one secret; remembers the events it accepted to refuse replays."""

    def __init__(self, secret: str, tolerance: float = DEFAULT_TOLERANCE) -> None:
        self.secret = secret
        self.tolerance = tolerance
        self._seen: OrderedDict[int, None] = OrderedDict()

    def verify(self, headers: Mapping[str, str], body: bytes, now: float | None = None) -> dict[str, Any]:
        """The event a genuine, fresh, first-seen call carries; raise `WebhookRejected` otherwise."""
        lowered = {k.lower(): v for k, v in headers.items()}
        stamp, given = lowered.get(TIMESTAMP_HEADER.lower()), lowered.get(SIGNATURE_HEADER.lower())
        if stamp is None or given is None or not stamp.isdigit() or len(stamp) > 12:
            raise WebhookRejected("missing or malformed signature headers")
        if not hmac.compare_digest(sign(self.secret, int(stamp), body), given):
            raise WebhookRejected("signature does not match")
        current = time.time() if now is None else now
        if abs(current - int(stamp)) > self.tolerance:
            raise WebhookRejected(f"timestamp {stamp} is outside the {self.tolerance:.0f}s tolerance")
        event = json.loads(body)
        seq = event.get("seq") if isinstance(event, dict) else None
        if type(seq) is not int:
            raise WebhookRejected("the body is not an event")
        if seq in self._seen:
            raise WebhookRejected(f"event {seq} was already delivered (replay)")
        self._seen[seq] = None
        if len(self._seen) > _REMEMBERED:
            self._seen.popitem(last=False)
        return event
