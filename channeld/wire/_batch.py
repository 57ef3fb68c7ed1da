"""Batch settlement messages (tags 128-143): a hub asks each partner to consent to its channel's entry in
one batch withdraw or batch cooperative close (docs/batch.md), and the partner answers or refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from channeld.wire._fields import U16, U32, U64, U256, Address, Bytes32, ErrorText, Signature, VarBytes
from channeld.wire._messages import ZERO32
from channeld.wire._part import Message, Part, message, part

BATCH_WITHDRAW = 1
BATCH_CLOSE = 2
SCHEME_ECDSA = 1
SCHEME_BLS = 2
# 32 levels of siblings: a tree of up to 2**32 entries, far past what one transaction carries
MAX_PATH_BYTES = 32 * 32
BLS_SIGNATURE_SIZE = 96
BLS_PUBLIC_KEY_SIZE = 48

MerkleSiblings = Annotated[bytes, VarBytes(MAX_PATH_BYTES)]
BlsSignatureBytes = Annotated[bytes, VarBytes(BLS_SIGNATURE_SIZE)]
BlsPublicKeyBytes = Annotated[bytes, VarBytes(BLS_PUBLIC_KEY_SIZE)]


@part
@dataclass(frozen=True, slots=True)
class EntryTerms(Part):
    """One channel's ChannelBatch.Entry: `partner` is the hub's partner, `amount` the hub's new total
    withdrawn (withdraw) or its payout (close); the rest is the channel's state as the contract holds it."""

    partner: Address
    challenge_period: U64
    deposit1: U256
    deposit2: U256
    withdrawn1: U256
    withdrawn2: U256
    amount: U256


@part
@dataclass(frozen=True, slots=True)
class MerkleBranch(Part):
    """A leaf's place in a BLS batch's tree: `siblings` are the 32-byte hashes from the leaf up,
    concatenated (a level where the node was carried up has none). All zero for an ECDSA batch."""

    index: U32
    count: U32
    root: Bytes32
    siblings: MerkleSiblings

    def rule_violation(self) -> str | None:
        if len(self.siblings) % 32:
            return "siblings are 32-byte hashes"
        if self.count and not self.index < self.count:
            return f"leaf index {self.index} outside a tree of {self.count}"
        return None

    @property
    def path(self) -> tuple[bytes, ...]:
        return tuple(self.siblings[i:i + 32] for i in range(0, len(self.siblings), 32))


NO_BRANCH = MerkleBranch(0, 0, ZERO32, b"")


@message(128)
@dataclass(frozen=True, slots=True)
class BatchConsentRequest(Message):
    """The hub asks the receiver to consent to its channel's entry in a batch.

    `hub_signature` is the hub's own EIP-712 Withdraw or CooperativeSettle signature of the same terms,
    so the receiver holds a complete single-channel authorization for what it reserves. A BLS request's
    `branch` places the entry in the batch's Merkle tree; an ECDSA request's is all zeros.
    """

    chain_id: U64
    contract: Address
    channel_id: Bytes32
    batch_id: Bytes32
    kind: U16
    scheme: U16
    token: Address
    receiver: Address
    expiry: U64
    entry: EntryTerms
    hub_signature: Signature
    branch: MerkleBranch

    def rule_violation(self) -> str | None:
        if self.kind not in (BATCH_WITHDRAW, BATCH_CLOSE):
            return f"kind {self.kind} is neither withdraw (1) nor close (2)"
        if self.receiver == bytes(20):
            return "the receiver must not be the zero address"
        if self.scheme == SCHEME_ECDSA:
            if self.branch != NO_BRANCH:
                return "an ECDSA request carries no Merkle branch (all zeros)"
            return None
        if self.scheme != SCHEME_BLS:
            return f"scheme {self.scheme} is neither ECDSA (1) nor BLS (2)"
        if self.branch.count == 0:
            return "a BLS request carries the entry's Merkle branch"
        return None


@message(129)
@dataclass(frozen=True, slots=True)
class BatchConsent(Message):
    """The partner's consent: its EIP-712 signature of the single-channel terms (Withdraw or
    CooperativeSettle) and, for a BLS batch, its BLS signature of the batch message with its public key
    (compressed, 96 and 48 bytes; empty for ECDSA)."""

    channel_id: Bytes32
    batch_id: Bytes32
    signature: Signature
    bls_signature: BlsSignatureBytes
    bls_public_key: BlsPublicKeyBytes

    def rule_violation(self) -> str | None:
        sizes = (len(self.bls_signature), len(self.bls_public_key))
        if sizes not in ((0, 0), (BLS_SIGNATURE_SIZE, BLS_PUBLIC_KEY_SIZE)):
            return "a BLS signature (96 bytes) and public key (48 bytes) come together or not at all"
        return None


@message(130)
@dataclass(frozen=True, slots=True)
class BatchRefusal(Message):
    """The partner refuses to consent; `code` is from the refusal table (proto/messages.md)."""

    channel_id: Bytes32
    batch_id: Bytes32
    code: U16
    reason: ErrorText

