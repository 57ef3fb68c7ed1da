"""Field kinds: how one value is checked, put on the wire and taken off it.

A message field is declared as `Annotated[python_type, kind]`. The kind checks a value when a message is
built locally (`check`, raising `InvalidMessage`), and converts to and from the msgpack value
(`to_wire`/`from_wire`, the latter raising `InvalidField` for a peer's bad value). msgpack integers stop
at 64 bits, so a uint256 travels as exactly 32 big-endian bytes; narrower unsigned integers travel as
msgpack integers.
"""

from __future__ import annotations

from typing import Annotated, Any

from channeld.wire._errors import InvalidField, InvalidMessage


class Kind:
    """Base of the field kinds; `label` names the kind in error texts."""

    __slots__ = ("label",)

    def __init__(self, label: str) -> None:
        self.label = label

    def check(self, name: str, value: Any) -> None:
        raise InvalidMessage(f"{name}: no check for kind {self.label}")

    def to_wire(self, value: Any) -> Any:
        return value

    def from_wire(self, name: str, value: Any) -> Any:
        raise InvalidField(f"{name}: no decoder for kind {self.label}")


class Uint(Kind):
    """An unsigned integer of `bits` bits; 256-bit ones travel as 32 big-endian bytes."""

    __slots__ = ("bits", "limit")

    def __init__(self, bits: int) -> None:
        super().__init__(f"uint{bits}")
        self.bits = bits
        self.limit = 1 << bits

    def check(self, name: str, value: Any) -> None:
        # bool is an int subclass; a flag is never an amount
        if type(value) is not int or not 0 <= value < self.limit:
            raise InvalidMessage(f"{name}: expected {self.label}, got {value!r}")

    def to_wire(self, value: int) -> Any:
        return value.to_bytes(32, "big") if self.bits > 64 else value

    def from_wire(self, name: str, value: Any) -> int:
        if self.bits > 64:
            if type(value) is not bytes or len(value) != 32:
                raise InvalidField(f"{name}: expected {self.label} as 32 bytes, got {_describe(value)}")
            return int.from_bytes(value, "big")
        if type(value) is not int or not 0 <= value < self.limit:
            raise InvalidField(f"{name}: expected {self.label}, got {_describe(value)}")
        return value


class FixedBytes(Kind):
    """A byte string of exactly `size` bytes (ids, hashes, addresses, signatures)."""

    __slots__ = ("size",)

    def __init__(self, size: int, label: str) -> None:
        super().__init__(label)
        self.size = size

    def check(self, name: str, value: Any) -> None:
        if type(value) is not bytes or len(value) != self.size:
            raise InvalidMessage(f"{name}: expected {self.label} ({self.size} bytes), got {value!r}")

    def from_wire(self, name: str, value: Any) -> bytes:
        if type(value) is not bytes or len(value) != self.size:
            raise InvalidField(f"{name}: expected {self.label} ({self.size} bytes), got {_describe(value)}")
        return value


class VarBytes(Kind):
    """A byte string of at most `max_size` bytes."""

    __slots__ = ("max_size",)

    def __init__(self, max_size: int) -> None:
        super().__init__(f"bytes<={max_size}")
        self.max_size = max_size

    def check(self, name: str, value: Any) -> None:
        if type(value) is not bytes or len(value) > self.max_size:
            raise InvalidMessage(f"{name}: expected {self.label}, got {_describe(value)}")

    def from_wire(self, name: str, value: Any) -> bytes:
        if type(value) is not bytes or len(value) > self.max_size:
            raise InvalidField(f"{name}: expected {self.label}, got {_describe(value)}")
        return value


class Text(Kind):
    """A UTF-8 string of at most `max_size` encoded bytes."""

    __slots__ = ("max_size",)

    def __init__(self, max_size: int) -> None:
        super().__init__(f"text<={max_size}")
        self.max_size = max_size

    def check(self, name: str, value: Any) -> None:
        if type(value) is not str or len(value.encode("utf-8", "surrogatepass")) > self.max_size:
            raise InvalidMessage(f"{name}: expected {self.label}, got {_describe(value)}")

    def from_wire(self, name: str, value: Any) -> str:
        # the unpacker already refused invalid UTF-8; a str's encoded length is what crossed the wire
        if type(value) is not str or len(value.encode("utf-8")) > self.max_size:
            raise InvalidField(f"{name}: expected {self.label}, got {_describe(value)}")
        return value


class Nested(Kind):
    """A structure (a `Part` subclass) carried as a msgpack array inside a message."""

    __slots__ = ("part",)

    def __init__(self, part: type) -> None:
        super().__init__(part.__name__)
        self.part = part

    def check(self, name: str, value: Any) -> None:
        if type(value) is not self.part:
            raise InvalidMessage(f"{name}: expected {self.label}, got {type(value).__name__}")

    def to_wire(self, value: Any) -> Any:
        return value.to_wire()

    def from_wire(self, name: str, value: Any) -> Any:
        return self.part.from_wire_fields(name, value)  # type: ignore[attr-defined]


def _describe(value: Any) -> str:
    """A short description of a bad value, safe to put in an error text (never the whole blob)."""
    if isinstance(value, bytes | str):
        return f"{type(value).__name__} of length {len(value)}"
    if isinstance(value, list | tuple | dict):
        return f"{type(value).__name__} of {len(value)} items"
    return f"{type(value).__name__} {value!r}"[:80]


U8 = Annotated[int, Uint(8)]
U16 = Annotated[int, Uint(16)]
U32 = Annotated[int, Uint(32)]
U64 = Annotated[int, Uint(64)]
U256 = Annotated[int, Uint(256)]
Bytes32 = Annotated[bytes, FixedBytes(32, "bytes32")]
Address = Annotated[bytes, FixedBytes(20, "address")]
Signature = Annotated[bytes, FixedBytes(65, "signature")]
Metadata = Annotated[bytes, VarBytes(1024)]
Features = Annotated[bytes, VarBytes(64)]
ChainList = Annotated[bytes, VarBytes(15 * 28)]  # Init's further chains: 28-byte entries (wire/_messages.py)
Padding = Annotated[bytes, VarBytes(65000)]
ErrorText = Annotated[str, Text(1024)]
