"""Webhooks: registered URLs get every event by POST, in order, retried with backoff until acknowledged.

Each webhook's record (URL, secret, cursor = the last event acknowledged) is journaled, and the cursor is
synced after each acknowledgement, so a restart resumes where delivery stopped: an event is delivered
again only if the node died between the receiver's 2xx and that sync, and receivers drop a repeated
`seq` anyway (`channeld.client.WebhookVerifier`). Calls are signed as `channeld/client/_webhook.py` says.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

import httpx
import trio
from fastapi import Depends, FastAPI

from channeld.api._app import Guard, NotFound
from channeld.api._models import WebhookBody
from channeld.api._tokens import Scope
from channeld.client._webhook import signed_headers
from channeld.node._ops import OperationRefused

if TYPE_CHECKING:
    from channeld.node import Node

log = logging.getLogger("channeld.api.webhooks")

TABLE = "webhooks"
FIRST_RETRY = 0.25
LAST_RETRY = 60.0
CALL_TIMEOUT = 10.0
MAX_WEBHOOKS = 32


class WebhookService:
    def __init__(self, node: Node) -> None:
        self.node = node
        self._scopes: dict[str, trio.CancelScope] = {}
        self._nursery: trio.Nursery | None = None
        self.attempts = 0

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with httpx.AsyncClient(timeout=CALL_TIMEOUT) as client, trio.open_nursery() as nursery:
            self._client = client
            self._nursery = nursery
            for hook_id, _ in self.node.journal.items(TABLE):
                self._start(hook_id)
            task_status.started()
            await trio.sleep_forever()

    def add(self, url: str) -> dict[str, Any]:
        existing = list(self.node.journal.items(TABLE))
        if len(existing) >= MAX_WEBHOOKS:
            raise OperationRefused(f"at most {MAX_WEBHOOKS} webhooks")
        hook_id = secrets.token_hex(8)
        record = {"id": hook_id, "url": url, "secret": secrets.token_hex(32), "created": time.time(),
                  "cursor": self.node.journal.last_seq()}
        self.node.journal.put(TABLE, hook_id, record, sync=True)
        self._start(hook_id)
        return record

    def remove(self, hook_id: str) -> None:
        if self.node.journal.get(TABLE, hook_id) is None:
            raise NotFound(f"no webhook {hook_id}")
        self.node.journal.delete(TABLE, hook_id)
        scope = self._scopes.pop(hook_id, None)
        if scope is not None:
            scope.cancel()

    def list(self) -> list[dict[str, Any]]:
        records = self.node.journal.items(TABLE)
        return [{k: v for k, v in record.items() if k != "secret"} for _, record in records]

    def _start(self, hook_id: str) -> None:
        assert self._nursery is not None
        scope = self._scopes[hook_id] = trio.CancelScope()
        self._nursery.start_soon(self._deliver_forever, hook_id, scope)

    async def _deliver_forever(self, hook_id: str, scope: trio.CancelScope) -> None:
        with scope:
            while True:
                record = self.node.journal.get(TABLE, hook_id)
                if record is None:
                    return
                events = self.node.journal.events_after(int(record["cursor"]), 100)
                if not events:
                    await self._wait_for_event(int(record["cursor"]))
                    continue
                for event in events:
                    await self._deliver(record, event)
                    record = {**record, "cursor": event["seq"]}
                    self.node.journal.put(TABLE, hook_id, record, sync=True)

    async def _wait_for_event(self, cursor: int) -> None:
        with self.node.bus.subscribe(buffer=1) as live, trio.move_on_after(5.0):
            if self.node.journal.last_seq() > cursor:
                return
            await live.receive()

    async def _deliver(self, record: dict[str, Any], event: dict[str, Any]) -> None:
        """POST one event until the receiver answers 2xx."""
        delay = FIRST_RETRY
        body = json.dumps(event).encode()
        while True:
            self.attempts += 1
            try:
                response = await self._client.post(record["url"], content=body,
                                                   headers=signed_headers(record["secret"], body))
                if 200 <= response.status_code < 300:
                    return
                reason = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"
            log.info("webhook %s: event %d not acknowledged (%s); retry in %.2fs", record["id"],
                     event["seq"], reason, delay)
            await trio.sleep(delay)
            delay = min(delay * 2, LAST_RETRY)


def register_webhooks(api: FastAPI, service: WebhookService, guard: Guard) -> None:
    invoice = [Depends(guard.need(Scope.INVOICE))]

    @api.post("/webhooks", dependencies=invoice, status_code=201)
    async def add(body: WebhookBody) -> dict[str, Any]:
        """Register a URL; the answer carries its signing secret, shown only this once."""
        return service.add(body.url)

    @api.get("/webhooks", dependencies=invoice)
    async def webhooks() -> list[dict[str, Any]]:
        return service.list()

    @api.delete("/webhooks/{hook_id}", dependencies=invoice, status_code=204)
    async def remove(hook_id: str) -> None:
        service.remove(hook_id)
