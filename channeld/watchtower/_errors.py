"""Errors of the watchtower: a client's refused push, and the tower's own failures."""

from __future__ import annotations

import enum

from channeld.errors import ChanneldError, LocalFault, PeerFault


class RefusalCode(enum.IntEnum):
    """`PushRefused.code` values (proto/messages.md); the shared codes keep their shared meaning."""

    WRONG_CHANNEL = 18  # chain id or contract is not the tower's
    CONFLICTING_PROOF = 20  # a different proof for the nonce the tower already holds
    INVALID_SIGNATURE = 26  # the proof's signature is malformed or not by the pusher's partner
    STALE = 40
    UNKNOWN_CHANNEL = 41
    NOT_PARTICIPANT = 42
    BAD_AUTHORIZATION = 43
    NOT_WATCHABLE = 44


class PushRefusal(PeerFault):
    """A push the tower will not store; `code` travels back in `PushRefused`."""

    def __init__(self, code: RefusalCode, reason: str) -> None:
        super().__init__(f"{code.name.lower()}: {reason}")
        self.code = code
        self.reason = reason


class TowerError(ChanneldError):
    """The tower cannot do its job (bad database, chain unreachable at start-up)."""


class CorruptTowerRecord(TowerError):
    """A record in the tower's database does not decode: the database is damaged or foreign."""


class ClientMisuse(LocalFault):
    """The tower client was given something it cannot push (wrong chain, malformed proof)."""
