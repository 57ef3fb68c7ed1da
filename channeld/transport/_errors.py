"""Transport errors: what a peer did wrong (`PeerFault`) and what we did wrong (`LocalFault`)."""

from __future__ import annotations

from channeld.errors import ConfigError, LocalFault, PeerFault


class TransportError(PeerFault):
    """The peer broke the transport rules; the connection is dropped."""


class HandshakeError(TransportError):
    """A BOLT 8 act failed. `act` is 1, 2 or 3 and `reason` one of the `REASONS`."""

    REASONS = ("read_failed", "bad_version", "bad_pubkey", "bad_tag", "bad_ciphertext", "timeout")

    def __init__(self, act: int, reason: str, detail: str = "") -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown handshake failure reason {reason!r}")
        self.act = act
        self.reason = reason
        super().__init__(f"handshake act {act} failed: {reason}" + (f" ({detail})" if detail else ""))


class WrongPeerKey(HandshakeError):
    """We dialled a node id the remote end does not hold.

    A responder that cannot open act one hangs up without a word (BOLT 8), so this surfaces as act two
    failing: either its tag does not check out or the connection closes before it arrives.
    """

    def __init__(self, expected_hex: str, reason: str) -> None:
        super().__init__(2, reason, f"the peer at this address is not {expected_hex}")
        self.expected_hex = expected_hex


class FrameError(TransportError):
    """A frame after the handshake was malformed: bad tag, too large, or truncated."""


class PayloadError(TransportError):
    """A frame decrypted fine but its payload is not a message we can decode."""


class PeerTimeout(TransportError):
    """The peer was silent for longer than the limits allow."""


class RateLimited(TransportError):
    """The peer sent more messages per second than the limits allow."""


class ConnectionClosed(TransportError):
    """The peer (or we) closed the connection; no more messages will arrive."""


class TransportMisuse(LocalFault):
    """An operation was called out of order or with an invalid argument."""


class SendQueueFull(LocalFault):
    """`send_nowait` found the bounded send queue full."""


class BadPeerUri(ConfigError):
    """A peer address is not `<33-byte compressed pubkey hex>@host:port`."""
