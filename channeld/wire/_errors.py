"""Errors of the wire layer: a peer's bytes that do not decode, and our own values that do not encode."""

from channeld.errors import LocalFault, PeerFault


class DecodeError(PeerFault):
    """The peer sent bytes that are not a valid message (the text says which rule failed)."""


class UnknownMessageType(DecodeError):
    """The type tag is not in the catalogue."""


class UnsupportedVersion(DecodeError):
    """The message type is known but not at this version."""


class InvalidField(DecodeError):
    """A field is missing, extra, of the wrong type, out of range or oversized."""


class MessageTooLarge(DecodeError):
    """The encoded message is longer than `MAX_MESSAGE_SIZE` bytes."""


class InvalidMessage(LocalFault, ValueError):
    """We tried to build a message with a value its field does not allow (a bug on our side)."""
