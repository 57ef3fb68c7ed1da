"""The public face of channeld.transport, the handshake slot limit, and the framing speed figure."""

from __future__ import annotations

import time

import trio

import channeld.transport as transport
from channeld.transport import FrameDecoder, FrameEncoder, Listener, PeerConnection, TransportLimits
from tests.transport.helpers import ALICE, BOB, RawClient, node_id

PUBLIC = {
    "NEED_DATA", "Backoff", "BadPeerUri", "CipherState", "ConnectionClosed", "ConnectionStatistics",
    "ErrorCode", "FrameCodec", "FrameDecoder", "FrameEncoder", "FrameError", "HandshakeError",
    "Cut", "CutPoint", "FaultPlan", "InjectedCut",
    "HandshakeState", "Listener", "ListenerStatistics", "PayloadError", "PeerConnection", "PeerTimeout",
    "PeerUri", "RateLimited", "Role", "SendQueueFull", "Session", "SessionHandler", "SessionManager",
    "SessionReplaced", "SessionStatistics", "SymmetricState", "TransportError", "TransportKeys",
    "TransportLimits", "TransportMisuse", "WrongPeerKey", "connect", "establish_session", "parse_node_id",
}


def test_public_api_is_what_we_document() -> None:
    assert set(transport.__all__) == PUBLIC
    for name in PUBLIC - {"SessionHandler", "NEED_DATA"}:  # a type alias and an enum member
        assert getattr(transport, name).__module__.startswith("channeld.transport"), name


def test_framing_costs_a_few_microseconds_per_message() -> None:
    encoder, decoder = FrameEncoder(bytes(32), bytes(32)), FrameDecoder(bytes(32), bytes(32))
    message = bytes(200)  # about one signed balance proof with its envelope
    rounds = 5000
    started = time.perf_counter()
    for _ in range(rounds):
        decoder.receive_data(encoder.encrypt(message))
        assert decoder.next_message() == message
    micros = (time.perf_counter() - started) / rounds * 1e6
    print(f"\nBOLT 8 encrypt+decrypt of a 200-byte message: {micros:.1f} us")
    assert micros < 200, "framing got pathologically slow"


async def test_handshakes_beyond_the_limit_wait_for_a_slot(nursery: trio.Nursery) -> None:
    accepted: list[bytes] = []

    async def keep(connection: PeerConnection) -> None:
        accepted.append(connection.remote_node_id)

    limits = TransportLimits(max_concurrent_handshakes=1, handshake_timeout=0.5)
    listener: Listener = await nursery.start(Listener(BOB, keep, limits).serve)
    stalled = await RawClient.open(listener.port)  # takes the only slot and says nothing
    with trio.fail_after(2):
        while listener.statistics().handshakes_in_progress == 0:
            await trio.sleep(0.005)
    await trio.sleep(0.25)  # half the stalled one's timeout gone: the next one's wait ends later
    waiting = await RawClient.open(listener.port)
    started = trio.current_time()
    async with trio.open_nursery() as inner:
        inner.start_soon(waiting.handshake, ALICE, node_id(BOB))
        await trio.sleep(0.1)
        assert listener.statistics().handshakes_in_progress == 1  # the second one is queued, not running
    assert trio.current_time() - started >= 0.15  # it ran only once the stalled one timed out
    with trio.fail_after(2):
        while not accepted:
            await trio.sleep(0.005)
    assert accepted == [node_id(ALICE)]
    assert listener.statistics().failed_handshakes == 1
    await stalled.aclose()
    await waiting.aclose()
