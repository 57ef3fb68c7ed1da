"""Peer addresses: `<33-byte compressed pubkey hex>@host:port`."""

from __future__ import annotations

from dataclasses import dataclass

from channeld.transport._errors import BadPeerUri
from channeld.transport._noise import parse_public_key


def parse_node_id(text: str) -> bytes:
    """A node id (compressed secp256k1 public key) from its 66 hex digits."""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise BadPeerUri(f"node id {text[:80]!r} is not hex") from None
    if parse_public_key(raw) is None:
        raise BadPeerUri(f"node id {text[:80]!r} is not a 33-byte compressed secp256k1 public key")
    return raw


@dataclass(frozen=True, slots=True)
class PeerUri:
    node_id: bytes
    host: str
    port: int

    def __post_init__(self) -> None:
        if parse_public_key(self.node_id) is None:
            raise BadPeerUri("node id is not a 33-byte compressed secp256k1 public key")
        if not self.host or any(c.isspace() for c in self.host):
            raise BadPeerUri(f"bad host {self.host!r}")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise BadPeerUri(f"port must be 1..65535, got {self.port!r}")

    @classmethod
    def parse(cls, text: str) -> PeerUri:
        node_hex, at, address = text.partition("@")
        if not at:
            raise BadPeerUri(f"peer address {text[:120]!r} lacks '@': expected <pubkey-hex>@host:port")
        host, colon, port_text = address.rpartition(":")
        if not colon or not port_text.isdigit():
            raise BadPeerUri(f"peer address {text[:120]!r} lacks a numeric :port")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            raise BadPeerUri(f"IPv6 host in {text[:120]!r} must be written in [brackets]")
        return cls(parse_node_id(node_hex), host, int(port_text))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.node_id.hex()}@{host}:{self.port}"
