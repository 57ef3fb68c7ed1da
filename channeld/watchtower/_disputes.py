"""The dispute loop: submit `updateBalanceProof` for every open dispute, bump its fee while it waits,
and close the dispute once the chain holds our nonce (or a higher one) or the channel settled.

Open disputes live in the database, so a restarted tower picks them up where it stopped; the
transactions in flight live only in memory (a restart re-submits: the chain refuses the loser with
`NonceNotIncreasing`, at no cost beyond a failed estimate).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import trio
from eth_utils import to_checksum_address

from channeld.chain import AsyncSender, SubmittedTx, TxRequest
from channeld.errors import ChainError
from channeld.watchtower._records import Dispute
from channeld.watchtower._rules import DisputeStatus, dispute_calldata, dispute_status, non_closer

if TYPE_CHECKING:
    from channeld.watchtower._service import Watchtower

log = logging.getLogger("channeld.watchtower")


@dataclass(frozen=True, slots=True)
class _InFlight:
    tx: SubmittedTx
    sent_at: float  # trio clock
    mined: bool = False


class DisputeRunner:
    def __init__(self, tower: Watchtower, sender: AsyncSender | None) -> None:
        self.tower = tower
        self.sender = sender
        self.submitted = 0
        self._in_flight: dict[bytes, _InFlight] = {}
        self._wakeup = trio.Event()
        self._open = 0

    def open_count(self) -> int:
        return self._open

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self) -> None:
        interval = self.tower.settings.dispute_interval
        while True:
            self._wakeup = trio.Event()
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
            with trio.move_on_after(interval):
                await self._wakeup.wait()

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
        await trio.to_thread.run_sync(self.tower.db.write, batch)
        self._in_flight.pop(dispute.channel_id, None)
        if status is DisputeStatus.EXPIRED:
            log.error("dispute of channel 0x%s missed its deadline", dispute.channel_id.hex())
        else:
            log.info("dispute of channel 0x%s done", dispute.channel_id.hex())

    async def _submit(self, dispute: Dispute) -> None:
        assert self.sender is not None, "a tower with open disputes needs a chain account"
        channel = self.tower.db.get_channel(dispute.channel_id)
        assert channel is not None
        against = non_closer(channel)
        held = None if against is None else self.tower.db.get_held(dispute.channel_id, against)
        if held is None or held.nonce < dispute.nonce:
            return  # the channel settled and its proofs were forgotten; the next round finishes it
        request = TxRequest(to=to_checksum_address(self.tower.contract), data=dispute_calldata(channel, held))
        tx = await self.sender.submit(request)
        await self._sent(dispute, tx)
        log.info("dispute of channel 0x%s submitted: 0x%s", dispute.channel_id.hex(), tx.tx_hash.hex())

    async def _sent(self, dispute: Dispute, tx: SubmittedTx) -> None:
        self._in_flight[dispute.channel_id] = _InFlight(tx, trio.current_time())
        self.submitted += 1
        batch = self.tower.db.batch()
        batch.put_dispute(replace(dispute, tx_hash=tx.tx_hash, submissions=dispute.submissions + 1))
        await trio.to_thread.run_sync(self.tower.db.write, batch)

    async def _watch(self, dispute: Dispute, flight: _InFlight) -> None:
        assert self.sender is not None
        try:
            receipt = await trio.to_thread.run_sync(self.sender.sender.check_receipt, flight.tx)
        except ChainError as exc:
            # reverted (the state moved under it): forget it, the next round builds a fresh one
            log.warning("dispute of channel 0x%s failed on chain: %s", dispute.channel_id.hex(), exc)
            del self._in_flight[dispute.channel_id]
            return
        if receipt is not None:
            # mined; the follower's BalanceProofUpdated closes the dispute
            self._in_flight[dispute.channel_id] = replace(flight, mined=True)
        elif trio.current_time() - flight.sent_at >= self.tower.settings.bump_after:
            bumped = await self.sender.replace(flight.tx)
            log.info("dispute of channel 0x%s unconfirmed after %.0fs: fee raised to %d",
                     dispute.channel_id.hex(), self.tower.settings.bump_after, bumped.max_fee)
            await self._sent(dispute, bumped)
