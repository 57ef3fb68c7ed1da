"""Pure, IO-free channel state machines: events in, (new state, effects) out.

The flow, for the node that drives it:

1. A channel opens on chain: `new_channel(...)` builds its `ChannelState`; send the partner
   `announcement(state)`; feed `ContractReceiveDeposit` events as the chain reports them.
2. Every input goes through `handle(state, input, signer)`: an `Action*` from our user, a
   `ContractReceive*` from the chain follower, or a decoded wire message from the partner
   (`channeld.wire.Payment`, `PaymentAccepted`, `WithdrawRequest`, ...). It returns
   `(new_state, effects)`.
3. Carry the effects out in order. `Persist(state)` comes first whenever the state changed: write its
   `record` (fsync) before sending anything. Then `Send(message)` to the partner, `ContractSend*` to the
   transaction manager, `Event*` to the user.
4. A refused input raises and changes nothing. A `PeerFault` from a partner's message is answered: for a
   `Payment` or a lock message with `refusal_for(state, message, error)`, otherwise with a `wire.Error`
   carrying `refusal_code(error)`. A `LocalFault` is our caller's mistake.
5. On reconnect feed `ActionReconnected`; the partner's `Reestablish` makes us resend what it lacks.
6. On restart load `from_record(bytes)`; feed `ActionTick(now)` with each new block's timestamp so that
   withdraws expire and settlement is submitted after the challenge period.

Multi-hop payments (hash time locks, proto/state-machine.md#hash-time-locks):

7. The channel machine takes `ActionSendLockedTransfer`, `ActionUnlock`, `ActionExpireLock`,
   `ActionLearnSecret`, the partner's `LockedTransfer` / `Unlock` / `LockExpired` (acknowledged like
   payments) and the chain's `ContractReceiveSecretRegistered` (feed it to every channel); it reports
   `EventLockReceived` / `EventLockUnlocked` / `EventLockExpired`, and emits `ContractSendRegisterSecret`
   (+ `ContractSendClose`) when a partner lock must be claimed on chain and `ContractSendUnlock` after
   settlement.
8. One payment machine per secrethash drives the channels: `start_payment` / `handle_initiator` (we pay;
   routes from `channeld.routing.plan_routes`), `start_mediation` / `handle_mediator` (an
   `EventLockReceived` not for a request of ours), `issue_request` / `handle_target` (our payment
   requests). Feed them `SecretReveal` messages (matched by `sha256(secret)`), the lock events above,
   registrations and `ActionTick`; carry out each `ChannelDo(channel_id, action)` through `handle()` on
   that channel (skip one whose action its status no longer allows: a closed channel settles on chain).
   Store each payment state with `transfer_to_record` (read back with `transfer_from_record`) in the
   same write as the channel records, before carrying out its effects.
   Order per block: its chain events first (to channels, then payments), then its `ActionTick` (to every
   channel, then every payment): a payment must hear of a registration before it acts on expiries.

Signing: `Signer` (our key), EIP-712 digests (`balance_proof_digest`, `balance_proof_update_digest` for
watchtower delegation, `withdraw_digest`, `cooperative_settle_digest`) per proto/eip712.md,
`recover_address`.
"""

from channeld.protocol._batch import (
    ActionBatchConsented,
    BadBatchBranch,
    BadBatchEntry,
    batch_amount,
    batch_consent_of,
    batch_message_of,
    batch_request,
    entry_of,
)
from channeld.protocol._common import partner_proof_for_chain, proof_digest
from channeld.protocol._errors import (
    PERMANENT_REFUSALS,
    AmountMismatch,
    BadLock,
    BadSettle,
    BadWithdraw,
    ConflictingProof,
    IllegalAction,
    IllegalInput,
    InsufficientCapacity,
    LockNotExpired,
    NonceGapTooLarge,
    NotEnoughCapacity,
    Refused,
    StateMismatch,
    TooManyInFlight,
    UnknownLock,
    WrongChannel,
    refusal_code,
)
from channeld.protocol._events import (
    ActionClose,
    ActionCooperativeSettle,
    ActionExpireLock,
    ActionLearnSecret,
    ActionPay,
    ActionReconnected,
    ActionSendLockedTransfer,
    ActionTick,
    ActionUnlock,
    ActionWithdraw,
    ContractReceiveClosed,
    ContractReceiveDeposit,
    ContractReceiveProofUpdated,
    ContractReceiveSecretRegistered,
    ContractReceiveSettled,
    ContractReceiveWithdraw,
    ContractSendClose,
    ContractSendCooperativeSettle,
    ContractSendRegisterSecret,
    ContractSendSettle,
    ContractSendUnlock,
    ContractSendUpdateProof,
    ContractSendWithdraw,
    Effect,
    EventLockExpired,
    EventLockReceived,
    EventLockUnlocked,
    EventPaymentReceived,
    EventPaymentRefused,
    EventPaymentSent,
    EventWithdrawExpired,
    Persist,
    Send,
)
from channeld.protocol._initiator import Attempt, InitiatorState, Route, handle_initiator, start_payment
from channeld.protocol._locks import find_lock, locks_root, pack_lock, pack_locks
from channeld.protocol._machine import TRANSITIONS, announcement, check_announcement, handle, new_channel
from channeld.protocol._mediator import MediatorState, handle_mediator, start_mediation
from channeld.protocol._payments import refusal_for
from channeld.protocol._record import SCHEMA_VERSION, CorruptRecord, from_record, to_record
from channeld.protocol._signing import (
    InvalidSignature,
    KnownKey,
    Signer,
    address_of_public_key,
    balance_proof_digest,
    balance_proof_update_digest,
    cooperative_settle_digest,
    domain_separator,
    keccak256,
    recover_address,
    withdraw_digest,
)
from channeld.protocol._state import (
    DEFAULT_REVEAL_TIMEOUT,
    MAX_HELD_PROOFS,
    MAX_IN_FLIGHT,
    MAX_LOCK_LIFETIME,
    MAX_LOCKS,
    ChannelState,
    ChannelStatus,
    KnownSecret,
    SettleTerms,
    Side,
    WithdrawTerms,
)
from channeld.protocol._target import PaymentRequest, TargetState, handle_target, issue_request
from channeld.protocol._transfer import (
    BadFeePolicy,
    BadRoute,
    ChannelDo,
    EventRouteFailed,
    EventTransferFailed,
    EventTransferReceived,
    EventTransferSucceeded,
    FeePolicy,
    LockOutcome,
    SendSecretReveal,
    TransferEffect,
    decode_route,
    encode_route,
)
from channeld.protocol._transfer_record import (
    TRANSFER_RECORD_VERSION,
    TransferState,
    transfer_from_record,
    transfer_to_record,
)

