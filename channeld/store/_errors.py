"""Errors of the storage layer, all under `ChanneldError` so callers catch one root."""

from __future__ import annotations

from channeld.errors import ChanneldError, LocalFault


class StoreError(ChanneldError):
    """Something about the data directory or a stored file stops the store from doing its job."""


class StoreLocked(StoreError):
    """Another process (or another `Store` in this one) already has the data directory open."""


class StoreUnavailable(StoreError):
    """The disk refused: read-only directory, disk full, I/O error. Nothing was half-written.

    After a failed write the store stays closed for writes: LevelDB itself refuses further writes
    once its log could not be appended, so the node must be restarted after the disk is fixed.
    """


class StoreClosed(StoreError):
    """The store was closed (or broke down after an I/O error) before the operation ran."""


class SchemaError(StoreError):
    """The data directory's schema version is unknown, newer than this build, or cannot be migrated."""


class BackupRefused(StoreError):
    """A backup file is corrupt, truncated, of a foreign format or version, or the target is not empty."""


class InvalidRecord(LocalFault):
    """A caller passed a malformed key part or value (wrong length, wrong type, too large)."""


def plyvel_message(exc: Exception) -> str:
    """plyvel puts LevelDB's status text in `args[0]` as bytes; make it readable."""
    arg = exc.args[0] if exc.args else ""
    return arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg)
