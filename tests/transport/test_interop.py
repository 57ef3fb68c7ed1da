"""Interop with an independent BOLT 8 implementation (pyln-proto, blocking sockets in a thread)."""

from __future__ import annotations

import socket

import pytest
import trio
from pyln.proto import wire as pyln_wire
from pyln.proto.primitives import PrivateKey as PylnPrivateKey

from channeld.transport import PeerUri, Session, SessionManager, TransportLimits, WrongPeerKey, connect
from channeld.wire import ZERO32, Error, Ping, decode, encode
from tests.transport.helpers import ALICE, BOB, CAROL, make_init, node_id

# 1200 messages each way: well past the key rotations at 500 and 1000 messages.
COUNT = 1200
LIMITS = TransportLimits(max_messages_per_second=100_000)


def numbered(i: int) -> bytes:
    return encode(Error(channel_id=ZERO32, code=i % 65536, text=f"#{i}"))


async def echo(session: Session) -> None:
    async for message in session:
        await session.send(message)


def no_delay(connection: pyln_wire.LightningConnection) -> None:
    # pyln writes the length and the body with two send() calls; without this, Nagle and delayed ACKs
    # add ~40 ms to every message.
    connection.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def read_skipping_pings(connection: pyln_wire.LightningConnection) -> bytes:
    while isinstance(message := decode(raw := connection.read_message()), Ping):
        assert message.pong_length == 0
    return raw


def pyln_client(port: int) -> bytes:
    """Dial our node with pyln, exchange inits, and bounce COUNT messages through its echo."""
    connection = pyln_wire.connect(PylnPrivateKey(ALICE.secret), node_id(BOB), "127.0.0.1", port)
    no_delay(connection)
    try:
        connection.send_message(encode(make_init()))
        their_init = connection.read_message()
        for i in range(COUNT):
            connection.send_message(numbered(i))
            assert read_skipping_pings(connection) == numbered(i), f"echo {i}"
        return their_init
    finally:
        connection.connection.close()


async def test_pyln_initiator_against_our_listener(nursery: trio.Nursery) -> None:
    manager = SessionManager(BOB, make_init(), echo, LIMITS)

    async def hold(*, task_status: trio.TaskStatus[int]) -> None:
        async with manager:
            listener = await manager.listen()
            task_status.started(listener.port)
            await trio.sleep_forever()

    port = await nursery.start(hold)
    with trio.fail_after(60):
        their_init = await trio.to_thread.run_sync(pyln_client, port)
    assert decode(their_init) == make_init()


def pyln_echo_server(server: socket.socket, rounds: int) -> bytes:
    connection, _ = server.accept()
    no_delay(connection)
    try:
        for _ in range(rounds):
            connection.send_message(connection.read_message())
        return bytes(connection.remote_pubkey.serializeCompressed())
    finally:
        connection.connection.close()


def pyln_server() -> pyln_wire.LightningServerSocket:
    server = pyln_wire.LightningServerSocket(PylnPrivateKey(BOB.secret))
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    return server


async def test_our_initiator_against_a_pyln_responder() -> None:
    server = pyln_server()
    port = server.getsockname()[1]
    try:
        async with trio.open_nursery() as nursery:
            seen: list[bytes] = []

            async def serve() -> None:
                seen.append(await trio.to_thread.run_sync(pyln_echo_server, server, COUNT))

            nursery.start_soon(serve)
            with trio.fail_after(60):
                connection = await connect(PeerUri(node_id(BOB), "127.0.0.1", port), ALICE, LIMITS)
                for i in range(COUNT):
                    await connection.send(numbered(i))
                    assert await connection.receive() == numbered(i)
                await connection.aclose()
        assert seen == [node_id(ALICE)]
    finally:
        server.close()


def pyln_dial_wrong_key(port: int) -> str:
    try:
        pyln_wire.connect(PylnPrivateKey(ALICE.secret), node_id(CAROL), "127.0.0.1", port)
    except (ValueError, OSError) as exc:
        return str(exc)
    return "handshake succeeded"


def pyln_accept_wrong_key(server: socket.socket) -> str:
    try:
        connection, _ = server.accept()
    except Exception as exc:  # pyln's own way of failing act one (an InvalidTag from cryptography)
        return type(exc).__name__
    connection.connection.close()
    return "handshake succeeded"


async def test_wrong_key_fails_both_ways_with_pyln(nursery: trio.Nursery) -> None:
    manager = SessionManager(BOB, make_init(), echo, LIMITS)

    async def hold(*, task_status: trio.TaskStatus[int]) -> None:
        async with manager:
            task_status.started((await manager.listen()).port)
            await trio.sleep_forever()

    our_port = await nursery.start(hold)
    with trio.fail_after(10):
        assert "act2" in await trio.to_thread.run_sync(pyln_dial_wrong_key, our_port)

    server = pyln_server()
    try:
        async with trio.open_nursery() as inner:
            verdict: list[str] = []

            async def accept() -> None:
                verdict.append(await trio.to_thread.run_sync(pyln_accept_wrong_key, server))

            inner.start_soon(accept)
            with pytest.raises(WrongPeerKey), trio.fail_after(10):
                await connect(PeerUri(node_id(CAROL), "127.0.0.1", server.getsockname()[1]), ALICE, LIMITS)
        assert verdict != ["handshake succeeded"]
    finally:
        server.close()
