"""Inputs to the channel machine and the effects it emits.

Inputs: `Action*` come from our own user, `ContractReceive*` from the chain follower, and messages from
the partner are the decoded wire messages themselves (`channeld.wire.Payment`, ...): the wire layer
already guarantees their shape, so a second wrapper would only copy fields.

Effects, in the order they must be carried out: `Persist` first (the durability rule: store the new
state before anything that depends on it leaves the node), then `Send`, `ContractSend*` and `Event*`.
"""

from __future__ import annotations

from dataclasses import dataclass

from channeld.limits import LimitContext
from channeld.protocol._record import to_record
from channeld.protocol._state import ChannelState
from channeld.wire import BalanceProof, Lock, Message

# --- inputs from our user ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActionPay:
    """Pay `amount` to the partner directly (one new signed proof).

    `limits`: the node's risk limits and ledger, checked before the proof is signed (None: only the
    protocol's own rules apply, as for a wallet or a test).
    """

    payment_id: int
    amount: int
    metadata: bytes = b""
    limits: LimitContext | None = None


@dataclass(frozen=True, slots=True)
class ActionWithdraw:
    """Ask the partner to co-sign raising our total withdrawn to `total_withdraw` (paid to `receiver`)."""

    total_withdraw: int
    expiry: int
    receiver: bytes | None = None


@dataclass(frozen=True, slots=True)
class ActionCooperativeSettle:
    """Propose closing and paying out at once, with the amounts our latest proofs imply."""

    receiver: bytes | None = None


@dataclass(frozen=True, slots=True)
class ActionClose:
    """Close unilaterally, submitting the partner's latest proof we hold."""


@dataclass(frozen=True, slots=True)
class ActionReconnected:
    """The transport to the partner is up again: announce what we have so each side resends."""


@dataclass(frozen=True, slots=True)
class ActionTick:
    """The chain's latest block timestamp (seconds); time only moves forward."""

    now: int


@dataclass(frozen=True, slots=True)
class ActionSendLockedTransfer:
    """Lock `amount` under `secrethash` until `expiration` (unix seconds) in our next proof."""

    payment_id: int
    amount: int
    expiration: int
    secrethash: bytes
    initiator: bytes
    target: bytes
    metadata: bytes = b""


@dataclass(frozen=True, slots=True)
class ActionUnlock:
    """We learned the secret of one of our pending locks: turn it into a plain transfer."""

    secret: bytes
    payment_id: int = 0


@dataclass(frozen=True, slots=True)
class ActionExpireLock:
    """Remove our lock with this secrethash: it expired without its secret registered on chain in time."""

    secrethash: bytes


@dataclass(frozen=True, slots=True)
class ActionLearnSecret:
    """We know the preimage of a partner lock's secrethash: reveal it to the partner (the lock's payer)
    and keep it to claim the lock on chain if the partner does not unlock in time. `reveal` False: the
    payment machine has told the partner already (a mediator relays a reveal at once, see `_mediator`)."""

    secret: bytes
    reveal: bool = True


# --- inputs from the chain -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContractReceiveDeposit:
    participant: bytes
    total_deposit: int


@dataclass(frozen=True, slots=True)
class ContractReceiveWithdraw:
    participant: bytes
    total_withdraw: int


@dataclass(frozen=True, slots=True)
class ContractReceiveClosed:
    """`closer` closed the channel; disputes are possible until `settle_deadline` (a timestamp)."""

    closer: bytes
    settle_deadline: int


@dataclass(frozen=True, slots=True)
class ContractReceiveProofUpdated:
    """The non-closing participant submitted the closer's proof with this nonce."""

    participant: bytes
    nonce: int


@dataclass(frozen=True, slots=True)
class ContractReceiveSettled:
    """The channel paid out (after the challenge period, or cooperatively) and no longer exists."""

    amount1: int
    amount2: int


@dataclass(frozen=True, slots=True)
class ContractReceiveSecretRegistered:
    """The secret registry recorded `secret` at `registered_at` (block timestamp)."""

    secret: bytes
    registered_at: int


