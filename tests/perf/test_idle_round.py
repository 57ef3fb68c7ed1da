"""Group commit adds no delay when the node is idle: a lone payment's round is written at once."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from channeld.protocol import ActionPay
from channeld.wire import Message, Payment
from tests.node.test_flusher import CID, _service


async def _pay_one_at_a_time(tmp_path: Path) -> list[float]:
    """Pay five payments, each once the last was sent; the trio clock time each one took (`_service`'s
    send callback checks that each payment is in the store when it leaves)."""
    sent: list[Message] = []
    service, store, _ = _service(tmp_path / "db", sent)
    took = []
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run_flusher)
            for payment_id in range(1, 6):
                began = trio.current_time()
                await service.wait_round(service.apply(CID, ActionPay(payment_id, 1)))
                took.append(trio.current_time() - began)
            nursery.cancel_scope.cancel()
    finally:
        store.close()
    assert [m.payment_id for m in sent if isinstance(m, Payment)] == [1, 2, 3, 4, 5]
    return took


def test_an_idle_round_waits_for_no_timer(tmp_path: Path) -> None:
    # The clock moves only by jumping to the next timer once every task has been idle for a (real)
    # second: a round that waited for a gathering delay or a batching timer would show it here.
    clock = trio.testing.MockClock(autojump_threshold=1.0)
    took = trio.run(_pay_one_at_a_time, tmp_path, clock=clock)
    assert took == [0.0] * 5
