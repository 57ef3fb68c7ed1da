"""Real loopback sockets: authenticated peers, wrong keys, and every kind of hostile input."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import coincurve
import pytest
import trio

from channeld.transport import (
    ErrorCode,
    HandshakeState,
    Role,
    Session,
    SessionManager,
    TransportLimits,
    WrongPeerKey,
    connect,
)
from channeld.wire import ZERO32, Error, Ping, decode, encode
from tests.transport.helpers import ALICE, BOB, CAROL, RawClient, make_init, node_id

FAST = TransportLimits(handshake_timeout=1.0, max_message_size=4096, max_messages_per_second=50.0,
                       ping_interval=30.0, idle_timeout=60.0)


async def echo(session: Session) -> None:
    async for message in session:
        await session.send(message)


@dataclass
class Node:
    manager: SessionManager
    port: int

    @property
    def uri(self) -> str:
        return f"{self.manager.node_id.hex()}@127.0.0.1:{self.port}"


async def start_node(nursery: trio.Nursery, limits: TransportLimits = FAST, key: coincurve.PrivateKey = BOB
                     ) -> Node:
    manager = SessionManager(key, make_init(), echo, limits)
    await nursery.start(_hold, manager)
    listener = await manager.listen()
    return Node(manager, listener.port)


async def _hold(manager: SessionManager, *, task_status: trio.TaskStatus[None]) -> None:
    async with manager:
        task_status.started()
        await trio.sleep_forever()


@pytest.fixture
async def node(nursery: trio.Nursery) -> AsyncIterator[Node]:
    yield await start_node(nursery)


def error_of(payload: bytes) -> Error:
    message = decode(payload)
    assert isinstance(message, Error)
    return message


async def good_client(node: Node, key: coincurve.PrivateKey = ALICE) -> RawClient:
    """A well-behaved peer: handshake, init exchange; checks the node's init and echo work."""
    client = await RawClient.open(node.port)
    await client.handshake(key, node.manager.node_id)
    await client.send_message(encode(make_init()))
    assert decode(await client.receive_message()) == make_init()
    probe = Error(channel_id=ZERO32, code=77, text="echo me")
    await client.send_message(encode(probe))
    assert decode(await client.receive_message()) == probe
    return client


async def test_connect_authenticates_both_sides_and_moves_messages(node: Node) -> None:
    connection = await connect(node.uri, ALICE, FAST)
    assert connection.remote_node_id == node.manager.node_id
    await connection.send(encode(make_init()))
    assert decode(await connection.receive()) == make_init()
    await connection.send(encode(Error(channel_id=ZERO32, code=9, text="hi")))
    assert error_of(await connection.receive()).text == "hi"
    with trio.fail_after(2):
        while node_id(ALICE) not in node.manager.sessions:
            await trio.sleep(0.01)
    assert node.manager.sessions[node_id(ALICE)].remote_init == make_init()
    await connection.aclose()


async def test_connecting_to_the_wrong_key_fails_and_says_so(node: Node) -> None:
    wrong = node_id(CAROL).hex()
    with pytest.raises(WrongPeerKey, match=f"is not {wrong}") as failure:
        await connect(f"{wrong}@127.0.0.1:{node.port}", ALICE, FAST)
    assert failure.value.act == 2
    await (await good_client(node)).aclose()


def drop_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "channeld.transport" and r.levelno >= logging.INFO
            and ("failed" in r.getMessage() or "drop" in r.getMessage())]


async def logged_drop(caplog: pytest.LogCaptureFixture) -> str:
    """The one log line about the dropped peer (the log may trail the socket close slightly)."""
    with trio.fail_after(2):
        while not drop_logs(caplog):
            await trio.sleep(0.005)
    await trio.sleep(0.05)  # room for a duplicate to show up, which would fail the next line
    (record,) = drop_logs(caplog)
    return record.getMessage()


async def test_garbage_instead_of_act_one_is_dropped_and_logged_once(
    node: Node, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "channeld.transport")
    client = await RawClient.open(node.port)
    await client.stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(30))
    assert await client.wait_closed_by_peer() == b""  # no act two, no error: BOLT 8 says hang up
    assert "act 1 failed: bad_version" in await logged_drop(caplog)
    await (await good_client(node)).aclose()


async def test_truncated_act_one_then_silence_times_out(nursery: trio.Nursery) -> None:
    node = await start_node(nursery, TransportLimits(handshake_timeout=0.2, ping_interval=1, idle_timeout=2))
    client = await RawClient.open(node.port)
    await client.stream.send_all(bytes(20))
    with trio.fail_after(2):
        assert await client.wait_closed_by_peer() == b""
    await (await good_client(node)).aclose()


