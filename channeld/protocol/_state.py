"""The state of one channel as one participant sees it: small, frozen, replaced (never deep-copied)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from channeld.wire import BalanceProof, Lock, LockedTransfer, LockExpired, Payment, Unlock

UINT256_LIMIT = 1 << 256
# how far ahead of the next nonce a partner's proof may be held while earlier ones are missing
MAX_HELD_PROOFS = 16
# how many of our payments may wait for acceptance at once
MAX_IN_FLIGHT = 64
# a withdraw expiry must leave the transaction time to be mined, and not bind the channel for long
MIN_WITHDRAW_WINDOW = 60
MAX_WITHDRAW_WINDOW = 7 * 24 * 3600
# pending locks per direction: bounds the packed locks an on-chain unlock must hash (proto/locks.md)
MAX_LOCKS = 32
# the time a participant needs to get a secret registered on chain; locks must outlive `now` by it
DEFAULT_REVEAL_TIMEOUT = 600
# a lock may not tie the sender's funds up for longer than this
MAX_LOCK_LIFETIME = 7 * 24 * 3600

# a proof-carrying message about locks; acknowledged by PaymentAccepted / PaymentRefused like a Payment
LockMessage = LockedTransfer | Unlock | LockExpired


class ChannelStatus(enum.IntEnum):
    OPEN = 1
    CLOSED = 2
    SETTLED = 3


@dataclass(frozen=True, slots=True)
class WithdrawTerms:
    """One participant's withdraw, as both will sign it; signatures fill in as they arrive."""

    participant: bytes
    total_withdraw: int
    expiry: int
    receiver: bytes
    participant_signature: bytes
    partner_signature: bytes | None = None


@dataclass(frozen=True, slots=True)
class SettleTerms:
    """Cooperative settle payouts; `requested_by_us` tells who submits it once both signed."""

    participant1: bytes
    amount1: int
    receiver1: bytes
    participant2: bytes
    amount2: int
    receiver2: bytes
    signature1: bytes | None
    signature2: bytes | None
    requested_by_us: bool


@dataclass(frozen=True, slots=True)
class KnownSecret:
    """The preimage of a partner lock's secrethash; `registering`: we submitted it to the registry."""

    secret: bytes
    registering: bool = False


@dataclass(frozen=True, slots=True)
class Side:
    """One participant: what the chain says it put in and took out, and its latest outgoing proof.

    For our side `proof` is the latest proof we signed (accepted by the partner or not); for the
    partner's side it is the latest partner proof we accepted. `locks` are the pending locks that proof
    commits to, in the order they were added (its locks root is their packed hash).
    """

    address: bytes
    deposit: int = 0
    withdrawn: int = 0
    proof: BalanceProof | None = None
    withdraw: WithdrawTerms | None = None
    locks: tuple[Lock, ...] = ()

    @property
    def nonce(self) -> int:
        return 0 if self.proof is None else self.proof.nonce

    @property
    def transferred(self) -> int:
        return 0 if self.proof is None else self.proof.transferred_amount

    @property
    def locked(self) -> int:
        return 0 if self.proof is None else self.proof.locked_amount

    @property
    def effective_withdrawn(self) -> int:
        """Withdrawn on chain, or the pending signed total if higher: it may be executed at any time."""
        pending = 0 if self.withdraw is None else self.withdraw.total_withdraw
        return max(self.withdrawn, pending)


def balance(owner: Side, other: Side, transferred: int | None = None, locked: int | None = None,
            withdrawn: int | None = None) -> int:
    """What `owner` would be paid: deposit - withdrawn - transferred - locked + received.

    Optional arguments replace the owner's own figures, to test a proposed new proof or withdraw.
    """
    return (owner.deposit
            - (owner.effective_withdrawn if withdrawn is None else withdrawn)
            - (owner.transferred if transferred is None else transferred)
            - (owner.locked if locked is None else locked)
            + other.transferred)


@dataclass(frozen=True, slots=True)
class ChannelState:
    """Everything one participant knows about one channel.

    `in_flight` holds our payments the partner has not yet accepted (resent on re-establish), and
    `locks_in_flight` our lock messages likewise; `held` holds partner proofs that arrived ahead of a
    missing nonce, in nonce order. `secrets` are preimages we know for the partner's pending locks (to
    claim them on chain if the partner does not unlock), `registered` the (secrethash, time) pairs the
    chain's secret registry reported for our pending locks in either direction.
    """

    chain_id: int
    contract: bytes
    channel_id: bytes
    challenge_period: int
    our: Side
    partner: Side
    partner_public_key: bytes
    status: ChannelStatus = ChannelStatus.OPEN
    now: int = 0
    closer: bytes | None = None
    settle_deadline: int = 0
    settle_submitted: bool = False
    settle: SettleTerms | None = None
    in_flight: tuple[Payment, ...] = ()
    held: tuple[Payment | LockMessage, ...] = ()
    reveal_timeout: int = DEFAULT_REVEAL_TIMEOUT
    locks_in_flight: tuple[LockMessage, ...] = ()
    secrets: tuple[KnownSecret, ...] = ()
    registered: tuple[tuple[bytes, int], ...] = ()

    @property
    def participants(self) -> tuple[bytes, bytes]:
        """(participant1, participant2): the lower address first, as the contract orders them."""
        a, b = self.our.address, self.partner.address
        return (a, b) if a < b else (b, a)

    def total_held(self) -> int:
        """What the contract holds for this channel, by our view of deposits and withdrawals."""
        return (self.our.deposit + self.partner.deposit
                - self.our.effective_withdrawn - self.partner.effective_withdrawn)

    def our_balance(self) -> int:
        return balance(self.our, self.partner)

    def partner_balance(self) -> int:
        return balance(self.partner, self.our)

    def registered_at(self, secrethash: bytes) -> int | None:
        """When the chain registered this secrethash's secret, or None."""
        for known, at in self.registered:
            if known == secrethash:
                return at
        return None
