"""The message catalogue (normative description: proto/messages.md).

Tags are stable forever: a new message gets a new tag, a changed layout a new VERSION. Every field is
positional in the order declared here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from channeld.wire._fields import (
    U16,
    U32,
    U64,
    U256,
    Address,
    Bytes32,
    ChainList,
    ErrorText,
    Features,
    Metadata,
    Padding,
    Signature,
)
from channeld.wire._part import Message, Part, message, part

ZERO32 = bytes(32)
PROTOCOL_VERSION = 1


def secrethash_of(secret: bytes) -> bytes:
    """The hash a lock commits to: sha256 of the 32-byte secret (cheap on the EVM as a precompile)."""
    return hashlib.sha256(secret).digest()


def _unordered(participant1: bytes, participant2: bytes) -> str | None:
    """The rule every message naming both participants keeps: the lower address comes first."""
    return "participant1 must be lower than participant2" if participant1 >= participant2 else None


# --- parts ---------------------------------------------------------------------------------------------


@part
@dataclass(frozen=True, slots=True)
class BalanceProof(Part):
    """One direction's signed state: signed by the sender of the transfers it describes."""

    chain_id: U64
    contract: Address
    channel_id: Bytes32
    nonce: U64
    transferred_amount: U256
    locked_amount: U256
    locks_root: Bytes32
    signature: Signature

    def rule_violation(self) -> str | None:
        if self.nonce == 0:
            return "nonce 0 means 'no proof' and is never signed"
        if (self.locked_amount == 0) != (self.locks_root == ZERO32):
            return "locked_amount is zero exactly when locks_root is all zeros"
        return None


@part
@dataclass(frozen=True, slots=True)
class Lock(Part):
    """A hash time lock: `amount` is paid to whoever reveals the preimage of `secrethash` before expiry."""

    amount: U256
    expiration: U64
    secrethash: Bytes32

    def rule_violation(self) -> str | None:
        return "lock amount must be positive" if self.amount == 0 else None


# --- session -------------------------------------------------------------------------------------------


@message(1)
@dataclass(frozen=True, slots=True)
class Init(Message):
    """First message each way on a connection: what this side speaks and which chains/contracts it serves.

    `chain_id` and `contract` name the sender's primary chain; `chains` packs every further one (version
    2), each as 8 bytes of chain id (big-endian) then the 20-byte contract (see `pack_chains`).
    """

    VERSION = 2

    protocol_version: U16
    features: Features
    chain_id: U64
    contract: Address
    chains: ChainList = b""

    def rule_violation(self) -> str | None:
        if len(self.chains) % CHAIN_ENTRY_SIZE:
            return f"chains is a whole number of {CHAIN_ENTRY_SIZE}-byte entries"
        served = [(self.chain_id, self.contract), *unpack_chains(self.chains)]
        if any(chain_id == 0 for chain_id, _ in served):
            return "chain id 0 is not a chain"
        if len({chain_id for chain_id, _ in served}) != len(served):
            return "a chain id is listed twice"
        return None

    def served(self) -> list[tuple[int, bytes]]:
        """Every (chain id, contract) the sender serves, its primary first."""
        return [(self.chain_id, self.contract), *unpack_chains(self.chains)]


CHAIN_ENTRY_SIZE = 28
MAX_EXTRA_CHAINS = 15


def pack_chains(chains: list[tuple[int, bytes]]) -> bytes:
    """`Init.chains` for these (chain id, contract) pairs."""
    return b"".join(chain_id.to_bytes(8, "big") + contract for chain_id, contract in chains)


def unpack_chains(packed: bytes) -> list[tuple[int, bytes]]:
    return [(int.from_bytes(packed[i:i + 8], "big"), packed[i + 8:i + CHAIN_ENTRY_SIZE])
            for i in range(0, len(packed) - CHAIN_ENTRY_SIZE + 1, CHAIN_ENTRY_SIZE)]


@message(2)
@dataclass(frozen=True, slots=True)
class Error(Message):
    """A protocol error; `channel_id` all zeros means the whole connection."""

    channel_id: Bytes32
    code: U16
    text: ErrorText


@message(3)
@dataclass(frozen=True, slots=True)
class Ping(Message):
    """Keep-alive; the receiver answers with a `Pong` carrying `pong_length` zero bytes."""

    pong_length: U16
    padding: Padding


