"""Keys, init messages and in-memory connection pairs for the transport tests."""

from __future__ import annotations

import coincurve
import trio
import trio.testing

from channeld.transport import NEED_DATA, FrameCodec, HandshakeState, PeerConnection, Role, TransportLimits
from channeld.transport._connection import open_handshake
from channeld.wire import PROTOCOL_VERSION, Init

ALICE = coincurve.PrivateKey(bytes([0x11]) * 32)
BOB = coincurve.PrivateKey(bytes([0x21]) * 32)
CAROL = coincurve.PrivateKey(bytes([0x31]) * 32)


def node_id(key: coincurve.PrivateKey) -> bytes:
    return key.public_key.format(compressed=True)


def make_init(chain_id: int = 31337) -> Init:
    return Init(protocol_version=PROTOCOL_VERSION, features=b"", chain_id=chain_id, contract=bytes(20))


async def connection_pair(
    limits: TransportLimits | None = None,
    initiator_key: coincurve.PrivateKey = ALICE,
    responder_key: coincurve.PrivateKey = BOB,
    lockstep: bool = False,
) -> tuple[PeerConnection, PeerConnection]:
    """Two authenticated connections over an in-memory stream pair (works with the autojump clock).

    `lockstep` streams have no buffer at all: a write waits until the other side reads, like a TCP
    connection whose windows are full, which is what back-pressure tests need.
    """
    limits = limits or TransportLimits()
    pair = trio.testing.lockstep_stream_pair if lockstep else trio.testing.memory_stream_pair
    left, right = pair()
    result: dict[str, PeerConnection] = {}

    async def initiate() -> None:
        remote = node_id(responder_key)
        result["i"] = await open_handshake(left, Role.INITIATOR, initiator_key, limits, "mem", remote)

    async def respond() -> None:
        result["r"] = await open_handshake(right, Role.RESPONDER, responder_key, limits, "mem")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(initiate)
        nursery.start_soon(respond)
    return result["i"], result["r"]


class RawClient:
    """A deliberately low-level peer built from the sans-io parts, so tests can misbehave on the wire."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.codec: FrameCodec | None = None

    @classmethod
    async def open(cls, port: int) -> RawClient:
        return cls(await trio.open_tcp_stream("127.0.0.1", port))

    async def handshake(self, key: coincurve.PrivateKey, remote: bytes) -> None:
        hs = HandshakeState(Role.INITIATOR, key, remote)
        await self.stream.send_all(hs.write_act_one())
        hs.read_act_two(await self.read_exactly(50))
        await self.stream.send_all(hs.write_act_three())
        self.codec = FrameCodec(hs.split())

    async def read_exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = await self.stream.receive_some(size - len(data))
            if not chunk:
                raise EOFError(f"closed after {len(data)} bytes")
            data += chunk
        return data

    async def send_message(self, payload: bytes) -> None:
        assert self.codec is not None
        try:
            await self.stream.send_all(self.codec.encrypt(payload))
        except trio.BrokenResourceError:
            raise EOFError("reset by peer") from None

    async def receive_message(self) -> bytes:
        """The next message, or EOFError when the other side hung up."""
        assert self.codec is not None
        while (message := self.codec.next_message()) is NEED_DATA:
            try:
                chunk = await self.stream.receive_some(65536)
            except trio.BrokenResourceError:
                chunk = b""
            if not chunk:
                raise EOFError("closed")
            self.codec.receive_data(chunk)
        assert isinstance(message, bytes)
        return message

    async def wait_closed_by_peer(self, timeout: float = 5.0) -> bytes:
        """Everything the peer still sent (raw) until it closed; fails the test if it does not close."""
        data = b""
        with trio.fail_after(timeout):
            while True:
                try:
                    chunk = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    return data
                if not chunk:
                    return data
                data += chunk

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)
