"""The trio face of the chain layer: every blocking web3 call runs in a worker thread.

Waiting is done on the trio side (`trio.sleep` between quick polls), so no worker thread is held
while a transaction waits to be mined or the follower waits for new blocks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from channeld.chain.errors import ConfirmationTimeout
from channeld.chain.follower import EventFollower, FollowerUpdate
from channeld.chain.records import Receipt
from channeld.chain.sender import SubmittedTx, TransactionSender, TxRequest


class AsyncSender:
    """`TransactionSender` for trio code."""

    def __init__(self, sender: TransactionSender) -> None:
        self.sender = sender

    async def submit(self, request: TxRequest) -> SubmittedTx:
        return await trio.to_thread.run_sync(self.sender.submit, request)

    async def replace(self, stuck: SubmittedTx) -> SubmittedTx:
        return await trio.to_thread.run_sync(self.sender.replace, stuck)

    async def wait_for_receipt(
        self, submitted: SubmittedTx, timeout: float = 60.0, poll_interval: float = 0.1,
        confirmations: int = 0,
    ) -> Receipt:
        with trio.move_on_after(timeout):
            while True:
                receipt = await trio.to_thread.run_sync(self.sender.check_receipt, submitted, confirmations)
                if receipt is not None:
                    return receipt
                await trio.sleep(poll_interval)
        raise ConfirmationTimeout(
            f"transaction 0x{submitted.tx_hash.hex()} (nonce {submitted.nonce}) "
            f"not confirmed within {timeout} s"
        )


async def follow(
    follower: EventFollower,
    handler: Callable[[FollowerUpdate], Awaitable[None]],
    poll_interval: float = 1.0,
) -> None:
    """Run the follower forever: each non-empty update goes to `handler`, then the cursor is saved."""
    while True:
        update = await trio.to_thread.run_sync(follower.next_update)
        if not update.is_empty:
            await handler(update)
        if update.cursor != follower.cursor:
            await trio.to_thread.run_sync(follower.commit, update)
        if update.caught_up:
            await trio.sleep(poll_interval)
