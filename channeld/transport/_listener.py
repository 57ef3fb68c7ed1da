"""Accepting and dialling: TCP on trio, BOLT 8 handshake under the limits, then a `PeerConnection`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import coincurve
import trio

from channeld.errors import PeerFault
from channeld.transport._connection import PeerConnection, open_handshake
from channeld.transport._errors import ConnectionClosed, HandshakeError
from channeld.transport._limits import TransportLimits
from channeld.transport._noise import Role
from channeld.transport._uri import PeerUri

log = logging.getLogger("channeld.transport")

ConnectionHandler = Callable[[PeerConnection], Awaitable[None]]


def _address_of(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
    except OSError:
        return "<unknown>"
    return f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class ListenerStatistics:
    open_connections: int
    handshakes_in_progress: int
    accepted: int
    refused_over_limit: int
    failed_handshakes: int


class Listener:
    """Accepts peers on a TCP port and hands each authenticated connection to `handler`.

    Connections beyond `max_connections` are closed at once; handshakes beyond
    `max_concurrent_handshakes` wait for a slot (the wait counts against `handshake_timeout`). A handshake
    that fails or times out is logged once and closed. When the handler returns or raises, the connection
    is closed; a `PeerFault` escaping the handler is logged, any other exception is logged as a bug with
    its traceback, and the listener keeps serving.
    """

    def __init__(
        self, local_key: coincurve.PrivateKey, handler: ConnectionHandler,
        limits: TransportLimits | None = None, host: str = "127.0.0.1", port: int = 0,
    ) -> None:
        self.local_key = local_key
        self.node_id = local_key.public_key.format(compressed=True)
        self.limits = limits or TransportLimits()
        self.host = host
        self.port = port
        self._handler = handler
        self._handshake_slots = trio.Semaphore(self.limits.max_concurrent_handshakes)
        self._open = self._handshaking = self._accepted = self._refused = self._failed = 0

    def statistics(self) -> ListenerStatistics:
        return ListenerStatistics(self._open, self._handshaking, self._accepted, self._refused, self._failed)

    async def serve(self, *, task_status: trio.TaskStatus[Listener] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind, report `self` (with the bound `port`) through `task_status`, then serve until cancelled."""
        listeners = await trio.open_tcp_listeners(self.port, host=self.host, backlog=1024)
        self.port = listeners[0].socket.getsockname()[1]
        log.info("listening on %s:%d as %s", self.host, self.port, self.node_id.hex())
        task_status.started(self)
        await trio.serve_listeners(self._serve_one, listeners)

    async def _serve_one(self, stream: trio.SocketStream) -> None:
        address = _address_of(stream)
        if self._open >= self.limits.max_connections:
            self._refused += 1
            log.warning("refused %s: %d connections open (limit)", address, self._open)
            await trio.aclose_forcefully(stream)
            return
        self._open += 1
        try:
            connection = await self._handshake(stream, address)
            if connection is not None:
                await self._run_handler(connection)
        finally:
            self._open -= 1

    async def _handshake(self, stream: trio.SocketStream, address: str) -> PeerConnection | None:
        try:
            with trio.fail_after(self.limits.handshake_timeout):
                await self._handshake_slots.acquire()
        except trio.TooSlowError:
            self._failed += 1
            log.warning("dropped %s: no handshake slot within %ss", address, self.limits.handshake_timeout)
            await trio.aclose_forcefully(stream)
            return None
        self._handshaking += 1
        try:
            return await open_handshake(stream, Role.RESPONDER, self.local_key, self.limits, address)
        except HandshakeError as exc:
            self._failed += 1
            log.info("handshake with %s failed: %s", address, exc)
            return None
        finally:
            self._handshaking -= 1
            self._handshake_slots.release()

    async def _run_handler(self, connection: PeerConnection) -> None:
        self._accepted += 1
        try:
            await self._handler(connection)
        except ConnectionClosed:
            pass
        except PeerFault as exc:
            log.info("dropped %r: %s", connection, exc)
        except Exception:
            # A bug while serving one peer must not take the listener (and every other peer) down.
            log.exception("bug while serving %r; connection dropped", connection)
        finally:
            await connection.aclose()


async def connect(
    uri: PeerUri | str, local_key: coincurve.PrivateKey, limits: TransportLimits | None = None,
) -> PeerConnection:
    """Dial `uri` and authenticate it. Raises `WrongPeerKey` if the node there holds another key."""
    peer = PeerUri.parse(uri) if isinstance(uri, str) else uri
    limits = limits or TransportLimits()
    address = f"{peer.host}:{peer.port}"
    try:
        with trio.fail_after(limits.connect_timeout):
            stream = await trio.open_tcp_stream(peer.host, peer.port)
    except trio.TooSlowError:
        raise ConnectionClosed(f"could not reach {address} within {limits.connect_timeout}s") from None
    except OSError as exc:
        raise ConnectionClosed(f"could not reach {address}: {exc.strerror or exc}") from None
    return await open_handshake(stream, Role.INITIATOR, local_key, limits, address, peer.node_id)
