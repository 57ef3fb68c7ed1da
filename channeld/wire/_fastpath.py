"""Per-structure decoders and encoders generated once at import, as dataclasses generates __init__.

Decoding a payment field by field through `Kind` objects costs a Python call per field; this hot path
(every payment crosses it twice) instead runs one generated function with the checks inlined. The
generated decoder only answers "valid, here is the object" or "not valid" (None); on "not valid" the
generic per-field path runs again to raise the precise `InvalidField`. Tests decode every invalid case
through both and compare.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from channeld.wire._fields import FixedBytes, Kind, Nested, Text, Uint, VarBytes

Decoder = Callable[[Any], Any]
Encoder = Callable[[Any], list[Any]]


def _check_expr(i: int, kind: Kind) -> str:
    """A boolean expression, true when wire value v{i} is valid for `kind`."""
    v = f"v{i}"
    if isinstance(kind, Uint):
        if kind.bits > 64:
            return f"type({v}) is bytes and len({v}) == 32"
        return f"type({v}) is int and 0 <= {v} < {kind.limit}"
    if isinstance(kind, FixedBytes):
        return f"type({v}) is bytes and len({v}) == {kind.size}"
    if isinstance(kind, VarBytes):
        return f"type({v}) is bytes and len({v}) <= {kind.max_size}"
    if isinstance(kind, Text):
        return f"type({v}) is str and len({v}.encode('utf-8')) <= {kind.max_size}"
    if isinstance(kind, Nested):
        return "True"  # checked by the nested structure's own decoder below
    raise TypeError(f"no fast path for kind {kind.label}")


def compile_decoder(cls: type, fields: tuple[tuple[str, Kind], ...], has_rule: bool) -> Decoder:
    names = ", ".join(f"v{i}" for i in range(len(fields))) + ","
    lines = [
        "def decode(values):",
        f"    if type(values) is not list or len(values) != {len(fields)}:",
        "        return None",
        f"    {names} = values",
        "    if not (" + " and ".join(_check_expr(i, k) for i, (_, k) in enumerate(fields)) + "):",
        "        return None",
    ]
    namespace: dict[str, Any] = {"cls": cls, "new": object.__new__, "setattr_": object.__setattr__,
                                 "from_bytes": int.from_bytes}
    for i, (_, kind) in enumerate(fields):
        if isinstance(kind, Uint) and kind.bits > 64:
            lines.append(f"    v{i} = from_bytes(v{i}, 'big')")
        elif isinstance(kind, Nested):
            namespace[f"nested{i}"] = kind.part.fast_decode  # type: ignore[attr-defined]
            lines += [f"    v{i} = nested{i}(v{i})", f"    if v{i} is None:", "        return None"]
    lines.append("    obj = new(cls)")
    lines += [f"    setattr_(obj, {name!r}, v{i})" for i, (name, _) in enumerate(fields)]
    if has_rule:
        lines += ["    if obj.rule_violation() is not None:", "        return None"]
    lines.append("    return obj")
    exec("\n".join(lines), namespace)  # the source is built above from our own field table only
    decoder: Decoder = namespace["decode"]
    return decoder


def compile_encoder(fields: tuple[tuple[str, Kind], ...]) -> Encoder:
    items = []
    for name, kind in fields:
        if isinstance(kind, Uint) and kind.bits > 64:
            items.append(f"obj.{name}.to_bytes(32, 'big')")
        elif isinstance(kind, Nested):
            items.append(f"obj.{name}.to_wire()")
        else:
            items.append(f"obj.{name}")
    namespace: dict[str, Any] = {}
    exec("def encode(obj):\n    return [" + ", ".join(items) + "]", namespace)
    encoder: Encoder = namespace["encode"]
    return encoder


Builder = Callable[..., Any]


def compile_builder(cls: type, fields: tuple[tuple[str, Kind], ...]) -> Builder:
    """A constructor that sets the slots without the per-field checks of `__post_init__`.

    For structures the caller has just computed from values that are already valid (our own next proof,
    an acknowledgement of a proof we decoded): the checks would re-prove what is known. Anything built
    from outside input must go through the checked constructor or the decoder instead.
    """
    names = [name for name, _ in fields]
    lines = [f"def build({', '.join(names)}):", "    obj = new(cls)"]
    lines += [f"    setattr_(obj, {name!r}, {name})" for name in names]
    lines.append("    return obj")
    namespace: dict[str, Any] = {"cls": cls, "new": object.__new__, "setattr_": object.__setattr__}
    exec("\n".join(lines), namespace)  # the source is built above from our own field table only
    builder: Builder = namespace["build"]
    return builder
