"""A session: one initialised connection to one peer, with keep-alive and bounded queues.

After the handshake each side's first message is `Init`. Then three tasks run per session: a reader
(decodes, answers `Ping`, enforces the idle timeout, fills the receive queue), a writer (drains the send
queue to the socket) and a pinger. The first of them to fail ends the session and records why.
"""

from __future__ import annotations

import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from channeld.errors import PeerFault
from channeld.transport._connection import PeerConnection
from channeld.transport._errors import (
    ConnectionClosed,
    PayloadError,
    PeerTimeout,
    SendQueueFull,
    TransportError,
)
from channeld.transport._faults import CutPoint, FaultPlan
from channeld.wire import ZERO32, DecodeError, Error, Init, Message, Ping, Pong, decode, encode

log = logging.getLogger("channeld.transport")

# The largest pong we agree to send; a ping asking for more gets no answer (as BOLT 1 does).
MAX_PONG_LENGTH = 65000
# The most queued messages written with one socket write.
WRITE_BATCH = 256


class ErrorCode(enum.IntEnum):
    """`Error.code` values the transport sends on the connection-wide channel id (all zeros)."""

    MALFORMED_MESSAGE = 1
    INIT_EXPECTED = 2
    UNEXPECTED_INIT = 3


@dataclass(frozen=True, slots=True)
class SessionStatistics:
    messages_sent: int
    messages_received: int
    send_queue: int
    receive_queue: int
    pings_sent: int
    pongs_received: int


