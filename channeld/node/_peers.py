"""Peers: sessions to partner nodes, the channels they carry, and re-establishment on every (re)connect.

Messages to a partner, queued by the channel service after a round is durable, go straight into the
current session's send queue (whose writer sends a burst with one socket write); only when that queue is
full do they wait, in order, in the partner's backlog, which a pump drains with back-pressure. A message
that finds no session is dropped: the partner learns it again through `Reestablish` when the session
comes back (the protocol resends what was not acknowledged), so nothing has to survive a disconnect.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import msgpack
import trio

from channeld.errors import PeerFault
from channeld.node._channels import ChannelService
from channeld.node._events import EventBus
from channeld.protocol import (
    ActionReconnected,
    ChannelState,
    ChannelStatus,
    KnownKey,
    announcement,
    check_announcement,
    refusal_code,
    refusal_for,
)
from channeld.store import Store
from channeld.transport import (
    ConnectionClosed,
    PeerUri,
    SendQueueFull,
    Session,
    SessionManager,
    TransportError,
    TransportLimits,
)
from channeld.wire import (
    ZERO32,
    BatchConsent,
    BatchConsentRequest,
    BatchRefusal,
    ChannelGossip,
    ChannelOpened,
    ConversionGossip,
    Error,
    Init,
    LockedTransfer,
    LockExpired,
    Message,
    Payment,
    PaymentAccepted,
    PaymentRefused,
    Reestablish,
    SecretReveal,
    SettleRequest,
    SettleSignature,
    Unlock,
    WithdrawRequest,
    WithdrawSignature,
    encode,
)

log = logging.getLogger("channeld.node")

OUTGOING_QUEUE = 65536
CHANNEL_REFUSAL = 18  # WrongChannel's code: the message names a channel this session does not carry
REFUSED = 16  # the generic refusal code (proto/messages.md)


class TooManyPendingChannels(PeerFault):
    """A peer announced more channels the chain has not shown us than `max_pending_channels` allows."""


Chain = tuple[int, bytes]  # (chain id, contract)


def agreed_chains(local: Init, remote: Init) -> frozenset[Chain]:
    """The chains both sides serve: a session carries channels on these only."""
    return frozenset(local.served()) & frozenset(remote.served())


# messages about one channel: those carrying a proof name it there, the others in a field of their own
_WITH_PROOF = frozenset({Payment, LockedTransfer, Unlock, LockExpired})
_WITH_CHANNEL_ID = frozenset({PaymentAccepted, PaymentRefused, Reestablish, WithdrawRequest,
                              WithdrawSignature, SettleRequest, SettleSignature, ChannelOpened})


def channel_of(message: Message) -> bytes | None:
    """The channel a partner's message is about (None for connection-level messages)."""
    kind = type(message)  # messages are final classes: a set lookup instead of a chain of type checks
    if kind in _WITH_PROOF:
        return message.balance_proof.channel_id  # type: ignore[attr-defined]
    if kind in _WITH_CHANNEL_ID:
        return message.channel_id  # type: ignore[attr-defined]
    return None


@dataclass(slots=True)
class _Backlog:
    """A partner's messages that found its session's queue full, oldest first."""

    messages: deque[Message] = field(default_factory=deque)
    wake: trio.Event = field(default_factory=trio.Event)


