"""The client side of delegation: a node or wallet hands its partners' newest proofs to a tower.

`TowerClient.push(proof)` never waits and never fails for network reasons: it records the proof as the
channel's newest and wakes the background task (`run`), which keeps one BOLT 8 session to the tower,
redials with exponential backoff, and sends each channel's newest proof with our `BalanceProofUpdate`
authorization. Nothing on a payment's critical path waits for the tower.

No state can fall out of step: on every (re)connect the client forgets what the tower acknowledged
before and asks it (`ProofQuery`) what it holds for each channel, then re-pushes whatever the tower lacks
(a tower restored from an old backup, or a fresh one). A client that lost its own records pushes what it
has; a tower holding newer answers "stale", which the client takes as "held".
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import coincurve
import trio

from channeld.errors import PeerFault
from channeld.protocol import Signer, balance_proof_update_digest
from channeld.transport import (
    Backoff,
    PeerUri,
    Session,
    TransportLimits,
    connect,
    establish_session,
)
from channeld.watchtower._errors import ClientMisuse, RefusalCode
from channeld.wire import (
    PROTOCOL_VERSION,
    BalanceProof,
    Error,
    Init,
    Message,
    ProofQuery,
    ProofStatus,
    PushAccepted,
    PushProof,
    PushRefused,
)

log = logging.getLogger("channeld.watchtower.client")

# Refusals that may pass with time: the tower's follower may not have seen the channel's opening yet.
_RETRYABLE = frozenset({RefusalCode.UNKNOWN_CHANNEL})


@dataclass(frozen=True, slots=True)
class ClientStatistics:
    connected: bool
    channels: int
    pending: int
    pushes_sent: int
    accepted: int
    refused: int
    connects: int


def authorize(signer: Signer, proof: BalanceProof) -> bytes:
    """Our `BalanceProofUpdate` signature over the partner's proof: lets a tower submit it for us."""
    digest = balance_proof_update_digest(proof.chain_id, proof.contract, proof.channel_id, proof.nonce,
                                         proof.transferred_amount, proof.locked_amount, proof.locks_root)
    return signer.sign(digest)


