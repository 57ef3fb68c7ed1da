"""Sessions over in-memory streams with the autojump clock: init, keep-alive, idle drop, back-pressure."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from channeld.transport import (
    ConnectionClosed,
    ErrorCode,
    PayloadError,
    PeerConnection,
    PeerTimeout,
    SendQueueFull,
    Session,
    TransportLimits,
    establish_session,
)
from channeld.wire import ZERO32, Error, Init, Ping, Pong, decode, encode
from tests.transport.helpers import ALICE, BOB, connection_pair, make_init

LIMITS = TransportLimits(ping_interval=10.0, idle_timeout=25.0, send_timeout=20.0, send_queue_size=4,
                         receive_queue_size=3, handshake_timeout=5.0)


def note(n: int) -> Error:
    return Error(channel_id=ZERO32, code=n, text=f"message {n}")


async def session_pair(nursery: trio.Nursery, lockstep: bool = False) -> tuple[Session, Session]:
    a_conn, b_conn = await connection_pair(LIMITS, lockstep=lockstep)
    sessions: dict[str, Session] = {}

    async def establish(name: str, connection: PeerConnection, init: Init) -> None:
        sessions[name] = await establish_session(connection, init)

    async with trio.open_nursery() as both:
        both.start_soon(establish, "a", a_conn, make_init(1))
        both.start_soon(establish, "b", b_conn, make_init(2))
    nursery.start_soon(sessions["a"].run)
    nursery.start_soon(sessions["b"].run)
    return sessions["a"], sessions["b"]


async def test_init_is_exchanged_and_messages_flow_both_ways(nursery: trio.Nursery) -> None:
    a, b = await session_pair(nursery)
    assert a.remote_init == make_init(2) and b.remote_init == make_init(1)
    assert a.node_id == b.connection.local_node_id
    await a.send(note(1))
    b.send_nowait(note(2))
    assert await b.receive() == note(1)
    assert await a.receive() == note(2)


async def test_live_peers_ping_each_other_and_are_never_dropped(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock,
) -> None:
    a, b = await session_pair(nursery)
    await trio.sleep(LIMITS.idle_timeout * 10)
    assert not a.closed and not b.closed
    stats = a.statistics()
    assert stats.pings_sent >= 9 and stats.pongs_received >= 9
    await a.send(note(3))
    assert await b.receive() == note(3)


async def test_a_silent_peer_is_dropped_after_the_idle_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock,
) -> None:
    a_conn, silent = await connection_pair(LIMITS)
    await silent.send(encode(make_init()))
    a = await establish_session(a_conn, make_init())
    started = trio.current_time()
    nursery.start_soon(a.run)
    await a.wait_closed()
    assert isinstance(a.close_reason, PeerTimeout)
    assert trio.current_time() - started == pytest.approx(LIMITS.idle_timeout, abs=0.01)
    with pytest.raises(ConnectionClosed):
        await a.receive()
    with pytest.raises(ConnectionClosed):
        await a.send(note(1))


async def test_a_peer_that_answers_pings_but_sends_nothing_else_stays(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock,
) -> None:
    a, b = await session_pair(nursery)
    await trio.sleep(LIMITS.idle_timeout * 3)
    assert not a.closed and b.statistics().messages_received >= 5  # b only ever saw pings


async def test_send_queue_is_bounded_and_a_stalled_reader_is_dropped(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock,
) -> None:
    a_conn, stalled = await connection_pair(LIMITS, lockstep=True)
    async with trio.open_nursery() as setup:  # init exchange needs both sides to read once
        setup.start_soon(stalled.send, encode(make_init()))
        setup.start_soon(stalled.receive)
        a = await establish_session(a_conn, make_init())
    nursery.start_soon(a.run)
    for n in range(LIMITS.send_queue_size + 1):  # the writer holds one, the queue the rest
        a.send_nowait(note(n))
        await trio.testing.wait_all_tasks_blocked()
    with pytest.raises(SendQueueFull):
        a.send_nowait(note(99))
    assert a.statistics().send_queue == LIMITS.send_queue_size
    with trio.move_on_after(1.0) as blocked:
        await a.send(note(100))
    assert blocked.cancelled_caught, "send() must wait while the queue is full"
    await a.wait_closed()
    assert isinstance(a.close_reason, PeerTimeout)
    assert "did not read" in str(a.close_reason)


async def test_an_unread_receive_queue_stops_reading_the_socket(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock,
) -> None:
    a, b = await session_pair(nursery, lockstep=True)
    sent = 0

    async def flood() -> None:
        nonlocal sent
        while True:
            await b.send(note(sent))
            sent += 1

    nursery.start_soon(flood)
    await trio.sleep(5.0)
    # a never called receive(): its queue is full and the rest waits in b's (bounded) send queue
    assert a.statistics().receive_queue == LIMITS.receive_queue_size
    # b's writer batches: one queue's worth sits in the write it is blocked in, and the batch before it
    # may sit whole in a's frame buffer; still bounded by the limits, whatever b sends
    assert sent <= LIMITS.receive_queue_size + 3 * LIMITS.send_queue_size + 3
    assert a.connection._codec.decoder.buffered < 65536
    assert [await a.receive() for _ in range(5)] == [note(n) for n in range(5)]


async def test_init_sent_twice_drops_the_session(nursery: trio.Nursery) -> None:
    a_conn, raw = await connection_pair(LIMITS)
    await raw.send(encode(make_init()))
    a = await establish_session(a_conn, make_init())
    nursery.start_soon(a.run)
    assert decode(await raw.receive()) == make_init()
    await raw.send(encode(make_init()))
    error = decode(await raw.receive())
    assert isinstance(error, Error) and error.code == ErrorCode.UNEXPECTED_INIT
    await a.wait_closed()
    assert isinstance(a.close_reason, PayloadError)


async def test_huge_ping_gets_no_pong_but_small_one_does(nursery: trio.Nursery) -> None:
    a_conn, raw = await connection_pair(LIMITS)
    await raw.send(encode(make_init()))
    a = await establish_session(a_conn, make_init())
    nursery.start_soon(a.run)
    await raw.receive()  # a's init
    await raw.send(encode(Ping(pong_length=65001, padding=b"")))
    await raw.send(encode(Ping(pong_length=3, padding=b"")))
    assert decode(await raw.receive()) == Pong(padding=bytes(3))


async def test_no_init_within_the_timeout_is_a_peer_timeout(autojump_clock: trio.testing.MockClock) -> None:
    a_conn, _silent = await connection_pair(LIMITS)
    with pytest.raises(PeerTimeout):
        await establish_session(a_conn, make_init())
    assert a_conn.closed


async def test_close_ends_run_and_the_peer_sees_the_end(nursery: trio.Nursery) -> None:
    a, b = await session_pair(nursery)
    a.close()
    await a.wait_closed()
    await b.wait_closed()
    assert isinstance(b.close_reason, ConnectionClosed)
    assert [s.closed for s in (a, b)] == [True, True]
    assert ALICE != BOB


async def test_a_burst_of_queued_messages_goes_out_in_one_socket_write(nursery: trio.Nursery) -> None:
    a_conn, b_conn = await connection_pair(LIMITS)
    writes: list[int] = []
    send_all = a_conn._stream.send_all

    async def counting_send_all(data: bytes | bytearray | memoryview) -> None:
        writes.append(len(data))
        await send_all(data)

    a_conn._stream.send_all = counting_send_all  # type: ignore[method-assign]
    sessions: dict[str, Session] = {}

    async def establish(name: str, connection: PeerConnection, init: Init) -> None:
        sessions[name] = await establish_session(connection, init)

    async with trio.open_nursery() as both:
        both.start_soon(establish, "a", a_conn, make_init(1))
        both.start_soon(establish, "b", b_conn, make_init(2))
    a, b = sessions["a"], sessions["b"]
    writes.clear()
    for n in range(LIMITS.send_queue_size):  # queued before the writer runs: one burst
        a.send_nowait(note(n))
    nursery.start_soon(a.run)
    nursery.start_soon(b.run)
    received = [await b.receive() for _ in range(LIMITS.send_queue_size)]
    assert received == [note(n) for n in range(LIMITS.send_queue_size)]
    assert len(writes) == 1
