"""Random bytes thrown at a listening node, before and after a valid handshake; it must keep serving."""

from __future__ import annotations

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channeld.transport import Session, SessionManager, TransportLimits
from channeld.wire import decode, encode
from tests.transport.helpers import ALICE, BOB, RawClient, make_init

LIMITS = TransportLimits(handshake_timeout=0.3, max_message_size=2048)

chunks = st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=4)


async def echo(session: Session) -> None:
    async for message in session:
        await session.send(message)


async def serve_good_peer(port: int) -> None:
    client = await RawClient.open(port)
    await client.handshake(ALICE, BOB.public_key.format())
    await client.send_message(encode(make_init()))
    assert decode(await client.receive_message()) == make_init()
    await client.aclose()


async def throw(port: int, after_handshake: bool, as_frames: bool, data: list[bytes]) -> None:
    client = await RawClient.open(port)
    try:
        if after_handshake:
            await client.handshake(ALICE, BOB.public_key.format())
        for chunk in data:
            if as_frames and client.codec is not None:
                await client.send_message(chunk)  # authentic frames, random payloads
            else:
                await client.stream.send_all(chunk)
        await client.stream.send_eof()  # a short fragment would otherwise wait out a timeout
        await client.wait_closed_by_peer(timeout=2)
    except (EOFError, trio.BrokenResourceError):
        pass
    finally:
        await client.aclose()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(after_handshake=st.booleans(), as_frames=st.booleans(), data=chunks)
async def test_random_bytes_never_stop_the_listener(
    after_handshake: bool, as_frames: bool, data: list[bytes],
) -> None:
    manager = SessionManager(BOB, make_init(), echo, LIMITS)
    async with manager:
        port = (await manager.listen()).port
        with trio.fail_after(10):
            await throw(port, after_handshake, as_frames, data)
            await serve_good_peer(port)
        assert all(not s.closed for s in manager.sessions.values())