class PeerService:
    """Sessions with partners, their outgoing queues, and the dispatch of their messages to channels."""

    def __init__(self, store: Store, channels: ChannelService, bus: EventBus, local_init: Init,
                 manager_key: object, limits: TransportLimits) -> None:
        self.store = store
        self.channels = channels
        self.bus = bus
        self.local_init = local_init
        self.manager = SessionManager(manager_key, local_init, self._on_session, limits)  # type: ignore[arg-type]
        self.addresses: dict[bytes, bytes] = {}  # address -> node id, for channels opened on chain
        self.uris: dict[bytes, str] = {}
        self._backlogs: dict[bytes, _Backlog] = {}
        # Per session: ids of channels the peer announced before our chain watcher showed them to us.
        self._pending: dict[Session, set[bytes]] = {}
        # Per session: the chains both sides serve (`Init`); a channel on any other is refused.
        self._agreed: dict[Session, frozenset[Chain]] = {}
        self._nursery: trio.Nursery | None = None
        # A preimage a partner sent us outside a channel's locks (the answer to a paid payment request).
        self.on_secret: Callable[[bytes, bytes], None] = lambda peer_id, secret: None
        # A signed channel or conversion announcement (node/_gossip.py checks it and relays it).
        self.on_gossip: Callable[[bytes, ChannelGossip | ConversionGossip], None] = \
            lambda peer_id, message: None
        # Batch settlement consent, asked of us or answered to us (node/_batch.py).
        self.on_batch: Callable[[bytes, Message], None] = lambda peer_id, message: None

    def load(self) -> None:
        for pubkey, raw in self.store.iter_peers():
            address, uri = msgpack.unpackb(raw)
            self.addresses[bytes(address)] = pubkey
            if uri:
                self.uris[pubkey] = str(uri)

    async def run(self, listen_host: str, listen_port: int,
                  task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        async with self.manager, trio.open_nursery() as nursery:
            self._nursery = nursery
            listener = await self.manager.listen(listen_host, listen_port)
            if self.uris:
                self.manager.keep_connected(self.uris.values())
            task_status.started(listener.port)
            await trio.sleep_forever()

    # --- outgoing ------------------------------------------------------------------------------------

    def send(self, peer_id: bytes, message: Message) -> None:
        """Queue `message` to the partner's current session at once; never blocks, keeps the order.

        While the session's queue has room the message goes straight into it (no task hop per message);
        once it is full, messages wait in the partner's backlog, which a pump feeds in with back-pressure.
        """
        session = self.manager.session_for(peer_id)
        if session is None:
            return  # the partner learns it again through `Reestablish` when the session comes back
        backlog = self._backlog(peer_id)
        if not backlog.messages:
            try:
                session.send_nowait(message)
                return
            except SendQueueFull:
                pass
            except ConnectionClosed:
                return
        if len(backlog.messages) >= OUTGOING_QUEUE:  # a partner that reads nothing is dropped
            session.close(ConnectionClosed("outgoing queue overflowed"))
            return
        backlog.messages.append(message)
        backlog.wake.set()

    def _backlog(self, peer_id: bytes) -> _Backlog:
        backlog = self._backlogs.get(peer_id)
        if backlog is None:
            backlog = self._backlogs[peer_id] = _Backlog()
            assert self._nursery is not None
            self._nursery.start_soon(self._pump, peer_id, backlog)
        return backlog

    async def _pump(self, peer_id: bytes, backlog: _Backlog) -> None:
        while True:
            await backlog.wake.wait()
            backlog.wake = trio.Event()
            while backlog.messages:
                session = self.manager.session_for(peer_id)
                if session is None:
                    backlog.messages.clear()
                    break
                with contextlib.suppress(ConnectionClosed):
                    await session.send(backlog.messages[0])  # stays first while waiting: order holds
                backlog.messages.popleft()

    # --- connecting ----------------------------------------------------------------------------------

    async def connect(self, uri: str) -> bytes:
        """Dial a peer now (raising if that fails), then keep it connected; return its node id."""
        peer = PeerUri.parse(uri)
        if self.manager.session_for(peer.node_id) is None:
            await self.manager.connect(peer)
        if self.uris.get(peer.node_id) != str(peer):
            self.uris[peer.node_id] = str(peer)
            self.manager.keep_connected([peer])
            await self.channels.wait_round(self._remember(peer.node_id))
        return peer.node_id

    def _remember(self, node_id: bytes) -> int:
        address = KnownKey(node_id).address
        self.addresses[address] = node_id
        record = msgpack.packb([address, self.uris.get(node_id, "")])
        return self.channels.remember_peer(node_id, record)

    def is_connected(self, node_id: bytes) -> bool:
        return self.manager.session_for(node_id) is not None

    # --- a session's life ----------------------------------------------------------------------------

    async def _on_session(self, session: Session) -> None:
        remote = session.remote_init
        agreed = agreed_chains(self.local_init, remote)
        if not agreed:
            await session.send(Error(ZERO32, 16, "this node serves other chains or contracts"))
            raise ConnectionClosed(f"{session!r} serves chain {remote.chain_id}, none of ours")
        self._agreed[session] = agreed
        if KnownKey(session.node_id).address not in self.addresses:
            await self.channels.wait_round(self._remember(session.node_id))
        self._backlog(session.node_id)
        self.bus.publish("peer_connected", None, node_id=session.node_id.hex())
        self.reestablish(session.node_id)
        try:
            async for message in session:
                self._dispatch(session, message)
        finally:
            self._pending.pop(session, None)
            self._agreed.pop(session, None)
            self.bus.publish("peer_disconnected", None, node_id=session.node_id.hex())

    def reestablish(self, peer_id: bytes, only: bytes | None = None) -> None:
        """Announce the peer's open channels and feed them `ActionReconnected` (resends what is due)."""
        session = self.manager.session_for(peer_id)
        if only is not None and session is not None:
            self._pending.get(session, set()).discard(only)  # the chain has shown it to us now
        agreed = self._agreed.get(session) if session is not None else None
        for cid, entry in list(self.channels.of_peer(peer_id)):
            if (only is not None and cid != only) or (agreed is not None and not _on(entry.state, agreed)):
                continue
            if entry.state.status is ChannelStatus.OPEN:
                self.send(peer_id, announcement(entry.state))
                self.channels.apply(cid, ActionReconnected())

    def _note_pending(self, session: Session, cid: bytes) -> None:
        """The peer announced a channel the chain has not shown us: our watcher may only lag the peer's
        (it announces the channel again once it sees it), so a few are tolerated, then the peer is dropped."""
        pending = self._pending.setdefault(session, set())
        limit = self.manager.limits.max_pending_channels
        if cid in pending or len(pending) > limit:
            return
        pending.add(cid)  # at most limit + 1 ids per session: past the limit the peer is being dropped
        if len(pending) > limit:
            assert self._nursery is not None
            self._nursery.start_soon(self._refuse_pending, session, cid, limit)

    async def _refuse_pending(self, session: Session, cid: bytes, limit: int) -> None:
        text = f"more than {limit} of the channels you announced are not open on chain with us"
        log.info("dropping %s: %s", session.node_id.hex()[:16], text)
        # written directly, ahead of the queue, so that the peer learns why before the connection closes
        with trio.move_on_after(1.0), contextlib.suppress(TransportError):
            await session.connection.send(encode(Error(cid, REFUSED, text)))
        session.close(TooManyPendingChannels(text))

    def _dispatch(self, session: Session, message: Message) -> None:
        if isinstance(message, ChannelGossip | ConversionGossip):
            self.on_gossip(session.node_id, message)
            return
        if isinstance(message, SecretReveal):
            self.on_secret(session.node_id, message.secret)
        cid = channel_of(message)
        if cid is None:
            if isinstance(message, Error):
                log.info("peer %s reports error %d: %s", session.node_id.hex()[:16], message.code,
                         message.text)
            elif isinstance(message, BatchConsentRequest | BatchConsent | BatchRefusal):
                self.on_batch(session.node_id, message)
            return
        entry = self.channels.channels.get(cid)
        if entry is None or entry.peer_id != session.node_id:
            if isinstance(message, ChannelOpened):
                self._note_pending(session, cid)
            else:
                self.send(session.node_id, Error(cid, CHANNEL_REFUSAL, "unknown channel"))
            return
        if not _on(entry.state, self._agreed.get(session, frozenset())):
            text = f"channel on chain {entry.state.chain_id}, which this session did not agree on"
            log.info("refused %s from %s: %s", type(message).__name__, session.node_id.hex()[:16], text)
            self.send(session.node_id, Error(cid, CHANNEL_REFUSAL, text))
            return
        try:
            if isinstance(message, ChannelOpened):
                check_announcement(entry.state, message)
            else:
                self.channels.apply(cid, message)
        except PeerFault as exc:
            log.info("refused %s from %s: %s", type(message).__name__, session.node_id.hex()[:16], exc)
            if isinstance(message, Payment | LockedTransfer | Unlock | LockExpired):  # refusals only: rare
                self.send(session.node_id, refusal_for(entry.state, message, exc))
            else:
                self.send(session.node_id, Error(cid, refusal_code(exc), str(exc)[:1000]))


def _on(state: ChannelState, agreed: frozenset[Chain]) -> bool:
    return (state.chain_id, state.contract) in agreed
