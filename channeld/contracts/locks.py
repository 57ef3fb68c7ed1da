"""Hash time locks as the contract takes them (proto/locks.md): packing, locks root, secret hash.

Pure functions; the binding (channeld.chain.contract) re-exports them beside `encode_unlock`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from eth_utils import keccak

from channeld.errors import LocalFault

ZERO_ROOT = b"\x00" * 32
UINT256_MAX = 2**256 - 1
MAX_LOCKS = 32
"""At most this many pending locks per direction (proto/locks.md), so one unlock fits in a block."""
PACKED_LOCK_SIZE = 96


class InvalidLock(LocalFault):
    """A lock value is out of range, or there are too many locks."""


@dataclass(frozen=True, slots=True)
class Lock:
    """A hash time lock (proto/locks.md): `secrethash` = sha256(secret), `expiration` a unix time."""

    amount: int
    expiration: int
    secrethash: bytes

    def __post_init__(self) -> None:
        for name in ("amount", "expiration"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= UINT256_MAX:
                raise InvalidLock(f"{name} must be an integer in [0, 2**256): {value!r}")
        if not isinstance(self.secrethash, bytes) or len(self.secrethash) != 32:
            raise InvalidLock("secrethash must be 32 bytes")

    def packed(self) -> bytes:
        return self.amount.to_bytes(32, "big") + self.expiration.to_bytes(32, "big") + self.secrethash


def pack_locks(locks: Sequence[Lock]) -> bytes:
    """The locks in the order they were added, 96 bytes each, as unlock takes them."""
    if len(locks) > MAX_LOCKS:
        raise InvalidLock(f"at most {MAX_LOCKS} locks per direction, got {len(locks)}")
    return b"".join(lock.packed() for lock in locks)


def locks_root(locks: Sequence[Lock]) -> bytes:
    """keccak256 of the packed locks; the zero root when there are none."""
    return keccak(pack_locks(locks)) if locks else ZERO_ROOT


def secret_hash(secret: bytes) -> bytes:
    """sha256(secret) of a 32-byte secret, as the SecretRegistry computes it."""
    if not isinstance(secret, bytes) or len(secret) != 32:
        raise InvalidLock("a secret is 32 bytes")
    return hashlib.sha256(secret).digest()
