"""One session per peer, inbound and outbound, plus reconnect loops with exponential backoff and jitter."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import coincurve
import trio

from channeld.errors import ConfigError, PeerFault
from channeld.transport._connection import PeerConnection
from channeld.transport._errors import ConnectionClosed, TransportMisuse
from channeld.transport._faults import FaultPlan
from channeld.transport._limits import TransportLimits
from channeld.transport._listener import Listener, connect
from channeld.transport._session import Session, establish_session
from channeld.transport._uri import PeerUri
from channeld.wire import Init

log = logging.getLogger("channeld.transport")

# Called once for every new session, on first connect and on every reconnect; the node runs channel
# re-establishment here and then reads the session until it ends.
SessionHandler = Callable[[Session], Awaitable[None]]


class SessionReplaced(ConnectionClosed):
    """The same peer connected again; the older session made way for the newer one."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before reconnect attempt n (0-based): `min(maximum, initial * factor**n)`, then a random
    fraction `jitter` of it is taken off so that many peers that dropped together do not redial together."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 60.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if not (0 < self.initial <= self.maximum) or self.factor < 1 or not 0 <= self.jitter <= 1:
            raise ConfigError(f"bad backoff {self}")

    def delay(self, attempt: int, rng: random.Random) -> float:
        base = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        return base * (1 - self.jitter * rng.random())


class SessionManager:
    """Keeps at most one live session per peer node id, whichever side dialled.

    A newer connection from a peer replaces the older session (`SessionReplaced` closes it, its handler's
    `receive` ends). Use inside `async with SessionManager(...) as manager:`; leaving closes everything.
    """

    def __init__(
        self, local_key: coincurve.PrivateKey, local_init: Init, on_session: SessionHandler,
        limits: TransportLimits | None = None, backoff: Backoff | None = None,
        rng: random.Random | None = None, faults: FaultPlan | None = None,
    ) -> None:
        self.local_key = local_key
        self.node_id = local_key.public_key.format(compressed=True)
        self.local_init = local_init
        self.limits = limits or TransportLimits()
        self.backoff = backoff or Backoff()
        self._on_session = on_session
        self._rng = rng or random.SystemRandom()
        self._faults = faults
        self._sessions: dict[bytes, Session] = {}
        self._changed = trio.Event()
        self._nursery: trio.Nursery | None = None

    @property
    def faults(self) -> FaultPlan | None:
        """Tests only: the plan every session, live or future, cuts its connection by (None: no cuts)."""
        return self._faults

    @faults.setter
    def faults(self, plan: FaultPlan | None) -> None:
        self._faults = plan
        for session in self._sessions.values():
            session.faults = plan

    @property
    def sessions(self) -> Mapping[bytes, Session]:
        return MappingProxyType(self._sessions)

    def session_for(self, node_id: bytes) -> Session | None:
        return self._sessions.get(node_id)

    async def __aenter__(self) -> SessionManager:
        self._nursery_manager = trio.open_nursery()
        self._nursery = await self._nursery_manager.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> bool | None:
        assert self._nursery is not None
        self._nursery.cancel_scope.cancel()
        return await self._nursery_manager.__aexit__(*exc_info)  # type: ignore[arg-type]

    def _require_nursery(self) -> trio.Nursery:
        if self._nursery is None:
            raise TransportMisuse("use the SessionManager inside `async with`")
        return self._nursery

    async def listen(self, host: str = "127.0.0.1", port: int = 0) -> Listener:
        """Start accepting peers; returns the listener (its `port` is the bound port)."""
        listener = Listener(self.local_key, self._serve_inbound, self.limits, host, port)
        started: Listener = await self._require_nursery().start(listener.serve)
        return started

    async def connect(self, uri: PeerUri | str) -> Session:
        """Dial once and adopt the session (replacing any older one with that peer)."""
        connection = await connect(uri, self.local_key, self.limits)
        session = await self._initialise(connection)
        self._require_nursery().start_soon(self._run_session, session)
        return session

    def keep_connected(self, uris: Iterable[PeerUri | str]) -> None:
        """Hold a session to each peer, redialling with backoff whenever none is up."""
        nursery = self._require_nursery()
        for uri in uris:
            nursery.start_soon(self._reconnect_loop, PeerUri.parse(uri) if isinstance(uri, str) else uri)

    async def _serve_inbound(self, connection: PeerConnection) -> None:
        await self._run_session(await self._initialise(connection))

    async def _initialise(self, connection: PeerConnection) -> Session:
        session = await establish_session(connection, self.local_init, self._faults)
        old = self._sessions.get(session.node_id)
        self._sessions[session.node_id] = session
        if old is not None:
            log.info("%r replaces %r", session, old)
            old.close(SessionReplaced(f"{old!r} replaced by a newer connection"))
        self._notify()
        return session

    async def _run_session(self, session: Session) -> None:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._run_handler, session)
                await session.run()
                nursery.cancel_scope.cancel()
        finally:
            if self._sessions.get(session.node_id) is session:
                del self._sessions[session.node_id]
                self._notify()

    async def _run_handler(self, session: Session) -> None:
        try:
            await self._on_session(session)
        except ConnectionClosed:
            pass
        except PeerFault as exc:
            log.info("session handler dropped %r: %s", session, exc)
            session.close(exc)
        except Exception as exc:
            log.exception("bug in the session handler for %r; session dropped", session)
            session.close(exc)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _reconnect_loop(self, peer: PeerUri) -> None:
        attempt = 0
        while True:
            current = self._sessions.get(peer.node_id)
            if current is not None:
                attempt = 0
                await current.wait_closed()
                continue
            try:
                await self.connect(peer)
            except PeerFault as exc:
                delay = self.backoff.delay(attempt, self._rng)
                log.info("reconnect to %s failed (%s); retrying in %.2fs", peer, exc, delay)
                attempt += 1
                with trio.move_on_after(delay):
                    await self._wait_for_session(peer.node_id)
            else:
                attempt = 0

    async def _wait_for_session(self, node_id: bytes) -> None:
        # An inbound connection from the peer during the back-off wait is as good as a redial.
        while node_id not in self._sessions:
            await self._changed.wait()
