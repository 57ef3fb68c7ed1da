"""A burst already in the socket buffer is read with one call; a fault behind it waits for the next call."""

from __future__ import annotations

import pytest

from channeld.transport import FrameError, RateLimited, TransportLimits
from tests.transport.helpers import connection_pair


async def test_a_burst_is_one_batch_in_order() -> None:
    sender, receiver = await connection_pair()
    burst = [b"payment %d" % i for i in range(40)]
    await sender.send_many(burst)
    assert await receiver.receive_batch() == burst
    await sender.send_many(burst[:5])
    assert await receiver.receive_batch(3) == burst[:3]  # the cap holds; the rest stays buffered
    assert await receiver.receive() == burst[3]
    assert receiver.statistics().messages_received == 44


async def test_messages_before_a_bad_frame_are_delivered_then_the_fault_is_raised() -> None:
    sender, receiver = await connection_pair()
    good = [b"one", b"two"]
    frame = b"".join(sender._codec.encrypt(m) for m in [*good, b"three"])
    await sender._stream.send_all(frame[:-1] + bytes([frame[-1] ^ 1]))  # the last MAC no longer matches
    assert await receiver.receive_batch() == good
    with pytest.raises(FrameError, match="bad MAC"):
        await receiver.receive_batch()
    assert receiver.closed


async def test_the_rate_limit_counts_every_message_of_a_batch() -> None:
    sender, receiver = await connection_pair(TransportLimits(max_messages_per_second=10))
    await sender.send_many([b"x"] * 30)
    with pytest.raises(RateLimited):
        await receiver.receive_batch()
    assert receiver.closed
