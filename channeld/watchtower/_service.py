"""The tower service: takes pushes over BOLT 8, follows the contract's events, disputes stale closes.

Three tasks share one `TowerDB`: the session handlers (one per client), the chain follower, and the
dispute loop. A push and a chain event touching the same channel are serialised by a striped lock, so a
close can never slip between a push's validation and its write (which would miss a dispute).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import coincurve
import trio

from channeld.chain import AsyncSender, EventFollower, FollowerUpdate, RawLog
from channeld.chain.backend import ChainBackend
from channeld.chain.contract import (
    BalanceProofUpdated,
    ChannelClosed,
    ChannelCooperativelySettled,
    ChannelDeposit,
    ChannelEvent,
    ChannelOpened,
    ChannelSettled,
    ChannelWithdraw,
    OnChainChannel,
    UnknownEvent,
    apply_event,
    decode_event,
)
from channeld.chain.follower import FollowerCursor
from channeld.protocol import KnownKey
from channeld.transport import Session, SessionManager, TransportError, TransportLimits
from channeld.watchtower._db import TowerBatch, TowerDB
from channeld.watchtower._disputes import DisputeRunner
from channeld.watchtower._errors import PushRefusal
from channeld.watchtower._records import HeldProof
from channeld.watchtower._rules import check_push, dispute_needed, non_closer, participants
from channeld.wire import (
    PROTOCOL_VERSION,
    ZERO32,
    Error,
    Init,
    Message,
    ProofQuery,
    ProofStatus,
    PushAccepted,
    PushProof,
    PushRefused,
    encode,
)

log = logging.getLogger("channeld.watchtower")

_STRIPES = 64
# The events that change what a tower must know of a channel; payouts, unlocks and secrets after a
# settle do not, so they are not applied.
TrackedEvent = (ChannelOpened | ChannelDeposit | ChannelWithdraw | ChannelClosed | BalanceProofUpdated
                | ChannelSettled | ChannelCooperativelySettled)
_TRACKED = (ChannelOpened, ChannelDeposit, ChannelWithdraw, ChannelClosed, BalanceProofUpdated,
            ChannelSettled, ChannelCooperativelySettled)
# `Error.code` for a connection whose Init names another chain or contract, or that sends a message a
# tower does not take (proto/messages.md: 18 wrong channel, 17 illegal input).
_WRONG_CHAIN, _ILLEGAL_INPUT = 18, 17


@dataclass(frozen=True, slots=True)
class TowerSettings:
    """Timing of the tower (seconds). A dispute's fee escalates to reach the sender's fee cap by its
    deadline less `safety_margin`; when and how far it is raised is the sender's `FeePolicy`."""

    poll_interval: float = 1.0
    dispute_interval: float = 0.5
    safety_margin: float = 60.0
    confirmations: int = 0
    limits: TransportLimits = field(default_factory=TransportLimits)


@dataclass(frozen=True, slots=True)
class TowerStatistics:
    proofs_held: int
    pushes_accepted: int
    pushes_refused: int
    disputes_open: int
    disputes_submitted: int
    chain_time: int
    sessions: int


