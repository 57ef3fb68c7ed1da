"""msgpack encoding of messages: `encode`/`decode` for one framed payload, `MessageStream` for a stream.

A message is the msgpack array `[tag, version, field1, field2, ...]`. Decoding is strict: anything that is
not exactly a catalogued message raises a `DecodeError` (a `PeerFault`), never another exception.
"""

from __future__ import annotations

from typing import Any, NoReturn

import msgpack

from channeld.errors import LocalFault
from channeld.wire._errors import DecodeError, InvalidField, MessageTooLarge
from channeld.wire._part import Message, message_from_wire

# a BOLT 8 frame carries at most 65535 bytes of plaintext; one message never spans two frames
MAX_MESSAGE_SIZE = 65535
# no field nests deeper than a message holding a structure
_MAX_ARRAY = 16


def _refuse_ext(code: int, data: bytes) -> NoReturn:
    raise InvalidField(f"msgpack extension type {code} is not used by this protocol")


_LIMITS: dict[str, Any] = dict(
    raw=False,
    use_list=True,
    strict_map_key=True,
    max_str_len=MAX_MESSAGE_SIZE,
    max_bin_len=MAX_MESSAGE_SIZE,
    max_array_len=_MAX_ARRAY,
    max_map_len=0,
    max_ext_len=0,
    ext_hook=_refuse_ext,
)

# what msgpack raises on malformed input; all become a DecodeError
_MSGPACK_ERRORS = (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError,
                   UnicodeDecodeError, OverflowError)


def encode(msg: Message) -> bytes:
    """The bytes of one message."""
    if not isinstance(msg, Message):
        raise LocalFault(f"not a wire message: {type(msg).__name__}")
    return msgpack.packb([msg.TAG, msg.VERSION, *msg.to_wire()], use_bin_type=True)


def decode(data: bytes) -> Message:
    """The one message in `data` (nothing may follow it), or a `DecodeError` saying what is wrong."""
    if len(data) > MAX_MESSAGE_SIZE:
        raise MessageTooLarge(f"message of {len(data)} bytes (limit {MAX_MESSAGE_SIZE})")
    try:
        value = msgpack.unpackb(data, **_LIMITS)
    except DecodeError:
        raise
    except _MSGPACK_ERRORS as exc:
        raise InvalidField(f"not a msgpack message: {type(exc).__name__}") from None
    return message_from_wire(value)


class MessageStream:
    """Bytes in, messages out, for transports without their own framing (h11-style, no IO).

    `receive_data(chunk)` buffers bytes; `next_message()` returns the next complete message or None when
    more bytes are needed. After a `DecodeError` the stream is unusable: the peer must be disconnected.
    """

    def __init__(self) -> None:
        self._unpacker = msgpack.Unpacker(max_buffer_size=2 * MAX_MESSAGE_SIZE, **_LIMITS)
        self._broken: DecodeError | None = None

    def receive_data(self, data: bytes) -> None:
        self._raise_if_broken()
        try:
            self._unpacker.feed(data)
        except msgpack.BufferFull:
            self._fail(MessageTooLarge(f"more than {2 * MAX_MESSAGE_SIZE} bytes buffered without a message"))

    def next_message(self) -> Message | None:
        self._raise_if_broken()
        start = self._unpacker.tell()
        try:
            value = self._unpacker.unpack()
        except msgpack.OutOfData:
            return None
        except DecodeError as exc:
            self._fail(exc)
        except _MSGPACK_ERRORS as exc:
            self._fail(InvalidField(f"not a msgpack message: {type(exc).__name__}"))
        size = self._unpacker.tell() - start
        if size > MAX_MESSAGE_SIZE:
            self._fail(MessageTooLarge(f"message of {size} bytes (limit {MAX_MESSAGE_SIZE})"))
        try:
            return message_from_wire(value)
        except DecodeError as exc:
            self._fail(exc)

    def _fail(self, error: DecodeError) -> NoReturn:
        self._broken = error
        raise error

    def _raise_if_broken(self) -> None:
        if self._broken is not None:
            raise DecodeError(f"stream already failed: {self._broken}")
