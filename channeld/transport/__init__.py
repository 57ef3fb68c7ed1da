"""BOLT 8 encrypted, authenticated peer sessions over TCP on trio (normative notes: proto/transport.md).

Layers, bottom up:
- `HandshakeState`, `FrameCodec`: sans-io Noise_XK_secp256k1_ChaChaPoly_SHA256 handshake and framing.
- `PeerConnection`: an authenticated connection moving whole messages as bytes;
  `connect(uri, key)` dials one, `Listener` accepts them.
- `Session`: an initialised connection (`Init` exchanged) carrying `channeld.wire` messages, with ping
  keep-alive, an idle timeout and bounded send/receive queues.
- `SessionManager`: one session per peer node id, inbound and outbound, with reconnect loops.
- `FaultPlan`: for tests only, connection cuts just before or after chosen messages are sent.
"""

from channeld.transport._connection import ConnectionStatistics, PeerConnection
from channeld.transport._errors import (
    BadPeerUri,
    ConnectionClosed,
    FrameError,
    HandshakeError,
    PayloadError,
    PeerTimeout,
    RateLimited,
    SendQueueFull,
    TransportError,
    TransportMisuse,
    WrongPeerKey,
)
from channeld.transport._faults import Cut, CutPoint, FaultPlan, InjectedCut
from channeld.transport._framing import NEED_DATA, FrameCodec, FrameDecoder, FrameEncoder
from channeld.transport._limits import TransportLimits
from channeld.transport._listener import Listener, ListenerStatistics, connect
from channeld.transport._manager import Backoff, SessionHandler, SessionManager, SessionReplaced
from channeld.transport._noise import CipherState, HandshakeState, Role, SymmetricState, TransportKeys
from channeld.transport._session import ErrorCode, Session, SessionStatistics, establish_session
from channeld.transport._uri import PeerUri, parse_node_id

__all__ = [
    "NEED_DATA",
    "Backoff",
    "BadPeerUri",
    "CipherState",
    "ConnectionClosed",
    "ConnectionStatistics",
    "Cut",
    "CutPoint",
    "ErrorCode",
    "FaultPlan",
    "FrameCodec",
    "FrameDecoder",
    "FrameEncoder",
    "FrameError",
    "HandshakeError",
    "HandshakeState",
    "InjectedCut",
    "Listener",
    "ListenerStatistics",
    "PayloadError",
    "PeerConnection",
    "PeerTimeout",
    "PeerUri",
    "RateLimited",
    "Role",
    "SendQueueFull",
    "Session",
    "SessionHandler",
    "SessionManager",
    "SessionReplaced",
    "SessionStatistics",
    "SymmetricState",
    "TransportError",
    "TransportKeys",
    "TransportLimits",
    "TransportMisuse",
    "WrongPeerKey",
    "connect",
    "establish_session",
    "parse_node_id",
]
