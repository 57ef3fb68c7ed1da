"""An authenticated, encrypted connection to one peer over a trio byte stream.

The handshake and the framing are the sans-io objects of `_noise` and `_framing`; this module only moves
bytes, watches the clock, and enforces the per-connection limits.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

import coincurve
import trio

from channeld.transport._errors import (
    ConnectionClosed,
    HandshakeError,
    PeerTimeout,
    RateLimited,
    TransportError,
    TransportMisuse,
    WrongPeerKey,
)
from channeld.transport._framing import NEED_DATA, FrameCodec
from channeld.transport._limits import TransportLimits
from channeld.transport._noise import ACT_ONE_SIZE, ACT_THREE_SIZE, ACT_TWO_SIZE, HandshakeState, Role, Step

log = logging.getLogger("channeld.transport")

_READ_CHUNK = 65536
# messages handed over per `receive_batch` at most (a 64 KiB read holds a few hundred payments)
READ_BATCH = 128


async def _receive_exactly(stream: trio.abc.Stream, size: int, act: int) -> bytes:
    """Exactly `size` bytes, never more (the peer's first frame may follow in the same segment)."""
    data = bytearray()
    while len(data) < size:
        try:
            chunk = await stream.receive_some(size - len(data))
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            # a reset mid-handshake (the peer died) is a failed handshake, not a crash of ours
            raise HandshakeError(act, "read_failed", f"connection lost while reading: {exc}") from None
        if not chunk:
            raise HandshakeError(act, "read_failed", f"connection closed after {len(data)} of {size} bytes")
        data += chunk
    return bytes(data)


async def _send(stream: trio.abc.Stream, data: bytes, act: int) -> None:
    try:
        await stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        raise HandshakeError(act, "read_failed", f"connection lost while sending: {exc}") from None


async def handshake_as_initiator(stream: trio.abc.Stream, hs: HandshakeState) -> None:
    """Acts one to three from the dialling side. A failed act two means the peer is not who we dialled."""
    await _send(stream, hs.write_act_one(), 1)
    try:
        hs.read_act_two(await _receive_exactly(stream, ACT_TWO_SIZE, 2))
    except HandshakeError as exc:
        assert hs.remote_static is not None
        raise WrongPeerKey(hs.remote_static.hex(), exc.reason) from None
    await _send(stream, hs.write_act_three(), 3)


async def handshake_as_responder(stream: trio.abc.Stream, hs: HandshakeState) -> None:
    hs.read_act_one(await _receive_exactly(stream, ACT_ONE_SIZE, 1))
    await _send(stream, hs.write_act_two(), 2)
    hs.read_act_three(await _receive_exactly(stream, ACT_THREE_SIZE, 3))


_ACT_AT_STEP = {Step.WRITE_ACT_ONE: 1, Step.READ_ACT_ONE: 1, Step.WRITE_ACT_TWO: 2, Step.READ_ACT_TWO: 2,
                Step.WRITE_ACT_THREE: 3, Step.READ_ACT_THREE: 3}


@dataclass(frozen=True, slots=True)
class ConnectionStatistics:
    messages_sent: int
    messages_received: int
    bytes_sent: int
    bytes_received: int


class _TokenBucket:
    """At most `rate` messages a second on average, bursts up to one second's worth."""

    __slots__ = ("_last", "_rate", "_tokens")

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._tokens = max(rate, 1.0)
        self._last = trio.current_time()

    def take(self) -> bool:
        now = trio.current_time()
        self._tokens = min(max(self._rate, 1.0), self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class PeerConnection:
    """Send and receive whole messages (bytes) to an authenticated peer.

    `send` may be called from several tasks (they are serialised); `receive` from one task at a time.
    Peer faults (bad MAC, oversized frame, too many messages a second, a stalled reader) raise a
    `TransportError` subclass; after one the connection is closed and useless.
    """

    def __init__(
        self, stream: trio.abc.Stream, handshake: HandshakeState, limits: TransportLimits, peer_address: str,
    ) -> None:
        keys = handshake.split()
        self.remote_node_id: bytes = keys.remote_static
        self.local_node_id: bytes = handshake.local_public
        self.peer_address = peer_address
        self.limits = limits
        self._stream = stream
        self._codec = FrameCodec(keys, limits.max_message_size)
        self._send_lock = trio.Lock()
        self._receiving = False
        self._deferred: TransportError | None = None  # a fault found behind messages already returned
        self._bucket = _TokenBucket(limits.max_messages_per_second)
        self._closed = False
        self.failure: TransportError | None = None
        self._sent = self._received = self._bytes_sent = self._bytes_received = 0

    def __repr__(self) -> str:
        return f"<PeerConnection {self.remote_node_id.hex()[:16]}… at {self.peer_address}>"

    @property
    def closed(self) -> bool:
        return self._closed

    def statistics(self) -> ConnectionStatistics:
        return ConnectionStatistics(self._sent, self._received, self._bytes_sent, self._bytes_received)

    async def send(self, message: bytes) -> None:
        """Encrypt and write one message; a peer that takes nothing for `send_timeout` is dropped."""
        await self.send_many((message,))

    async def send_many(self, messages: Sequence[bytes]) -> None:
        """Encrypt several messages and write them with one socket write (one syscall, fewer segments)."""
        encrypt = self._codec.encrypt
        frame = b"".join([encrypt(message) for message in messages])
        # Uncontended (the session's writer is the only sender), the lock is taken without the scheduler
        # pass `async with` costs: the bytes leave one pass sooner, and `send_all` checkpoints anyway.
        try:
            self._send_lock.acquire_nowait()
        except trio.WouldBlock:
            await self._send_lock.acquire()
        try:
            self._check_open()
            with trio.move_on_after(self.limits.send_timeout) as scope:
                try:
                    await self._stream.send_all(frame)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    await self._fail(ConnectionClosed(f"{self!r} is closed"))
            if scope.cancelled_caught:
                await self._fail(PeerTimeout(f"{self!r} did not read for {self.limits.send_timeout}s"))
        finally:
            self._send_lock.release()
        self._sent += len(messages)
        self._bytes_sent += len(frame)

    async def receive(self) -> bytes:
        """The next message. Raises `ConnectionClosed` at the end of the stream."""
        return (await self.receive_batch(1))[0]

    async def receive_batch(self, most: int = READ_BATCH) -> list[bytes]:
        """The next message and up to `most - 1` more that are already buffered, without waiting again.

        A burst costs one call (and the caller one timeout scope) instead of one each. A fault found
        after the first message is raised by the next call, so the messages before it are still delivered.
        """
        # A flag, not a lock: messages already buffered are returned without a scheduling round trip.
        if self._receiving:
            raise TransportMisuse("receive() called from two tasks at once")
        self._receiving = True
        try:
            self._check_open()
            if self._deferred is not None:
                await self._fail(self._deferred)
            try:
                messages = [await self._next_message()]
            except TransportError as exc:
                # Cancellation is harmless (partial frames stay buffered); a peer fault is final.
                await self._fail(exc)
            self._take_buffered(messages, most)
        finally:
            self._receiving = False
        for _ in messages:
            if not self._bucket.take():
                rate = self.limits.max_messages_per_second
                await self._fail(RateLimited(f"{self!r} sent over {rate} messages/s"))
        self._received += len(messages)
        return messages

    def _take_buffered(self, messages: list[bytes], most: int) -> None:
        next_message = self._codec.next_message
        try:
            while len(messages) < most:
                message = next_message()
                if message is NEED_DATA:
                    return
                assert isinstance(message, bytes)
                messages.append(message)
        except TransportError as exc:
            self._deferred = exc

    async def _fail(self, exc: TransportError) -> NoReturn:
        # Recorded before the close, so a task woken by the close can report the real cause.
        if self.failure is None:
            self.failure = exc
        await self.aclose()
        raise exc

    async def _next_message(self) -> bytes:
        while True:
            message = self._codec.next_message()
            if message is not NEED_DATA:
                assert isinstance(message, bytes)
                return message
            try:
                data = await self._stream.receive_some(_READ_CHUNK)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                raise ConnectionClosed(f"{self!r} closed the connection")
            self._bytes_received += len(data)
            self._codec.receive_data(data)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self._stream)

    def _check_open(self) -> None:
        if self._closed:
            raise ConnectionClosed(f"{self!r} is closed") from self.failure


async def open_handshake(
    stream: trio.abc.Stream, role: Role, local_key: coincurve.PrivateKey, limits: TransportLimits,
    peer_address: str, remote_node_id: bytes | None = None,
) -> PeerConnection:
    """Run the handshake under `handshake_timeout`; on any failure the stream is closed."""
    try:
        hs = HandshakeState(role, local_key, remote_node_id)
        with trio.fail_after(limits.handshake_timeout):
            if role is Role.INITIATOR:
                await handshake_as_initiator(stream, hs)
            else:
                await handshake_as_responder(stream, hs)
    except trio.TooSlowError:
        await trio.aclose_forcefully(stream)
        act = _ACT_AT_STEP.get(hs.step, 3)
        detail = f"{peer_address} took over {limits.handshake_timeout}s"
        raise HandshakeError(act, "timeout", detail) from None
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return PeerConnection(stream, hs, limits, peer_address)
