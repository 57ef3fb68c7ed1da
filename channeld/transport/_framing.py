"""BOLT 8 message framing after the handshake, sans-io.

Each message travels as `encrypted 2-byte length || tag || encrypted body || tag`. Every key is rotated
after 1000 uses (500 messages) with `ck', k' = HKDF(ck, k)`. `FrameDecoder` takes bytes in any chunking
and hands back whole messages (or `NEED_DATA`), h11 style; `FrameEncoder` turns messages into bytes.
"""

from __future__ import annotations

import enum
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from channeld.transport._errors import FrameError, TransportMisuse
from channeld.transport._noise import TransportKeys, hkdf

MAX_BOLT8_MESSAGE = 65535
TAG_SIZE = 16
HEADER_SIZE = 2 + TAG_SIZE
ROTATE_AFTER = 1000

_NONCE = struct.Struct("<4xQ")
_LENGTH = struct.Struct(">H")


class _Sentinel(enum.Enum):
    NEED_DATA = "NEED_DATA"


NEED_DATA = _Sentinel.NEED_DATA


class _RotatingKey:
    """One direction's key, nonce and chaining key; rotates itself every `ROTATE_AFTER` uses."""

    __slots__ = ("aead", "chaining_key", "key", "nonce")

    def __init__(self, key: bytes, chaining_key: bytes) -> None:
        self.key = key
        self.chaining_key = chaining_key
        self.nonce = 0
        self.aead = ChaCha20Poly1305(key)

    def take(self) -> tuple[ChaCha20Poly1305, bytes]:
        """The cipher and nonce for one use; after the 1000th use the key is replaced, so no nonce repeats."""
        aead, n = self.aead, self.nonce
        if n == ROTATE_AFTER - 1:
            self._rotate()
        else:
            self.nonce = n + 1
        return aead, _NONCE.pack(n)

    def _rotate(self) -> None:
        self.chaining_key, self.key = hkdf(self.chaining_key, self.key)
        self.nonce = 0
        self.aead = ChaCha20Poly1305(self.key)


class _FrameCipher:
    """One direction of framing: its rotating key and the largest message it carries."""

    __slots__ = ("_key", "max_message_size")

    def __init__(self, key: bytes, chaining_key: bytes, max_message_size: int = MAX_BOLT8_MESSAGE) -> None:
        self._key = _RotatingKey(key, chaining_key)
        self.max_message_size = min(max_message_size, MAX_BOLT8_MESSAGE)

    @property
    def nonce(self) -> int:
        return self._key.nonce

    @property
    def key(self) -> bytes:
        return self._key.key


class FrameEncoder(_FrameCipher):
    """Encrypts outgoing messages to wire bytes."""

    __slots__ = ()

    def encrypt(self, message: bytes) -> bytes:
        size = len(message)
        if size > self.max_message_size:
            raise TransportMisuse(f"message of {size} bytes exceeds the limit of {self.max_message_size}")
        aead, nonce = self._key.take()
        header = aead.encrypt(nonce, _LENGTH.pack(size), None)
        aead, nonce = self._key.take()
        return header + aead.encrypt(nonce, message, None)


class FrameDecoder(_FrameCipher):
    """Accepts raw bytes, yields decrypted messages. Any authentication failure is final."""

    __slots__ = ("_body_size", "_buffer", "_failed")

    def __init__(self, key: bytes, chaining_key: bytes, max_message_size: int = MAX_BOLT8_MESSAGE) -> None:
        super().__init__(key, chaining_key, max_message_size)
        self._buffer = bytearray()
        self._body_size: int | None = None
        self._failed = False

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def receive_data(self, data: bytes | bytearray) -> None:
        if self._failed:
            raise TransportMisuse("the frame decoder failed earlier; the connection must be dropped")
        self._buffer += data

    def next_message(self) -> bytes | _Sentinel:
        if self._failed:
            raise TransportMisuse("the frame decoder failed earlier; the connection must be dropped")
        if self._body_size is None:
            if len(self._buffer) < HEADER_SIZE:
                return NEED_DATA
            self._body_size = self._open_header()
        needed = self._body_size + TAG_SIZE
        if len(self._buffer) < needed:
            return NEED_DATA
        body = self._open(needed, "message")
        self._body_size = None
        return body

    def _open_header(self) -> int:
        size: int = _LENGTH.unpack(self._open(HEADER_SIZE, "length prefix"))[0]
        if size > self.max_message_size:
            self._failed = True
            raise FrameError(f"peer announced a {size}-byte message; the limit is {self.max_message_size}")
        return size

    def _open(self, count: int, what: str) -> bytes:
        aead, nonce = self._key.take()
        with memoryview(self._buffer) as view:
            try:
                plaintext = aead.decrypt(nonce, view[:count], None)
            except InvalidTag:
                self._failed = True
                raise FrameError(f"bad MAC on the {what}") from None
        del self._buffer[:count]
        return plaintext


class FrameCodec:
    """Both directions of one session."""

    __slots__ = ("decoder", "encoder")

    def __init__(self, keys: TransportKeys, max_message_size: int = MAX_BOLT8_MESSAGE) -> None:
        self.encoder = FrameEncoder(keys.send_key, keys.chaining_key, max_message_size)
        self.decoder = FrameDecoder(keys.receive_key, keys.chaining_key, max_message_size)

    def encrypt(self, message: bytes) -> bytes:
        return self.encoder.encrypt(message)

    def receive_data(self, data: bytes | bytearray) -> None:
        self.decoder.receive_data(data)

    def next_message(self) -> bytes | _Sentinel:
        return self.decoder.next_message()