class TowerClient:
    """Keeps one tower up to date with the newest partner proof of every channel we push for."""

    def __init__(
        self, uri: PeerUri | str, key: coincurve.PrivateKey, chain_id: int, contract: bytes,
        limits: TransportLimits | None = None, backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.uri = PeerUri.parse(uri) if isinstance(uri, str) else uri
        self.chain_id = chain_id
        self.contract = contract
        self.limits = limits or TransportLimits()
        self.backoff = backoff or Backoff()
        self._key = key
        self._signer = Signer(key.secret)
        self._rng = rng or random.SystemRandom()
        self._newest: dict[bytes, BalanceProof] = {}
        self._held: dict[bytes, int] = {}  # what the tower confirmed in this session
        self._given_up: dict[bytes, int] = {}  # nonce the tower refused for good
        self._dirty: set[bytes] = set()
        self._querying: set[bytes] = set()
        self._retry: set[bytes] = set()  # refused for a reason that may pass: pushed again after a pause
        self._in_flight: dict[bytes, int] = {}
        self._changed = trio.Event()
        self._session: Session | None = None
        self._sent = self._accepted = self._refused = self._connects = 0

    # ---------------------------------------------------------------------------------- the node's face

    def push(self, proof: BalanceProof) -> None:
        """Record `proof` (our partner's, signed by it) as the channel's newest; returns at once."""
        if proof.chain_id != self.chain_id or proof.contract != self.contract:
            raise ClientMisuse("the proof is for another chain or contract than this tower's")
        current = self._newest.get(proof.channel_id)
        if current is not None and current.nonce >= proof.nonce:
            return
        self._newest[proof.channel_id] = proof
        self._mark(proof.channel_id)

    def forget(self, channel_id: bytes) -> None:
        """Stop pushing for a channel (it settled)."""
        self._newest.pop(channel_id, None)
        self._dirty.discard(channel_id)

    def statistics(self) -> ClientStatistics:
        return ClientStatistics(self._session is not None, len(self._newest), self._pending_count(),
                                self._sent, self._accepted, self._refused, self._connects)

    def is_synced(self) -> bool:
        """Connected, and the tower holds (or refused for good) every channel's newest proof."""
        return self._session is not None and self._pending_count() == 0

    async def wait_synced(self) -> None:
        while not self.is_synced():
            await self._wait_change()

    def _pending_count(self) -> int:
        return len(self._dirty) + len(self._querying) + len(self._in_flight) + len(self._retry)

    def _mark(self, channel_id: bytes) -> None:
        self._dirty.add(channel_id)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _wait_change(self) -> None:
        await self._changed.wait()

    # ---------------------------------------------------------------------------------- the connection

    async def run(self) -> None:
        """Hold a session to the tower forever, redialling with backoff; cancel to stop."""
        attempt = 0
        while True:
            connects = self._connects
            try:
                await self._one_session()
            except PeerFault as exc:
                log.info("session with tower %s ended: %s", self.uri, exc)
            if self._connects != connects:
                attempt = 0  # it was up: the next dial comes quickly
            delay = self.backoff.delay(attempt, self._rng)
            attempt += 1
            await trio.sleep(delay)

    async def _one_session(self) -> None:
        connection = await connect(self.uri, self._key, self.limits)
        session = await establish_session(connection, Init(PROTOCOL_VERSION, b"", self.chain_id,
                                                           self.contract))
        self._start_session(session)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read, session, nursery.cancel_scope)
                nursery.start_soon(self._write, session)
                await session.run()
                nursery.cancel_scope.cancel()
        finally:
            self._session = None
            self._notify()

    def _start_session(self, session: Session) -> None:
        self._connects += 1
        self._session = session
        # what an earlier session heard may be gone (the tower lost its records): ask again
        self._held.clear()
        self._in_flight.clear()
        self._querying = set(self._newest)
        self._dirty -= self._querying
        self._notify()

    async def _write(self, session: Session) -> None:
        for channel_id in list(self._querying):
            await session.send(ProofQuery(channel_id))
        while True:
            while self._dirty:
                channel_id = self._dirty.pop()
                proof = self._newest.get(channel_id)
                if proof is None or self._settled(channel_id, proof.nonce):
                    continue
                self._in_flight[channel_id] = proof.nonce
                await session.send(PushProof(proof, authorize(self._signer, proof)))
                self._sent += 1
            if self._retry:
                with trio.move_on_after(self.backoff.initial):
                    await self._wait_change()
                self._dirty |= self._retry
                self._retry.clear()
            else:
                await self._wait_change()

    def _settled(self, channel_id: bytes, nonce: int) -> bool:
        """Nothing to send: the tower holds this nonce or newer, it is on its way, or it was refused."""
        return (self._held.get(channel_id, 0) >= nonce or self._in_flight.get(channel_id) == nonce
                or self._given_up.get(channel_id) == nonce)

    async def _read(self, session: Session, scope: trio.CancelScope) -> None:
        async for message in session:
            self._take(message)
        scope.cancel()

    def _take(self, message: Message) -> None:
        if isinstance(message, PushAccepted):
            self._answered(message.channel_id, message.nonce)
            self._accepted += 1
        elif isinstance(message, PushRefused):
            self._refused_push(message)
        elif isinstance(message, ProofStatus):
            self._querying.discard(message.channel_id)
            self._answered(message.channel_id, message.nonce)
        elif isinstance(message, Error):
            log.warning("tower %s reported an error: %s (code %d)", self.uri, message.text, message.code)
        else:
            log.warning("tower %s sent an unexpected %s", self.uri, type(message).__name__)
        self._notify()

    def _answered(self, channel_id: bytes, held_nonce: int) -> None:
        """The tower holds `held_nonce` (0: nothing); push again if our newest is newer."""
        self._held[channel_id] = max(self._held.get(channel_id, 0), held_nonce)
        if self._in_flight.get(channel_id, 0) <= held_nonce:
            self._in_flight.pop(channel_id, None)
        proof = self._newest.get(channel_id)
        if proof is not None and proof.nonce > self._held[channel_id]:
            self._dirty.add(channel_id)

    def _refused_push(self, refusal: PushRefused) -> None:
        self._refused += 1
        cid = refusal.channel_id
        self._in_flight.pop(cid, None)
        if refusal.code == RefusalCode.STALE:
            self._answered(cid, refusal.nonce)  # it holds this nonce or newer: as good as accepted
            return
        log.warning("tower %s refused nonce %d of channel 0x%s: %s (code %d)", self.uri, refusal.nonce,
                    cid.hex(), refusal.reason, refusal.code)
        if refusal.code in _RETRYABLE:
            self._retry.add(cid)
        else:
            self._given_up[cid] = refusal.nonce
