"""The dispute loop: submit `updateBalanceProof` for every open dispute, bump its fee while it waits,
and close the dispute once the chain holds our nonce (or a higher one) or the channel settled.

Open disputes live in the database, and so does each dispute's transaction in flight: every version
(same nonce, rising fees) is written before it is broadcast. A restarted tower takes them back
(`TransactionSender.adopt`) before it sends anything, so it watches and bumps the transaction it already
has in the pool instead of sending a second one behind it.

Fees follow the sender's `FeePolicy`: re-sent after `bump_after` seconds unmined, at least 12.5% higher,
escalating to reach the cap by the dispute's deadline minus the tower's safety margin.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import trio
from eth_utils import to_checksum_address

from channeld.chain import AsyncSender, SubmittedTx, TransactionReverted, TransactionSender, TxRequest
from channeld.errors import ChainError
from channeld.watchtower._records import Dispute
from channeld.watchtower._rules import DisputeStatus, dispute_calldata, dispute_status, non_closer

if TYPE_CHECKING:
    from channeld.watchtower._service import Watchtower

log = logging.getLogger("channeld.watchtower")


@dataclass(frozen=True, slots=True)
class _InFlight:
    versions: tuple[SubmittedTx, ...]  # oldest first; the newest is the one to bump
    bump_at: float  # the newest is re-sent once it waited this long (seconds)
    mined: bool = False

    @property
    def newest(self) -> SubmittedTx:
        return self.versions[-1]


class DisputeRunner:
    def __init__(self, tower: Watchtower, sender: AsyncSender | None) -> None:
        self.tower = tower
        self.sender = sender
        self.submitted = 0
        self._in_flight: dict[bytes, _InFlight] = {}
        self._wakeup = trio.Event()
        self._open = 0
        self._recovered = sender is None

    def open_count(self) -> int:
        return self._open

    def wake(self) -> None:
        self._wakeup.set()

    @property
    def _sync(self) -> TransactionSender:
        assert self.sender is not None, "a tower with open disputes needs a chain account"
        return self.sender.sender

    async def run(self) -> None:
        interval = self.tower.settings.dispute_interval
        while True:
            self._wakeup = trio.Event()
            await self._round()
            with trio.move_on_after(interval):
                await self._wakeup.wait()

    async def _round(self) -> None:
        if not self._recovered:
            try:
                await self.recover()
            except ChainError as exc:
                log.warning("cannot take back the transactions in flight yet: %s; retrying", exc)
                return  # nothing new is sent before the old ones are known again
        disputes = await trio.to_thread.run_sync(lambda: list(self.tower.db.iter_disputes()))
        self._open = len(disputes)
        for dispute in disputes:
            try:
                await self.advance(dispute)
            except ChainError as exc:
                log.warning("dispute of channel 0x%s: %s; retrying", dispute.channel_id.hex(), exc)
            except Exception:
                # a bug with one dispute must not stop the others (or the tower): log it loudly
                log.exception("bug while advancing the dispute of 0x%s", dispute.channel_id.hex())

    async def recover(self) -> None:
        """Take back the dispute transactions an earlier run left in flight."""
        flights = await trio.to_thread.run_sync(lambda: list(self.tower.db.iter_flights()))
        for cid, versions in flights:
            if cid in self._in_flight:
                continue
            if self.tower.db.get_dispute(cid) is None:
                await self._forget_flight(cid)
                continue
            newest = await trio.to_thread.run_sync(self._sync.adopt, versions)
            self._in_flight[cid] = _InFlight((*versions[:-1], newest), self._bump_after)
            log.info("dispute of channel 0x%s: transaction 0x%s (nonce %d) from before the restart taken "
                     "back", cid.hex(), newest.tx_hash.hex(), newest.nonce)
        self._recovered = True

    @property
    def _bump_after(self) -> float:
        return self._sync.fee_policy.bump_after

    async def advance(self, dispute: Dispute) -> None:
        """One step for one dispute: finish it, submit it, watch it or bump its fee."""
        cid = dispute.channel_id
        channel = self.tower.db.get_channel(cid)
        status = dispute_status(channel, dispute, self.tower.chain_time)
        if status is not DisputeStatus.PENDING:
            await self._finish(dispute, status)
            return
        flight = self._in_flight.get(cid)
        if flight is None:
            await self._submit(dispute)
        elif not flight.mined:
            await self._watch(dispute, flight)

    async def _finish(self, dispute: Dispute, status: DisputeStatus) -> None:
        batch = self.tower.db.batch()
        batch.delete_dispute(dispute.channel_id)
        batch.delete_flight(dispute.channel_id)
        await trio.to_thread.run_sync(self.tower.db.write, batch)
        self._in_flight.pop(dispute.channel_id, None)
        if status is DisputeStatus.EXPIRED:
            log.error("dispute of channel 0x%s missed its deadline", dispute.channel_id.hex())
        else:
            log.info("dispute of channel 0x%s done", dispute.channel_id.hex())

    async def _submit(self, dispute: Dispute) -> None:
        channel = self.tower.db.get_channel(dispute.channel_id)
        assert channel is not None
        against = non_closer(channel)
        held = None if against is None else self.tower.db.get_held(dispute.channel_id, against)
        if held is None or held.nonce < dispute.nonce:
            return  # the channel settled and its proofs were forgotten; the next round finishes it
        request = TxRequest(to=to_checksum_address(self.tower.contract), data=dispute_calldata(channel, held))
        tx = await trio.to_thread.run_sync(self._sync.submit, request,
                                           lambda tx: self._persist(dispute, (tx,)))
        self._in_flight[dispute.channel_id] = _InFlight((tx,), self._bump_after)
        self.submitted += 1
        log.info("dispute of channel 0x%s submitted: 0x%s", dispute.channel_id.hex(), tx.tx_hash.hex())

    def _persist(self, dispute: Dispute, versions: tuple[SubmittedTx, ...]) -> None:
        """Durably note the versions in flight, the newest about to be broadcast (blocking)."""
        batch = self.tower.db.batch()
        batch.put_flight(dispute.channel_id, versions)
        newest = versions[-1]
        batch.put_dispute(replace(dispute, tx_hash=newest.tx_hash, submissions=dispute.submissions + 1))
        self.tower.db.write(batch)

    async def _forget_flight(self, channel_id: bytes) -> None:
        self._in_flight.pop(channel_id, None)
        batch = self.tower.db.batch()
        batch.delete_flight(channel_id)
        await trio.to_thread.run_sync(self.tower.db.write, batch)

    async def _watch(self, dispute: Dispute, flight: _InFlight) -> None:
        cid = dispute.channel_id
        try:
            receipt = await trio.to_thread.run_sync(self._sync.check_receipt, flight.newest)
        except TransactionReverted as exc:
            # the state moved under it: forget it, the next round builds a fresh one
            log.warning("dispute of channel 0x%s failed on chain: %s", cid.hex(), exc)
            await self._forget_flight(cid)
            return
        if receipt is not None:
            # mined; the follower's BalanceProofUpdated closes the dispute
            self._in_flight[cid] = replace(flight, mined=True)
        elif self._sync.waited(flight.newest) >= flight.bump_at:
            await self._bump(dispute, flight)

    async def _bump(self, dispute: Dispute, flight: _InFlight) -> None:
        cid = dispute.channel_id
        if await trio.to_thread.run_sync(self._sync.nonce_taken, flight.newest):
            log.warning("dispute of channel 0x%s: nonce %d used by another transaction; sending afresh",
                        cid.hex(), flight.newest.nonce)
            await self._forget_flight(cid)
            return
        time_left = dispute.settle_time - self.tower.settings.safety_margin - self.tower.chain_time
        bumped = await trio.to_thread.run_sync(
            self._sync.bump, flight.newest, time_left,
            lambda tx: self._persist(dispute, (*flight.versions, tx)))
        if bumped is None:
            log.warning("dispute of channel 0x%s unmined at the fee cap", cid.hex())
            later = self._sync.waited(flight.newest) + self._bump_after
            self._in_flight[cid] = replace(flight, bump_at=later)
            return
        self._in_flight[cid] = _InFlight((*flight.versions, bumped), self._bump_after)
        log.info("dispute of channel 0x%s unconfirmed after %.0fs: re-sent as 0x%s at %d wei per gas, %.0f s "
                 "before the deadline less the margin", cid.hex(), self._sync.waited(flight.newest),
                 bumped.tx_hash.hex(), bumped.max_fee, time_left)