# --- effects -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Persist:
    """Store `state` (its `record`, `to_record(state)`) as this channel's latest state, fsynced, first.

    The record is encoded when asked for, not when the transition runs: a node that applies many inputs
    to one channel between two commits encodes only the state it finally writes (encoding a state with
    64 payments in flight costs far more than the payment that changed it).
    """

    channel_id: bytes
    state: ChannelState

    @property
    def record(self) -> bytes:
        return to_record(self.state)


@dataclass(frozen=True, slots=True)
class Send:
    """Send `message` to the partner of this channel."""

    message: Message


@dataclass(frozen=True, slots=True)
class ContractSendClose:
    """Close the channel on chain with the partner's latest proof (None: the partner never paid us)."""

    channel_id: bytes
    partner_proof: BalanceProof | None


@dataclass(frozen=True, slots=True)
class ContractSendUpdateProof:
    """The partner closed: submit its latest proof we hold before `deadline`, or lose what it paid us."""

    channel_id: bytes
    partner_proof: BalanceProof
    deadline: int


@dataclass(frozen=True, slots=True)
class ContractSendSettle:
    """The challenge period is over: pay both participants out."""

    channel_id: bytes


@dataclass(frozen=True, slots=True)
class ContractSendWithdraw:
    """Execute a withdraw both participants signed, before `expiry`."""

    channel_id: bytes
    participant: bytes
    total_withdraw: int
    expiry: int
    receiver: bytes
    participant_signature: bytes
    partner_signature: bytes


@dataclass(frozen=True, slots=True)
class ContractSendCooperativeSettle:
    channel_id: bytes
    participant1: bytes
    amount1: int
    receiver1: bytes
    participant2: bytes
    amount2: int
    receiver2: bytes
    signature1: bytes
    signature2: bytes


@dataclass(frozen=True, slots=True)
class EventPaymentReceived:
    payment_id: int
    amount: int
    nonce: int
    metadata: bytes


@dataclass(frozen=True, slots=True)
class EventPaymentSent:
    """The partner accepted our payment."""

    payment_id: int
    amount: int
    nonce: int


@dataclass(frozen=True, slots=True)
class EventPaymentRefused:
    """The partner refused our payment. The proof stays signed (it cannot be revoked) and is resent on
    re-establish; a refusal that persists means the channel should be closed."""

    payment_id: int
    nonce: int
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class EventWithdrawExpired:
    participant: bytes
    total_withdraw: int


@dataclass(frozen=True, slots=True)
class ContractSendRegisterSecret:
    """Register `secret` on chain; it counts only if mined at or before `deadline` (the lock's expiry)."""

    secret: bytes
    deadline: int


@dataclass(frozen=True, slots=True)
class ContractSendUnlock:
    """After settlement: claim or return the pending locks `sender` committed to, packed (proto/locks.md)."""

    channel_id: bytes
    sender: bytes
    receiver: bytes
    packed_locks: bytes


@dataclass(frozen=True, slots=True)
class EventLockReceived:
    """The partner locked `lock` for us in a transfer from `initiator` to `target`."""

    channel_id: bytes
    payment_id: int
    lock: Lock
    initiator: bytes
    target: bytes
    metadata: bytes


@dataclass(frozen=True, slots=True)
class EventLockUnlocked:
    """The partner unlocked its lock to us: `amount` is now ours off-chain."""

    channel_id: bytes
    payment_id: int
    secrethash: bytes
    amount: int


@dataclass(frozen=True, slots=True)
class EventLockExpired:
    """The partner removed its expired lock; the amount went back to it."""

    channel_id: bytes
    secrethash: bytes
    amount: int


Effect = (Persist | Send | ContractSendClose | ContractSendUpdateProof | ContractSendSettle
          | ContractSendWithdraw | ContractSendCooperativeSettle | EventPaymentReceived | EventPaymentSent
          | EventPaymentRefused | EventWithdrawExpired | ContractSendRegisterSecret | ContractSendUnlock
          | EventLockReceived | EventLockUnlocked | EventLockExpired)
