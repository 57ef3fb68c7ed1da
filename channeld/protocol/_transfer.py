"""What the three roles of a multi-hop payment share: fees, the route a transfer carries, their effects.

A mediated payment is driven per secrethash by one pure machine per node: `_initiator` (the payer),
`_mediator` (each hop between) and `_target` (the payee). They never sign or touch a channel themselves:
they emit `ChannelDo(channel_id, action)`, which the node feeds to that channel's machine with
`handle()`, and they take as inputs what the channel machines report (`EventLockReceived`,
`EventLockUnlocked`, `EventLockExpired`), the partner's `SecretReveal`, the chain's
`ContractReceiveSecretRegistered` and `ActionTick`.

Route: a `LockedTransfer`'s `metadata` is the rest of the path starting with its receiver, as
concatenated 20-byte addresses (at most 51 in 1024 bytes); the last one is the target.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from channeld.errors import LocalFault, PeerFault
from channeld.protocol._events import (
    ActionExpireLock,
    ActionLearnSecret,
    ActionSendLockedTransfer,
    ActionUnlock,
)

PPM = 1_000_000
ADDRESS_SIZE = 20
MAX_ROUTE_HOPS = 1024 // ADDRESS_SIZE


class BadRoute(PeerFault):
    """A transfer's route metadata is malformed or does not name us where it must."""


class BadFeePolicy(LocalFault):
    """A fee policy with a negative or out-of-range part."""


@dataclass(frozen=True, slots=True)
class FeePolicy:
    """What a mediator charges to forward `amount`: `base + ceil(amount * ppm / 1e6)`."""

    base: int = 0
    ppm: int = 0

    def __post_init__(self) -> None:
        integers = type(self.base) is int and type(self.ppm) is int
        if not integers or self.base < 0 or not 0 <= self.ppm <= PPM:
            raise BadFeePolicy(f"fee base must be >= 0 and ppm in [0, {PPM}]: {self.base}, {self.ppm}")

    def fee(self, amount: int) -> int:
        return self.base + -(-amount * self.ppm // PPM)

    def amount_in(self, amount_out: int) -> int:
        """What must arrive for `amount_out` to be forwarded."""
        return amount_out + self.fee(amount_out)

    def amount_out(self, amount_in: int) -> int:
        """The most that may be forwarded from `amount_in` (0: not even the base fee is covered).

        `amount_in` is strictly increasing, so this inverts it exactly: forwarding what the payer
        computed with `amount_in` gives back the payer's figure.
        """
        guess = max(0, (amount_in - self.base) * PPM // (PPM + self.ppm))
        while guess > 0 and self.amount_in(guess) > amount_in:
            guess -= 1
        while self.amount_in(guess + 1) <= amount_in:
            guess += 1
        return guess


def encode_route(hops: tuple[bytes, ...]) -> bytes:
    if not 0 < len(hops) <= MAX_ROUTE_HOPS or any(len(h) != ADDRESS_SIZE for h in hops):
        raise LocalFault(f"a route is 1..{MAX_ROUTE_HOPS} addresses of {ADDRESS_SIZE} bytes")
    return b"".join(hops)


def decode_route(metadata: bytes) -> tuple[bytes, ...]:
    if not metadata or len(metadata) % ADDRESS_SIZE:
        raise BadRoute(f"route metadata of {len(metadata)} bytes is not a list of 20-byte addresses")
    return tuple(metadata[i:i + ADDRESS_SIZE] for i in range(0, len(metadata), ADDRESS_SIZE))


ChannelAction = ActionSendLockedTransfer | ActionUnlock | ActionExpireLock | ActionLearnSecret


@dataclass(frozen=True, slots=True)
class ChannelDo:
    """Feed `action` to channel `channel_id` with `handle()`, and carry out what that returns."""

    channel_id: bytes
    action: ChannelAction


@dataclass(frozen=True, slots=True)
class SendSecretReveal:
    """Send `SecretReveal(secret)` to the partner of `channel_id` now, not after the round filling now is
    durable: a reveal carries nothing its sender signed or must keep (proto/state-machine.md, Mediated
    payments: relaying a reveal)."""

    channel_id: bytes
    secret: bytes


class LockOutcome(enum.IntEnum):
    """What became of one lock of a mediated payment."""

    PENDING = 1
    UNLOCKED = 2  # turned into a transfer off-chain (or claimable on chain with a registered secret)
    EXPIRED = 3   # removed after its expiration: the amount went back to the lock's sender
    NONE = 4      # never created (a mediator that did not forward)


@dataclass(frozen=True, slots=True)
class EventTransferSucceeded:
    """Our payment reached its target: the secret came back and our lock is unlocked."""

    payment_id: int
    secrethash: bytes
    amount: int
    fees: int


@dataclass(frozen=True, slots=True)
class EventTransferFailed:
    """Our payment cannot complete: every route was tried or refused (each reason listed)."""

    payment_id: int
    secrethash: bytes
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EventRouteFailed:
    """One route of our payment failed (its lock expired); the next one is tried if any is left."""

    payment_id: int
    secrethash: bytes
    channel_id: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class EventTransferReceived:
    """A payment request of ours was paid in full: every lock for it was unlocked."""

    secrethash: bytes
    amount: int


TransferEffect = (ChannelDo | SendSecretReveal | EventTransferSucceeded | EventTransferFailed
                  | EventRouteFailed | EventTransferReceived)