class Watchtower:
    """One tower for one contract on one chain. `run` serves it; `handle_push` is its push path."""

    def __init__(
        self, db: TowerDB, key: coincurve.PrivateKey, settings: TowerSettings | None = None,
        backend: ChainBackend | None = None, sender: AsyncSender | None = None, deploy_block: int = 0,
    ) -> None:
        self.db = db
        self.key = key
        self.node_id = key.public_key.format(compressed=True)
        self.chain_id = db.ns.chain_id
        self.contract = db.ns.contract
        self.settings = settings or TowerSettings()
        self.backend = backend
        self.deploy_block = deploy_block
        self.chain_time = 0
        self.manager: SessionManager | None = None
        self.disputes = DisputeRunner(self, sender)
        self._stripes = [trio.Lock() for _ in range(_STRIPES)]
        self._held = db.count_held()
        # counted across restarts: each durable write keeps them (TowerDB.counters), a clean stop too
        kept = db.load_counters()
        self._accepted, self._refused = kept.get("pushes_accepted", 0), kept.get("pushes_refused", 0)
        self.disputes.submitted = kept.get("disputes_submitted", 0)
        db.counters = self.counters

    def statistics(self) -> TowerStatistics:
        sessions = 0 if self.manager is None else len(self.manager.sessions)
        return TowerStatistics(self._held, self._accepted, self._refused, self.disputes.open_count(),
                               self.disputes.submitted, self.chain_time, sessions)

    def counters(self) -> dict[str, int]:
        return {"pushes_accepted": self._accepted, "pushes_refused": self._refused,
                "disputes_submitted": self.disputes.submitted}

    def account_address(self) -> bytes:
        """The tower's chain account (its key's address): it pays for disputes."""
        return KnownKey(self.node_id).address

    def _stripe(self, channel_id: bytes) -> trio.Lock:
        return self._stripes[channel_id[0] % _STRIPES]

    # ------------------------------------------------------------------------------------- pushes

    async def handle_push(self, pusher: bytes, push: PushProof) -> PushAccepted | PushRefused:
        """Validate and durably store one push from `pusher` (its 20-byte address); the answer to send."""
        proof = push.balance_proof
        async with self._stripe(proof.channel_id):
            channel = self.db.get_channel(proof.channel_id)
            held = self.db.get_held(proof.channel_id, pusher)
            try:
                fresh = check_push(self.chain_id, self.contract, pusher, push, channel, held, self.chain_time)
            except PushRefusal as refusal:
                self._refused += 1
                return PushRefused(proof.channel_id, proof.nonce, int(refusal.code), refusal.reason[:1000])
            if fresh is not None:
                assert channel is not None
                await self._store(channel, fresh, is_new=held is None)
        self._accepted += 1
        return PushAccepted(proof.channel_id, proof.nonce)

    async def _store(self, channel: OnChainChannel, fresh: HeldProof, *, is_new: bool) -> None:
        batch = self.db.batch()
        batch.put_held(channel.channel_id, fresh)
        # a push during the challenge period of a close against the pusher is disputed at once
        dispute = dispute_needed(channel, fresh, self.chain_time)
        if dispute is not None and self.db.get_dispute(channel.channel_id) is None:
            batch.put_dispute(dispute)
        await trio.to_thread.run_sync(self.db.write, batch)
        if is_new:
            self._held += 1
        if dispute is not None:
            self.disputes.wake()

    def handle_query(self, pusher: bytes, query: ProofQuery) -> ProofStatus:
        held = self.db.get_held(query.channel_id, pusher)
        return ProofStatus(query.channel_id, 0 if held is None else held.nonce)

    async def serve_session(self, session: Session) -> None:
        """Answer one client until it leaves; its transport identity is the pusher."""
        init = session.remote_init
        if init.chain_id != self.chain_id or init.contract != self.contract:
            # written straight to the connection: the session's queue is dropped when it closes
            refusal = Error(ZERO32, _WRONG_CHAIN, "this tower watches another chain or contract")
            with trio.move_on_after(1.0), contextlib.suppress(TransportError):
                await session.connection.send(encode(refusal))
            session.close()
            return
        pusher = KnownKey(session.node_id).address
        async for message in session:
            await session.send(await self._answer(pusher, message))

    async def _answer(self, pusher: bytes, message: Message) -> Message:
        if isinstance(message, PushProof):
            return await self.handle_push(pusher, message)
        if isinstance(message, ProofQuery):
            return self.handle_query(pusher, message)
        self._refused += 1
        return Error(ZERO32, _ILLEGAL_INPUT, f"a watchtower does not take {type(message).__name__}")

    # ------------------------------------------------------------------------------------- chain

    async def apply_logs(self, logs: Sequence[RawLog], cursor: FollowerCursor | None = None) -> None:
        events = []
        for raw in logs:
            try:
                events.append(decode_event({"topics": raw.topics, "data": raw.data}))
            except UnknownEvent as exc:
                log.warning("skipping a log of the contract that does not decode: %s", exc)
        await self.apply_events(events, cursor)

    async def apply_events(
        self, events: Iterable[ChannelEvent], cursor: FollowerCursor | None = None,
    ) -> None:
        """Apply events in order, with the follower's cursor, in one durable write."""
        relevant = [event for event in events if isinstance(event, _TRACKED)]
        stripes = sorted({event.channel_id[0] % _STRIPES for event in relevant})
        async with contextlib.AsyncExitStack() as stack:
            for index in stripes:
                await stack.enter_async_context(self._stripes[index])
            batch, forgotten, opened = self._apply_to_batch(relevant)
            if cursor is not None:
                batch.set_cursor(cursor)
            if len(batch):
                await trio.to_thread.run_sync(self.db.write, batch)
            self._held -= forgotten
        if opened:
            self.disputes.wake()

    def _apply_to_batch(self, events: Sequence[TrackedEvent]) -> tuple[TowerBatch, int, int]:
        """The batch for `events`, how many held proofs it deletes and how many disputes it opens."""
        batch = self.db.batch()
        changed: dict[bytes, OnChainChannel] = {}
        forgotten = opened = 0
        for event in events:
            cid = event.channel_id
            try:
                channel = apply_event(changed.get(cid) or self.db.get_channel(cid), event)
            except UnknownEvent as exc:
                log.error("event %s does not fit channel 0x%s: %s", type(event).__name__, cid.hex(), exc)
                continue
            changed[cid] = channel
            if isinstance(event, ChannelSettled):
                forgotten += self._forget_proofs(batch, channel)
            elif isinstance(event, ChannelClosed):
                opened += self._open_dispute(batch, channel)
        for channel in changed.values():
            batch.put_channel(channel)
        return batch, forgotten, opened

    def _open_dispute(self, batch: TowerBatch, channel: OnChainChannel) -> int:
        against = non_closer(channel)
        assert against is not None
        dispute = dispute_needed(channel, self.db.get_held(channel.channel_id, against), self.chain_time)
        if dispute is None or self.db.get_dispute(channel.channel_id) is not None:
            return 0
        log.info("channel 0x%s closed against a client: disputing with nonce %d",
                 channel.channel_id.hex(), dispute.nonce)
        batch.put_dispute(dispute)
        return 1

    def _forget_proofs(self, batch: TowerBatch, channel: OnChainChannel) -> int:
        """Settled: what the tower held for the channel is of no use any more, so it is deleted."""
        forgotten = 0
        for pusher in participants(channel):
            if self.db.get_held(channel.channel_id, pusher) is not None:
                batch.delete_held(channel.channel_id, pusher)
                forgotten += 1
        return forgotten

    async def follow_chain(self, follower: EventFollower,
                           task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Apply the contract's events forever; reports started once caught up with the chain."""
        started = False
        while True:
            update = await trio.to_thread.run_sync(follower.next_update)
            await self._take_update(follower, update)
            if update.caught_up:
                if not started:
                    started = True
                    task_status.started()
                await trio.sleep(self.settings.poll_interval)

    async def _take_update(self, follower: EventFollower, update: FollowerUpdate) -> None:
        assert self.backend is not None
        self.chain_time = await trio.to_thread.run_sync(self.backend.timestamp)
        if update.retracted:
            log.error("the chain reorganised deeper than %d confirmations; %d applied logs were retracted "
                      "and are kept as applied", self.settings.confirmations, len(update.retracted))
        if update.cursor != follower.cursor:
            await self.apply_logs(update.applied, update.cursor)
            follower.cursor = update.cursor

    # ------------------------------------------------------------------------------------- serving

    def local_init(self) -> Init:
        return Init(PROTOCOL_VERSION, b"", self.chain_id, self.contract)

    async def run(self, follower: EventFollower, host: str, port: int,
                  task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Catch up with the chain, then listen; reports the bound port once clients can connect."""
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.follow_chain, follower)
                nursery.start_soon(self.disputes.run)
                task_status.started(await nursery.start(self.serve, host, port))
        finally:  # what was counted since the last write
            self.db.write(self.db.batch())

    async def serve(self, host: str, port: int,
                    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Accept client sessions until cancelled; reports the bound port."""
        async with SessionManager(self.key, self.local_init(), self.serve_session,
                                  self.settings.limits) as manager:
            self.manager = manager
            listener = await manager.listen(host, port)
            log.info("watchtower for %s listening on %s:%d", self.db.ns, host, listener.port)
            task_status.started(listener.port)
            await trio.sleep_forever()
