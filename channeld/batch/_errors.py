"""Errors of batch building and checking."""

from __future__ import annotations

from channeld.errors import LocalFault, PeerFault


class InvalidBatch(LocalFault):
    """A batch, entry, tree or key given to these functions is malformed."""


class BatchRefused(PeerFault):
    """What a hub asked a partner to sign is not what the partner agreed to (wrong entry, path or root)."""


class InvalidBlsData(PeerFault):
    """BLS bytes from outside (a key, proof or signature) are malformed or do not verify."""