@message(4)
@dataclass(frozen=True, slots=True)
class Pong(Message):
    padding: Padding


# --- channel lifecycle ---------------------------------------------------------------------------------


@message(16)
@dataclass(frozen=True, slots=True)
class ChannelOpened(Message):
    """Tells the partner about a channel the sender saw opened on chain (the partner checks the chain)."""

    chain_id: U64
    contract: Address
    channel_id: Bytes32
    participant1: Address
    participant2: Address
    challenge_period: U64

    def rule_violation(self) -> str | None:
        return _unordered(self.participant1, self.participant2)


@message(17)
@dataclass(frozen=True, slots=True)
class Reestablish(Message):
    """On reconnect: the nonce of my latest outgoing proof and of your latest proof I accepted."""

    chain_id: U64
    contract: Address
    channel_id: Bytes32
    sent_nonce: U64
    received_nonce: U64


# --- direct payments -----------------------------------------------------------------------------------


@message(32)
@dataclass(frozen=True, slots=True)
class Payment(Message):
    """A direct payment: the payer's next proof, whose transferred amount grew by exactly `amount`."""

    balance_proof: BalanceProof
    payment_id: U64
    amount: U256
    metadata: Metadata

    def rule_violation(self) -> str | None:
        return "payment amount must be positive" if self.amount == 0 else None


@message(33)
@dataclass(frozen=True, slots=True)
class PaymentAccepted(Message):
    channel_id: Bytes32
    nonce: U64
    payment_id: U64


@message(34)
@dataclass(frozen=True, slots=True)
class PaymentRefused(Message):
    """The proof with `nonce` was not applied; `code` is one of the refusal codes in proto/messages.md."""

    channel_id: Bytes32
    nonce: U64
    payment_id: U64
    code: U16
    reason: ErrorText


# --- withdraw and cooperative settle -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _WithdrawTerms(Message):
    """The fields a withdraw request and its countersignature share; each message is its own tag."""

    chain_id: U64
    contract: Address
    channel_id: Bytes32
    participant: Address
    total_withdraw: U256
    expiry: U64
    receiver: Address
    signature: Signature


@message(48)
@dataclass(frozen=True, slots=True)
class WithdrawRequest(_WithdrawTerms):
    """`participant` asks to withdraw up to a new total; `signature` is the participant's own."""


@message(49)
@dataclass(frozen=True, slots=True)
class WithdrawSignature(_WithdrawTerms):
    """The partner's countersignature over exactly the terms of a `WithdrawRequest`."""


@dataclass(frozen=True, slots=True)
class _SettleTerms(Message):
    """The fields a cooperative settle proposal and its countersignature share."""

    chain_id: U64
    contract: Address
    channel_id: Bytes32
    participant1: Address
    amount1: U256
    receiver1: Address
    participant2: Address
    amount2: U256
    receiver2: Address
    signature: Signature

    def rule_violation(self) -> str | None:
        return _unordered(self.participant1, self.participant2)


@message(64)
@dataclass(frozen=True, slots=True)
class SettleRequest(_SettleTerms):
    """A cooperative settle proposal with the final payouts, signed by the proposer."""


@message(65)
@dataclass(frozen=True, slots=True)
class SettleSignature(_SettleTerms):
    """The partner's countersignature over exactly the terms of a `SettleRequest`."""


# --- hash time-locked transfers (state logic comes with multi-hop routing) -----------------------------


@message(80)
@dataclass(frozen=True, slots=True)
class LockedTransfer(Message):
    """A payment held by `lock`: the proof's locked amount includes it, its locks root commits to it."""

    balance_proof: BalanceProof
    lock: Lock
    payment_id: U64
    initiator: Address
    target: Address
    metadata: Metadata

    def rule_violation(self) -> str | None:
        if self.balance_proof.locked_amount < self.lock.amount:
            return "the proof's locked_amount must include the lock's amount"
        return None


@message(81)
@dataclass(frozen=True, slots=True)
class SecretReveal(Message):
    """The preimage of a lock's secrethash (sha256), sent backwards along the route."""

    secret: Bytes32