async def test_truncated_act_three_then_hang_up_is_dropped(
    node: Node, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "channeld.transport")
    hs = HandshakeState(Role.INITIATOR, ALICE, node.manager.node_id)
    client = await RawClient.open(node.port)
    await client.stream.send_all(hs.write_act_one())
    hs.read_act_two(await client.read_exactly(50))
    await client.stream.send_all(hs.write_act_three()[:40])
    await client.stream.send_eof()
    assert await client.wait_closed_by_peer() == b""
    assert "act 3 failed: read_failed" in await logged_drop(caplog)
    assert node.manager.sessions == {}


async def test_bad_mac_after_handshake_is_dropped(node: Node, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "channeld.transport")
    client = await RawClient.open(node.port)
    await client.handshake(ALICE, node.manager.node_id)
    assert client.codec is not None
    await client.send_message(encode(make_init()))
    frame = bytearray(client.codec.encrypt(encode(Ping(pong_length=1, padding=b""))))
    frame[-1] ^= 1
    await client.stream.send_all(bytes(frame))
    await client.wait_closed_by_peer()
    assert (await logged_drop(caplog)).endswith("bad MAC on the message")
    await (await good_client(node)).aclose()


async def test_frame_over_the_size_limit_is_dropped_before_its_body(
    node: Node, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "channeld.transport")
    client = await RawClient.open(node.port)
    await client.handshake(ALICE, node.manager.node_id)
    assert client.codec is not None
    await client.send_message(encode(make_init()))
    frame = client.codec.encrypt(bytes(FAST.max_message_size + 1))
    await client.stream.send_all(frame[:18])  # the length prefix alone is enough to refuse
    await client.wait_closed_by_peer()
    assert "4097-byte message; the limit is 4096" in await logged_drop(caplog)
    await (await good_client(node)).aclose()


async def test_undecodable_first_payload_gets_an_error_then_a_drop(
    node: Node, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "channeld.transport")
    client = await RawClient.open(node.port)
    await client.handshake(ALICE, node.manager.node_id)
    await client.send_message(b"\xc1 not msgpack")
    assert decode(await client.receive_message()) == make_init()
    error = error_of(await client.receive_message())
    assert (error.code, error.channel_id) == (ErrorCode.MALFORMED_MESSAGE, ZERO32)
    with pytest.raises(EOFError):
        await client.receive_message()
    assert "not a msgpack message" in await logged_drop(caplog)


async def test_first_message_other_than_init_gets_an_error_then_a_drop(node: Node) -> None:
    client = await RawClient.open(node.port)
    await client.handshake(ALICE, node.manager.node_id)
    await client.send_message(encode(Ping(pong_length=0, padding=b"")))
    assert decode(await client.receive_message()) == make_init()
    assert error_of(await client.receive_message()).code == ErrorCode.INIT_EXPECTED
    with pytest.raises(EOFError):
        await client.receive_message()


async def test_undecodable_payload_mid_session_gets_an_error_then_a_drop(
    node: Node, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "channeld.transport")
    client = await good_client(node)
    await client.send_message(b"\x92\xcc\xf0\x01")  # msgpack [240, 1]: unknown message tag 240
    error = error_of(await client.receive_message())
    assert error.code == ErrorCode.MALFORMED_MESSAGE and "240" in error.text
    with pytest.raises(EOFError):
        await client.receive_message()
    assert "unknown" in (await logged_drop(caplog)).lower()
    await (await good_client(node)).aclose()


async def test_flooding_peer_is_dropped(node: Node, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "channeld.transport")
    client = await good_client(node)
    with pytest.raises(EOFError):
        for _ in range(int(FAST.max_messages_per_second) * 3):
            await client.send_message(encode(Ping(pong_length=0, padding=b"")))
        while True:
            await client.receive_message()
    assert "messages/s" in await logged_drop(caplog)
    await (await good_client(node)).aclose()


async def test_connections_over_the_limit_are_closed_at_once(nursery: trio.Nursery) -> None:
    node = await start_node(nursery, TransportLimits(max_connections=2, handshake_timeout=5))
    idle = [await RawClient.open(node.port) for _ in range(2)]
    extra = await RawClient.open(node.port)
    assert await extra.wait_closed_by_peer(timeout=2) == b""
    for client in idle:
        await client.aclose()
    with trio.fail_after(2):
        while True:  # once the idle ones are gone there is room again
            try:
                await (await good_client(node)).aclose()
                break
            except EOFError:
                await trio.sleep(0.02)


async def test_two_hundred_peers_connect_at_once(nursery: trio.Nursery) -> None:
    node = await start_node(nursery, TransportLimits(max_concurrent_handshakes=32, handshake_timeout=60))
    keys = [coincurve.PrivateKey() for _ in range(200)]
    connected: list[bytes] = []

    async def one(key: coincurve.PrivateKey) -> None:
        connection = await connect(node.uri, key, TransportLimits(handshake_timeout=60))
        await connection.send(encode(make_init()))
        assert decode(await connection.receive()) == make_init()
        connected.append(connection.remote_node_id)
        await connection.aclose()

    with trio.fail_after(60):
        async with trio.open_nursery() as peers:
            for key in keys:
                peers.start_soon(one, key)
    assert len(connected) == 200
