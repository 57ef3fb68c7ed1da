"""The base of every wire structure: typed fields, checked when built, strict when decoded."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, ClassVar, TypeVar

from channeld.wire._errors import InvalidField, InvalidMessage, UnknownMessageType, UnsupportedVersion
from channeld.wire._fields import Kind, Nested

P = TypeVar("P", bound="Part")
M = TypeVar("M", bound="Message")

_set = object.__setattr__


class Part:
    """A frozen, slotted structure whose fields are `Annotated[type, Kind]`; invalid ones cannot exist."""

    __slots__ = ()
    FIELDS: ClassVar[tuple[tuple[str, Kind], ...]] = ()

    def __post_init__(self) -> None:
        for name, kind in self.FIELDS:
            kind.check(name, getattr(self, name))
        problem = self.rule_violation()
        if problem is not None:
            raise InvalidMessage(f"{type(self).__name__}: {problem}")

    def rule_violation(self) -> str | None:
        """A rule across fields that this structure breaks, or None; overridden where there is one."""
        return None

    def to_wire(self) -> list[Any]:
        return [kind.to_wire(getattr(self, name)) for name, kind in self.FIELDS]

    @classmethod
    def from_wire_fields(cls: type[P], where: str, values: Any) -> P:
        fields = cls.FIELDS
        if type(values) is not list or len(values) != len(fields):
            raise InvalidField(f"{where}: expected {cls.__name__} with {len(fields)} fields")
        obj = cls.__new__(cls)
        for (name, kind), value in zip(fields, values, strict=True):
            _set(obj, name, kind.from_wire(name, value))
        problem = obj.rule_violation()
        if problem is not None:
            raise InvalidField(f"{cls.__name__}: {problem}")
        return obj


class Message(Part):
    """A top-level wire message: a stable integer `TAG` and a `VERSION` travel before the fields."""

    __slots__ = ()
    TAG: ClassVar[int] = 0
    VERSION: ClassVar[int] = 1


CATALOGUE: dict[int, type[Message]] = {}


def part(cls: type[P]) -> type[P]:
    """Record the field kinds of a dataclass `Part` (apply on top of `@dataclass(frozen, slots)`)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    kinds = []
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        kinds.append((field.name, _kind_of(cls, field.name, hints[field.name])))
    cls.FIELDS = tuple(kinds)
    return cls


def _kind_of(cls: type, name: str, hint: Any) -> Kind:
    if isinstance(hint, type) and issubclass(hint, Part):
        return Nested(hint)
    metadata: tuple[Any, ...] = getattr(hint, "__metadata__", ())
    if len(metadata) != 1 or not isinstance(metadata[0], Kind):
        raise TypeError(f"{cls.__name__}.{name} has no wire kind")
    return metadata[0]


def message(tag: int) -> typing.Callable[[type[M]], type[M]]:
    """Register a `Message` dataclass under its stable type tag."""

    def register(cls: type[M]) -> type[M]:
        if tag in CATALOGUE:
            raise TypeError(f"tag {tag} used twice ({CATALOGUE[tag].__name__}, {cls.__name__})")
        part(cls)
        cls.TAG = tag
        CATALOGUE[tag] = cls
        return cls

    return register


def message_from_wire(value: Any) -> Message:
    """Turn one unpacked msgpack value into a message, or raise a `DecodeError` saying why not."""
    if type(value) is not list or len(value) < 2:
        raise InvalidField("a message is an array [type, version, fields...]")
    tag, version = value[0], value[1]
    cls = CATALOGUE.get(tag) if type(tag) is int else None
    if cls is None:
        raise UnknownMessageType(f"unknown message type {tag!r}"[:80])
    if version != cls.VERSION or type(version) is not int:
        raise UnsupportedVersion(f"{cls.__name__} version {version!r} (supported: {cls.VERSION})"[:80])
    return cls.from_wire_fields(cls.__name__, value[2:])