__all__ = [
    "DEFAULT_REVEAL_TIMEOUT",
    "MAX_HELD_PROOFS",
    "MAX_IN_FLIGHT",
    "MAX_LOCKS",
    "MAX_LOCK_LIFETIME",
    "PERMANENT_REFUSALS",
    "SCHEMA_VERSION",
    "TRANSFER_RECORD_VERSION",
    "TRANSITIONS",
    "ActionBatchConsented",
    "ActionClose",
    "ActionCooperativeSettle",
    "ActionExpireLock",
    "ActionLearnSecret",
    "ActionPay",
    "ActionReconnected",
    "ActionSendLockedTransfer",
    "ActionTick",
    "ActionUnlock",
    "ActionWithdraw",
    "AmountMismatch",
    "Attempt",
    "BadBatchBranch",
    "BadBatchEntry",
    "BadFeePolicy",
    "BadLock",
    "BadRoute",
    "BadSettle",
    "BadWithdraw",
    "ChannelDo",
    "ChannelState",
    "ChannelStatus",
    "ConflictingProof",
    "ContractReceiveClosed",
    "ContractReceiveDeposit",
    "ContractReceiveProofUpdated",
    "ContractReceiveSecretRegistered",
    "ContractReceiveSettled",
    "ContractReceiveWithdraw",
    "ContractSendClose",
    "ContractSendCooperativeSettle",
    "ContractSendRegisterSecret",
    "ContractSendSettle",
    "ContractSendUnlock",
    "ContractSendUpdateProof",
    "ContractSendWithdraw",
    "CorruptRecord",
    "Effect",
    "EventLockExpired",
    "EventLockReceived",
    "EventLockUnlocked",
    "EventPaymentReceived",
    "EventPaymentRefused",
    "EventPaymentSent",
    "EventRouteFailed",
    "EventTransferFailed",
    "EventTransferReceived",
    "EventTransferSucceeded",
    "EventWithdrawExpired",
    "FeePolicy",
    "IllegalAction",
    "IllegalInput",
    "InitiatorState",
    "InsufficientCapacity",
    "InvalidSignature",
    "KnownKey",
    "KnownSecret",
    "LockNotExpired",
    "LockOutcome",
    "MediatorState",
    "NonceGapTooLarge",
    "NotEnoughCapacity",
    "PaymentRequest",
    "Persist",
    "Refused",
    "Route",
    "Send",
    "SendSecretReveal",
    "SettleTerms",
    "Side",
    "Signer",
    "StateMismatch",
    "TargetState",
    "TooManyInFlight",
    "TransferEffect",
    "TransferState",
    "UnknownLock",
    "WithdrawTerms",
    "WrongChannel",
    "address_of_public_key",
    "announcement",
    "balance_proof_digest",
    "balance_proof_update_digest",
    "batch_amount",
    "batch_consent_of",
    "batch_message_of",
    "batch_request",
    "check_announcement",
    "cooperative_settle_digest",
    "decode_route",
    "domain_separator",
    "encode_route",
    "entry_of",
    "find_lock",
    "from_record",
    "handle",
    "handle_initiator",
    "handle_mediator",
    "handle_target",
    "issue_request",
    "keccak256",
    "locks_root",
    "new_channel",
    "pack_lock",
    "pack_locks",
    "partner_proof_for_chain",
    "proof_digest",
    "recover_address",
    "refusal_code",
    "refusal_for",
    "start_mediation",
    "start_payment",
    "to_record",
    "transfer_from_record",
    "transfer_to_record",
    "withdraw_digest",
]
