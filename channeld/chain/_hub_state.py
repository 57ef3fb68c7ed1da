"""The ChannelHub's state as values: what the contract commits to per channel, and how settle pays out.

No IO. The contract keeps one commitment per channel and expects the caller to pass the channel's current
state; these types compute the commitments it stores (`ChannelState.commitment`, `closed_commitment`,
`SettledLocks.commitment`, `OnChainChannel.commitment`), which lets a node check its view against the slot.
Re-exported by `channeld.chain.contract`.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi import encode as abi_encode
from eth_utils import keccak

from channeld.addresses import InvalidAddress, checksum_address
from channeld.errors import LocalFault

ETHER = "0x0000000000000000000000000000000000000000"
"""The `token` of a native-ether channel."""
ZERO_ROOT = b"\x00" * 32
SETTLED = (1).to_bytes(32, "big")
"""The slot of a cooperatively settled channel (a unilateral settle with nothing locked clears it)."""
UINT256_MAX = 2**256 - 1
CHANNEL_TUPLE = "(address,address,address,uint256,uint256,uint256,uint256,uint256)"
PROOF_TUPLE = "(uint256,uint256,uint256,bytes32)"
CLOSING_TUPLE = f"(address,uint256,{PROOF_TUPLE},{PROOF_TUPLE})"
SETTLED_LOCKS_TUPLE = "(address,address,uint256,bytes32,address,uint256,bytes32)"


class InvalidCallArgument(LocalFault):
    """A value given to an encoder or a state type is out of range or malformed."""


def _uint(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= UINT256_MAX:
        raise InvalidCallArgument(f"{name} must be an integer in [0, 2**256): {value!r}")
    return value


def _address(value: str, name: str) -> str:
    try:
        return checksum_address(value)
    except InvalidAddress:
        raise InvalidCallArgument(f"{name} must be a 20-byte hex address: {value!r}") from None


def _bytes32(value: bytes, name: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise InvalidCallArgument(f"{name} must be 32 bytes: {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class StoredProof:
    """The fields of a balance proof the contract keeps; nonce 0 is "no proof" and must be all zero."""

    nonce: int = 0
    transferred_amount: int = 0
    locked_amount: int = 0
    locks_root: bytes = ZERO_ROOT

    def __post_init__(self) -> None:
        _uint(self.nonce, "nonce")
        _uint(self.transferred_amount, "transferred_amount")
        _uint(self.locked_amount, "locked_amount")
        _bytes32(self.locks_root, "locks_root")
        empty = self.transferred_amount == 0 and self.locked_amount == 0 and self.locks_root == ZERO_ROOT
        if self.nonce == 0 and not empty:
            raise InvalidCallArgument("a proof with nonce 0 stands for no proof: its fields must be zero")

    def as_abi(self) -> tuple[int, int, int, bytes]:
        return (self.nonce, self.transferred_amount, self.locked_amount, self.locks_root)


NO_PROOF = StoredProof()


class StoredProofFields:
    """A dataclass mixin for events and records that carry a stored proof's four fields flat, in their own
    field order (ChannelClosed, BalanceProofUpdated, the tower's HeldProof); `proof` gathers them."""

    __slots__ = ()
    nonce: int
    transferred_amount: int
    locked_amount: int
    locks_root: bytes

    @property
    def proof(self) -> StoredProof:
        return StoredProof(self.nonce, self.transferred_amount, self.locked_amount, self.locks_root)


@dataclass(frozen=True, slots=True)
class ChannelState:
    """The open state the contract commits to; participant1 is the lower address."""

    participant1: str
    participant2: str
    token: str
    challenge_period: int
    deposit1: int = 0
    deposit2: int = 0
    withdrawn1: int = 0
    withdrawn2: int = 0

    def __post_init__(self) -> None:
        for name in ("participant1", "participant2", "token"):
            object.__setattr__(self, name, _address(getattr(self, name), name))
        for name in ("challenge_period", "deposit1", "deposit2", "withdrawn1", "withdrawn2"):
            _uint(getattr(self, name), name)
        if int(self.participant1, 16) >= int(self.participant2, 16):
            raise InvalidCallArgument("participant1 must be the lower of two distinct addresses")

    def as_abi(self) -> tuple[str, str, str, int, int, int, int, int]:
        return (self.participant1, self.participant2, self.token, self.challenge_period,
                self.deposit1, self.deposit2, self.withdrawn1, self.withdrawn2)

    def commitment(self) -> bytes:
        return keccak(abi_encode([CHANNEL_TUPLE], [self.as_abi()]))

    @property
    def held(self) -> int:
        """What the contract holds for this channel."""
        return self.deposit1 + self.deposit2 - self.withdrawn1 - self.withdrawn2

    def is_first(self, participant: str) -> bool:
        """True for participant1, False for participant2; InvalidCallArgument for anyone else."""
        address = _address(participant, "participant")
        if address not in (self.participant1, self.participant2):
            raise InvalidCallArgument(f"{address} is not a participant of this channel")
        return address == self.participant1

    def partner_of(self, participant: str) -> str:
        return self.participant2 if self.is_first(participant) else self.participant1


@dataclass(frozen=True, slots=True)
class Closing:
    """What a close adds to the state: the closer, the last second for updates, both stored proofs."""

    closer: str
    settle_time: int
    proof1: StoredProof = NO_PROOF
    proof2: StoredProof = NO_PROOF

    def __post_init__(self) -> None:
        object.__setattr__(self, "closer", _address(self.closer, "closer"))
        _uint(self.settle_time, "settle_time")

    def as_abi(self) -> tuple[str, int, tuple[int, int, int, bytes], tuple[int, int, int, bytes]]:
        return (self.closer, self.settle_time, self.proof1.as_abi(), self.proof2.as_abi())


def closed_commitment(state: ChannelState, closing: Closing) -> bytes:
    return keccak(abi_encode([CHANNEL_TUPLE, CLOSING_TUPLE], [state.as_abi(), closing.as_abi()]))


@dataclass(frozen=True, slots=True)
class Settlement:
    """What settle pays each participant and keeps locked for each side."""

    amount1: int
    locked1: int
    amount2: int
    locked2: int


def settlement(state: ChannelState, closing: Closing) -> Settlement:
    """The contract's `settlement`, computed here (same saturating arithmetic)."""
    available = state.held
    credit1 = min(state.deposit1 + closing.proof2.transferred_amount, UINT256_MAX)
    debit1 = min(state.withdrawn1 + closing.proof1.transferred_amount, UINT256_MAX)
    net1 = min(max(credit1 - debit1, 0), available)
    net2 = available - net1
    locked1 = min(closing.proof1.locked_amount, net1)
    locked2 = min(closing.proof2.locked_amount, net2)
    return Settlement(net1 - locked1, locked1, net2 - locked2, locked2)


@dataclass(frozen=True, slots=True)
class SettledLocks:
    """What a unilateral settle keeps for later unlocks (the contract's SettledLocks); locked1/locks_root1
    are participant1's outgoing locks. A side that was unlocked reads zero and the zero root."""

    token: str
    participant1: str
    locked1: int
    locks_root1: bytes
    participant2: str
    locked2: int
    locks_root2: bytes

    def as_abi(self) -> tuple[str, str, int, bytes, str, int, bytes]:
        return (self.token, self.participant1, self.locked1, self.locks_root1, self.participant2,
                self.locked2, self.locks_root2)

    def commitment(self) -> bytes:
        """The slot: zero once nothing stays locked."""
        if self.locked1 == 0 and self.locked2 == 0:
            return ZERO_ROOT
        return keccak(abi_encode([SETTLED_LOCKS_TUPLE], [self.as_abi()]))


def settled_locks(
    state: ChannelState, closing: Closing, *, unlocked1: bool = False, unlocked2: bool = False
) -> SettledLocks:
    """The SettledLocks a settle of (state, closing) leaves, with the sides already unlocked cleared."""
    result = settlement(state, closing)
    locked1, root1 = (0, ZERO_ROOT) if unlocked1 else (result.locked1, closing.proof1.locks_root)
    locked2, root2 = (0, ZERO_ROOT) if unlocked2 else (result.locked2, closing.proof2.locks_root)
    return SettledLocks(state.token, state.participant1, locked1, root1, state.participant2, locked2, root2)


def settled_commitment(state: ChannelState, closing: Closing) -> bytes:
    """The slot after a unilateral settle: zero, or what a later unlock needs if anything stays locked."""
    return settled_locks(state, closing).commitment()


@dataclass(frozen=True, slots=True)
class OnChainChannel:
    """A channel as the contract holds it, rebuilt from events only; `commitment()` equals the slot."""

    channel_id: bytes
    state: ChannelState
    closing: Closing | None = None
    settled: Settlement | None = None
    cooperative: bool = False
    unlocked1: bool = False  # participant1's locks were released by unlock
    unlocked2: bool = False

    def commitment(self) -> bytes:
        if self.cooperative:
            return SETTLED
        if self.closing is None:
            return self.state.commitment()
        if self.settled is None:
            return closed_commitment(self.state, self.closing)
        return self.settled_locks().commitment()

    def settled_locks(self) -> SettledLocks:
        """What unlock takes as `settled`; InvalidCallArgument before a unilateral settle."""
        if self.closing is None or self.settled is None:
            raise InvalidCallArgument("the channel has not been settled unilaterally")
        return settled_locks(self.state, self.closing, unlocked1=self.unlocked1, unlocked2=self.unlocked2)