@message(82)
@dataclass(frozen=True, slots=True)
class Unlock(Message):
    """Settles a lock off-chain: the new proof moves the lock's amount from locked to transferred."""

    balance_proof: BalanceProof
    secret: Bytes32
    payment_id: U64


@message(83)
@dataclass(frozen=True, slots=True)
class LockExpired(Message):
    """Removes an expired lock: the new proof drops it from the locked amount and locks root."""

    balance_proof: BalanceProof
    secrethash: Bytes32


# --- watchtower delegation (client <-> tower; the state logic lives in channeld.watchtower) -------------


@message(96)
@dataclass(frozen=True, slots=True)
class PushProof(Message):
    """A client hands a tower its partner's newest proof, plus its own `BalanceProofUpdate` signature
    over the same fields (`authorization`), which lets the tower submit that proof after a close."""

    balance_proof: BalanceProof
    authorization: Signature


@message(97)
@dataclass(frozen=True, slots=True)
class PushAccepted(Message):
    """The tower holds (durably) a proof with this `nonce` for the channel."""

    channel_id: Bytes32
    nonce: U64


@message(98)
@dataclass(frozen=True, slots=True)
class PushRefused(Message):
    """The push with `nonce` was not stored; `code` is a watchtower refusal code (proto/messages.md)."""

    channel_id: Bytes32
    nonce: U64
    code: U16
    reason: ErrorText


@message(99)
@dataclass(frozen=True, slots=True)
class ProofQuery(Message):
    """Which nonce does the tower hold from me (the session's node) for this channel?"""

    channel_id: Bytes32


@message(100)
@dataclass(frozen=True, slots=True)
class ProofStatus(Message):
    """The answer to `ProofQuery`: the nonce of the proof held for the asking node, 0 when none."""

    channel_id: Bytes32
    nonce: U64


# --- routing gossip (the state logic lives in channeld.routing and channeld.node._gossip) ---------------


@message(112)
@dataclass(frozen=True, slots=True)
class ChannelGossip(Message):
    """A signed channel announcement (`channeld.routing.ChannelAnnouncement`), flooded between nodes: the
    announcer forwards through channel `channel_id` for `fee_base + fee_ppm` per million. The receiver
    checks the signature and that the chain holds the channel with these participants and capacity."""

    chain_id: U64
    contract: Address
    channel_id: Bytes32
    participant1: Address
    participant2: Address
    capacity: U256
    announcer: Address
    fee_base: U64
    fee_ppm: U32
    reveal_timeout: U64
    serial: U64
    signature: Signature

    def rule_violation(self) -> str | None:
        if (unordered := _unordered(self.participant1, self.participant2)) is not None:
            return unordered
        if self.announcer not in (self.participant1, self.participant2):
            return "the announcer must be a participant of the channel"
        if self.fee_ppm > 1_000_000:
            return "fee_ppm must be at most 1000000"
        return None


@part
@dataclass(frozen=True, slots=True)
class AssetId(Part):
    """What a channel moves: `token` (the zero address: the native coin) in `contract` on `chain_id`."""

    chain_id: U64
    contract: Address
    token: Address


@message(113)
@dataclass(frozen=True, slots=True)
class ConversionGossip(Message):
    """A signed conversion announcement (`channeld.routing.ConversionAnnouncement`), flooded like
    `ChannelGossip`: `converter` forwards a lock in `source` as one in `target` at
    `rate_numerator / rate_denominator` (rounded down) minus `fee_base + fee_ppm` per million, keeping
    `margin` seconds between the two expiries, until `expires_at`. The receiver checks the signature, the
    expiry, and that the converter has channels in both assets."""

    converter: Address
    source: AssetId
    target: AssetId
    rate_numerator: U256
    rate_denominator: U256
    fee_base: U64
    fee_ppm: U32
    margin: U64
    serial: U64
    expires_at: U64
    signature: Signature

    def rule_violation(self) -> str | None:
        if not (0 < self.rate_numerator < 1 << 128 and 0 < self.rate_denominator < 1 << 128):
            return "the rate's numerator and denominator must be in [1, 2**128)"
        if self.fee_ppm > 1_000_000:
            return "fee_ppm must be at most 1000000"
        if self.source == self.target:
            return "source and target are the same asset"
        return None
