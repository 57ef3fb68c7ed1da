"""Live events: a WebSocket (`/api/v1/events/ws`) and Server-Sent Events (`/api/v1/events`).

A client passes the last sequence number it saw (`?after=N`, or SSE's `Last-Event-ID`) and first gets
every journaled event after it, then live ones, in order and without gaps: the subscription is opened
before the backlog is read, and a live event that shows a gap (a subscriber that fell behind) sends the
feed back to the journal for what was skipped. So nothing is lost across a disconnect or a node restart.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import trio
from fastapi import Depends, FastAPI, Header, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from starlette.websockets import WebSocketState

from channeld.api._app import Guard
from channeld.api._models import U63
from channeld.api._tokens import Scope

if TYPE_CHECKING:
    from channeld.node import Node

HEARTBEAT = 15.0
BACKLOG_CHUNK = 500


async def event_feed(node: Node, after: int, heartbeat: float = HEARTBEAT
                     ) -> AsyncIterator[dict[str, Any] | None]:
    """Every event with a sequence number above `after`, journaled ones first, then live, forever;
    None after each `heartbeat` seconds without one (so a writer notices a client that left)."""
    last = after
    with node.bus.subscribe(buffer=4096) as live:
        while backlog := node.journal.events_after(last, BACKLOG_CHUNK):
            for stored in backlog:
                last = stored["seq"]
                yield stored
        while True:
            found = None
            with trio.move_on_after(heartbeat):
                found = await live.receive()
            if found is None:
                yield None
                continue
            event = found
            if event.seq <= last:
                continue
            if event.seq > last + 1:  # fell behind the bus: what was skipped is in the journal
                for missed in node.journal.events_after(last, event.seq - last - 1):
                    last = missed["seq"]
                    yield missed
            last = event.seq
            yield event.as_json()


def register_stream(api: FastAPI, node: Node, guard: Guard) -> None:
    @api.get("/events", dependencies=[Depends(guard.need(Scope.READ))], response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}}}})
    async def sse(after: int | None = Query(default=None, ge=0, lt=U63),
                  last_event_id: str | None = Header(default=None, max_length=20,
                                                     pattern=r"^[0-9]{1,19}$")) -> StreamingResponse:
        start = after if after is not None else int(last_event_id or 0)
        return StreamingResponse(_sse_lines(node, start), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @api.websocket("/events/ws")
    async def websocket(socket: WebSocket, after: int = 0, access_token: str | None = None) -> None:
        header = socket.headers.get("authorization") or (f"Bearer {access_token}" if access_token else None)
        try:
            guard.admit(header, Scope.READ)
        except Exception as exc:  # HTTPException: refuse the upgrade with a policy-violation close
            await socket.close(code=1008, reason=str(getattr(exc, "detail", exc))[:100])
            return
        if not 0 <= after < U63:
            await socket.close(code=1008, reason="after must be 0 to 2**63-1")
            return
        await socket.accept()
        await _send_feed(node, socket, after)


async def _send_feed(node: Node, socket: WebSocket, after: int) -> None:
    async with trio.open_nursery() as nursery:
        async def watch_close() -> None:
            try:
                while True:
                    await socket.receive_text()  # clients need not send; this notices them leaving
            except (WebSocketDisconnect, RuntimeError):
                nursery.cancel_scope.cancel()

        nursery.start_soon(watch_close)
        try:
            async for event in event_feed(node, after):
                if event is not None:
                    await socket.send_text(json.dumps(event))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            nursery.cancel_scope.cancel()
    if socket.application_state is WebSocketState.CONNECTED:
        await socket.close()


async def _sse_lines(node: Node, after: int) -> AsyncIterator[str]:
    async for event in event_feed(node, after):
        if event is None:
            yield ": keep-alive\n\n"
        else:
            yield f"id: {event['seq']}\nevent: {event['kind']}\ndata: {json.dumps(event)}\n\n"
