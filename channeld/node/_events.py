"""The in-process event bus: every user-visible happening, numbered, fanned out to subscribers.

Subscribers (the API's long polls, metrics, tests) get a bounded memory channel; one that falls behind
loses events rather than slowing the payment path, and learns it from the gap in sequence numbers.
The durable record of every balance change is the store's audit log; the bus is its live view.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import trio

RECENT_EVENTS = 1024


@dataclass(frozen=True, slots=True)
class NodeEvent:
    seq: int
    kind: str
    channel_id: bytes | None
    data: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "at": self.at,
                "channel_id": None if self.channel_id is None else "0x" + self.channel_id.hex(),
                **self.data}


class EventBus:
    def __init__(self) -> None:
        self._seq = 0
        self._subscribers: list[trio.MemorySendChannel[NodeEvent]] = []
        self.recent: deque[NodeEvent] = deque(maxlen=RECENT_EVENTS)
        # Called with every event after subscribers got it (the journal, payment requests, towers); an
        # event a sink publishes is therefore numbered and delivered after the one that caused it.
        self.sinks: list[Callable[[NodeEvent], None]] = []

    @property
    def last_seq(self) -> int:
        return self._seq

    def resume_after(self, seq: int) -> None:
        """Continue numbering after `seq` (the last event a previous run journaled)."""
        if seq < self._seq:
            raise ValueError(f"cannot number events from {seq}: {self._seq} were already published")
        self._seq = seq

    def publish(self, kind: str, channel_id: bytes | None = None, **data: Any) -> NodeEvent:
        self._seq += 1
        event = NodeEvent(self._seq, kind, channel_id, data, time.time())
        self.recent.append(event)
        for channel in list(self._subscribers):
            try:
                channel.send_nowait(event)
            except trio.WouldBlock:
                pass  # a slow subscriber sees a gap in seq, never blocks the payment path
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                self._subscribers.remove(channel)
        for sink in self.sinks:
            sink(event)
        return event

    @contextmanager
    def subscribe(self, buffer: int = 1024) -> Iterator[trio.MemoryReceiveChannel[NodeEvent]]:
        send, receive = trio.open_memory_channel[NodeEvent](buffer)
        self._subscribers.append(send)
        try:
            yield receive
        finally:
            if send in self._subscribers:
                self._subscribers.remove(send)
            send.close()

    async def wait_for(self, kind: str, predicate: Any = None, timeout: float = 30.0) -> NodeEvent | None:
        """The next event of `kind` matching `predicate`, or None after `timeout` seconds."""
        with self.subscribe() as events, trio.move_on_after(timeout):
            async for event in events:
                if event.kind == kind and (predicate is None or predicate(event)):
                    return event
        return None
