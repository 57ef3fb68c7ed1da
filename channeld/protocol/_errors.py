"""Refusals of the channel machine. Each says what was wrong; a refused input changes no state.

Peer refusals carry a stable numeric `code`, sent back in `PaymentRefused` / `Error` (proto/messages.md
lists them). Codes 1-15 belong to the connection level (the transport's), 16 and up to channels.
Local refusals are misuse by our own caller (pay more than we have, act on a closed channel).
"""

from __future__ import annotations

from channeld.errors import LocalFault, PeerFault
from channeld.protocol._signing import InvalidSignature


class Refused(PeerFault):
    """The partner's input breaks a protocol rule; `code` is what we answer with."""

    code = 16


class IllegalInput(Refused):
    """The input is not allowed in the channel's current state (the text names both)."""

    code = 17


class WrongChannel(Refused):
    """Chain id, contract, channel id or participant does not match this channel."""

    code = 18


class NonceGapTooLarge(Refused):
    """The proof is further ahead of the next expected nonce than the hold buffer allows."""

    code = 19


class ConflictingProof(Refused):
    """A second, different proof signed for a nonce already accepted."""

    code = 20


class AmountMismatch(Refused):
    """The transferred amount did not grow by exactly the payment amount, or locked amounts changed."""

    code = 21


class InsufficientCapacity(Refused):
    """The sender's deposit, less withdrawals, transfers and locks, plus what it received, is negative."""

    code = 22


class BadWithdraw(Refused):
    """A withdraw request or signature that is not monotonic, exceeds the balance, or has a bad expiry."""

    code = 23


class BadSettle(Refused):
    """A cooperative settle whose amounts differ from ours, or asked while the channel is not quiet."""

    code = 24


class StateMismatch(Refused):
    """The partner claims to hold a proof of ours that we never signed (re-establish)."""

    code = 25


class BadLock(Refused):
    """A new lock that breaks a lock rule: expiry too soon or too far, too many locks, a repeated hash."""

    code = 27


class UnknownLock(Refused):
    """An unlock or lock-expired message naming a lock that is not pending (or a secret matching none)."""

    code = 28


class LockNotExpired(Refused):
    """A lock-expired message before the lock's expiration, or for a lock whose secret the chain
    registered in time."""

    code = 29


# InvalidSignature is raised by the signing module; give it a code in the same table
REFUSAL_CODES: dict[type[PeerFault], int] = {
    InvalidSignature: 26,
}


# Refusals of one of our proofs that can never pass, however often it is offered: they judge only the
# proof itself against the partner's view of our side, which nothing but that proof's acceptance moves
# (wrong binding, a different proof for that nonce, wrong figures, a bad signature, a lock the partner
# does not hold). Every other code may pass later (a deposit not yet seen, a lock limit, a clock behind).
PERMANENT_REFUSALS = frozenset({WrongChannel.code, ConflictingProof.code, AmountMismatch.code,
                                REFUSAL_CODES[InvalidSignature], UnknownLock.code})


def refusal_code(error: PeerFault) -> int:
    """The numeric code to send for a peer fault (16 when it has no more specific one)."""
    if isinstance(error, Refused):
        return error.code
    for kind, code in REFUSAL_CODES.items():
        if isinstance(error, kind):
            return code
    return Refused.code


class IllegalAction(LocalFault):
    """Our caller asked for something the channel's state does not allow (the text names both)."""


class NotEnoughCapacity(LocalFault):
    """We were asked to pay or withdraw more than our side of the channel holds."""


class TooManyInFlight(LocalFault):
    """Too many of our payments wait for acceptance; wait for the partner before sending more."""