class Session:
    """Send and receive `channeld.wire` messages with one peer. Build with `establish_session`."""

    def __init__(self, connection: PeerConnection, remote_init: Init,
                 faults: FaultPlan | None = None) -> None:
        limits = connection.limits
        self.faults = faults  # tests only (see _faults.py); None in every real node
        self.connection = connection
        self.node_id = connection.remote_node_id
        self.remote_init = remote_init
        self.close_reason: BaseException | None = None
        self._send_in, self._send_out = trio.open_memory_channel[bytes](limits.send_queue_size)
        self._recv_in, self._recv_out = trio.open_memory_channel[Message](limits.receive_queue_size)
        self._closed = trio.Event()
        self._cancel = trio.CancelScope()
        self._pings = self._pongs = 0

    def __repr__(self) -> str:
        return f"<Session {self.node_id.hex()[:16]}… at {self.connection.peer_address}>"

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def statistics(self) -> SessionStatistics:
        stats = self.connection.statistics()
        return SessionStatistics(
            stats.messages_sent, stats.messages_received,
            self._send_out.statistics().current_buffer_used,
            self._recv_out.statistics().current_buffer_used, self._pings, self._pongs,
        )

    async def send(self, message: Message) -> None:
        """Queue `message`; waits while the send queue is full. Raises `ConnectionClosed` once closed."""
        data = encode(message)
        try:
            await self._send_in.send(data)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise ConnectionClosed(f"{self!r} is closed") from self.close_reason

    def send_nowait(self, message: Message) -> None:
        """Queue `message` or raise `SendQueueFull` at once."""
        data = encode(message)
        try:
            self._send_in.send_nowait(data)
        except trio.WouldBlock:
            raise SendQueueFull(f"send queue to {self!r} is full") from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise ConnectionClosed(f"{self!r} is closed") from self.close_reason

    async def receive(self) -> Message:
        """The next message from the peer (never Ping/Pong). Raises `ConnectionClosed` at the end."""
        try:
            # a message already queued is taken without a scheduling round trip (the reader queues a
            # whole burst at once); only an empty queue waits
            return self._recv_out.receive_nowait()
        except trio.WouldBlock:
            pass
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise ConnectionClosed(f"{self!r} ended: {self.close_reason}") from self.close_reason
        try:
            return await self._recv_out.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise ConnectionClosed(f"{self!r} ended: {self.close_reason}") from self.close_reason

    def __aiter__(self) -> Session:
        return self

    async def __anext__(self) -> Message:
        try:
            return await self.receive()
        except ConnectionClosed:
            raise StopAsyncIteration from None

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def close(self, reason: BaseException | None = None) -> None:
        """End the session (from any task); `run` returns promptly and the socket is closed."""
        if self.close_reason is None:
            self.close_reason = reason or ConnectionClosed("closed locally")
        self._cancel.cancel()

    async def run(self) -> None:
        """Serve the session until the peer leaves, a limit trips, or `close` is called."""
        try:
            with self._cancel:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._guard, self._read_loop)
                    nursery.start_soon(self._guard, self._write_loop)
                    nursery.start_soon(self._guard, self._ping_loop)
        finally:
            self._recv_in.close()
            self._send_in.close()
            await self.connection.aclose()
            self._closed.set()

    async def _guard(self, loop: Callable[[], Awaitable[None]]) -> None:
        try:
            await loop()
        except TransportError as exc:
            self._record_failure(exc)
        except DecodeError as exc:
            self._record_failure(exc)
            await _send_error(self.connection, ErrorCode.MALFORMED_MESSAGE, str(exc))
        self.close()

    def _record_failure(self, exc: PeerFault) -> None:
        if isinstance(exc, ConnectionClosed) and self.connection.failure is not None:
            exc = self.connection.failure  # the close was our reaction to this
        if self.close_reason is None:
            self.close_reason = exc
            if not isinstance(exc, ConnectionClosed):
                log.info("dropping %r: %s", self, exc)

    async def _read_loop(self) -> None:
        idle = self.connection.limits.idle_timeout
        while True:
            # one idle scope and one receive per burst, not per message
            batch: list[bytes] = []
            with trio.move_on_after(idle):
                batch = await self.connection.receive_batch()
            if not batch:
                raise PeerTimeout(f"{self!r} was silent for {idle}s")
            for raw in batch:
                await self._dispatch(decode(raw))

    async def _dispatch(self, message: Message) -> None:
        if isinstance(message, Ping):
            if message.pong_length <= MAX_PONG_LENGTH:
                self._reply_pong(message.pong_length)
        elif isinstance(message, Pong):
            self._pongs += 1
        elif isinstance(message, Init):
            await _send_error(self.connection, ErrorCode.UNEXPECTED_INIT, "init sent twice")
            raise PayloadError("init sent twice")
        else:
            try:
                self._recv_in.send_nowait(message)
            except trio.WouldBlock:
                await self._recv_in.send(message)  # the queue is full: stop reading until it drains

    def _reply_pong(self, length: int) -> None:
        # A full send queue means traffic is flowing, which keeps the peer's idle timer alive anyway.
        with contextlib.suppress(trio.WouldBlock):
            self._send_in.send_nowait(encode(Pong(padding=bytes(length))))

    async def _write_loop(self) -> None:
        # Everything queued meanwhile goes out in one socket write: a burst of payments (or of their
        # acknowledgements) costs one syscall instead of one each.
        queued = self._send_out
        most = min(WRITE_BATCH, self.connection.limits.send_queue_size)  # memory stays bounded by the limits
        async for data in queued:
            if self.faults is not None:  # tests only; read per write so a plan can be armed mid-session
                await self._write_with_faults(data, self.faults)
                continue
            batch = [data]
            while len(batch) < most:
                try:
                    batch.append(queued.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break  # the rest waits for the next write, or the session is ending
            await self.connection.send_many(batch)

    async def _write_with_faults(self, data: bytes, faults: FaultPlan) -> None:
        # One message per write, so that a cut falls exactly between two messages.
        message = decode(data)
        faults.check(message, CutPoint.BEFORE_SEND)
        await self.connection.send(data)
        faults.check(message, CutPoint.AFTER_SEND)

    async def _ping_loop(self) -> None:
        ping = encode(Ping(pong_length=0, padding=b""))
        while True:
            await trio.sleep(self.connection.limits.ping_interval)
            try:
                self._send_in.send_nowait(ping)
                self._pings += 1
            except trio.WouldBlock:
                pass  # a full queue means traffic is flowing; the peer hears from us anyway


async def establish_session(connection: PeerConnection, local_init: Init,
                            faults: FaultPlan | None = None) -> Session:
    """Exchange `Init` within the handshake timeout; a peer that opens with anything else is dropped.

    `faults` (tests only) makes the session cut its connection where the plan says.
    """
    try:
        with trio.fail_after(connection.limits.handshake_timeout):
            first = decode(await _exchange_inits(connection, encode(local_init)))
    except trio.TooSlowError:
        await connection.aclose()
        raise PeerTimeout(f"{connection!r} sent no init within the handshake timeout") from None
    except DecodeError as exc:
        await _refuse(connection, ErrorCode.MALFORMED_MESSAGE, f"undecodable first message: {exc}")
        raise
    if not isinstance(first, Init):
        name = type(first).__name__
        await _refuse(connection, ErrorCode.INIT_EXPECTED, f"first message must be init, got {name}")
        raise PayloadError(f"{connection!r} opened with {name}, not init")
    return Session(connection, first, faults)


async def _exchange_inits(connection: PeerConnection, local_init: bytes) -> bytes:
    # Send and receive at once: if both sides only wrote first, full socket buffers could deadlock them.
    failures: list[TransportError] = []
    received: list[bytes] = []

    async def send_ours() -> None:
        try:
            await connection.send(local_init)
        except TransportError as exc:
            failures.append(exc)
            nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(send_ours)
        try:
            received.append(await connection.receive())
        except TransportError as exc:
            failures.append(exc)
            nursery.cancel_scope.cancel()
    if failures:
        raise failures[0]
    return received[0]


async def _send_error(connection: PeerConnection, code: ErrorCode, text: str) -> None:
    """Best effort, written directly: the peer is being dropped and our writer may be gone already."""
    with trio.move_on_after(1.0), contextlib.suppress(TransportError):
        clipped = text.encode("utf-8", "replace")[:1024].decode("utf-8", "ignore")
        await connection.send(encode(Error(channel_id=ZERO32, code=int(code), text=clipped)))


async def _refuse(connection: PeerConnection, code: ErrorCode, text: str) -> None:
    await _send_error(connection, code, text)
    await connection.aclose()
