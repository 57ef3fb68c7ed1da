"""`PeerService.send`: straight into the session's queue, and in order through the backlog when it is full.

A real session pair over an in-memory stream (tests/transport/helpers); the peer service under test is
given that session as its partner's current one, as its session manager would after a handshake.
"""

from __future__ import annotations

from pathlib import Path

import trio

from channeld.node import ChannelService, EventBus, PeerService
from channeld.protocol import Signer
from channeld.store import Namespace, Store
from channeld.transport import PeerConnection, Session, TransportLimits, establish_session
from channeld.wire import ZERO32, Error, Init
from tests.transport.helpers import ALICE, connection_pair, make_init

SMALL = TransportLimits(send_queue_size=2, receive_queue_size=2)


def note(n: int) -> Error:
    return Error(channel_id=ZERO32, code=n, text=f"message {n}")


async def _sessions(nursery: trio.Nursery) -> tuple[Session, Session]:
    a_conn, b_conn = await connection_pair(SMALL, lockstep=True)  # b reads only when asked: back-pressure
    found: dict[str, Session] = {}

    async def establish(name: str, connection: PeerConnection, init: Init) -> None:
        found[name] = await establish_session(connection, init)

    async with trio.open_nursery() as both:
        both.start_soon(establish, "a", a_conn, make_init())
        both.start_soon(establish, "b", b_conn, make_init())
    nursery.start_soon(found["a"].run)
    nursery.start_soon(found["b"].run)
    return found["a"], found["b"]


async def test_a_burst_larger_than_the_session_queue_arrives_whole_and_in_order(
        tmp_path: Path, nursery: trio.Nursery) -> None:
    ours, theirs = await _sessions(nursery)
    store = Store.open(tmp_path / "db")
    try:
        ns = Namespace(31337, bytes(20))
        channels = ChannelService(store, ns, Signer(bytes(31) + b"\x01"), EventBus(), lambda p, m: None)
        peers = PeerService(store, channels, EventBus(), make_init(), ALICE, SMALL)
        peers._nursery = nursery  # what `run` sets: where the backlog pump runs
        peers.manager._sessions[ours.node_id] = ours  # what a handshake registers
        for n in range(40):  # 20 times the session's queue, sent without a checkpoint in between
            peers.send(ours.node_id, note(n))
        assert peers._backlogs[ours.node_id].messages  # the overflow waits in the backlog, not dropped
        with trio.fail_after(10):  # a lost message would otherwise hang here
            received = [await theirs.receive() for _ in range(40)]
        assert received == [note(n) for n in range(40)]
    finally:
        store.close()


async def test_a_message_for_a_partner_without_a_session_is_dropped(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db")
    try:
        channels = ChannelService(store, Namespace(1, bytes(20)), Signer(bytes(31) + b"\x01"), EventBus(),
                                  lambda p, m: None)
        peers = PeerService(store, channels, EventBus(), make_init(), ALICE, SMALL)
        peers.send(b"\x02" + bytes(32), note(1))  # re-establish resends what matters on the next session
        assert peers._backlogs == {}
    finally:
        store.close()
