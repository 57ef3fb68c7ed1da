"""Pure, IO-free channel state machines: events in, (new state, effects) out.

The flow, for the node that drives it:

1. A channel opens on chain: `new_channel(...)` builds its `ChannelState`; send the partner
   `announcement(state)`; feed `ContractReceiveDeposit` events as the chain reports them.
2. Every input goes through `handle(state, input, signer)`: an `Action*` from our user, a
   `ContractReceive*` from the chain follower, or a decoded wire message from the partner
   (`channeld.wire.Payment`, `PaymentAccepted`, `WithdrawRequest`, ...). It returns
   `(new_state, effects)`.
3. Carry the effects out in order. `Persist(record)` comes first whenever the state changed: write it
   (fsync) before sending anything. Then `Send(message)` to the partner, `ContractSend*` to the
   transaction manager, `Event*` to the user.
4. A refused input raises and changes nothing. A `PeerFault` from a partner's message is answered: for a
   `Payment` with `refusal_for(state, payment, error)`, otherwise with a `wire.Error` carrying
   `refusal_code(error)`. A `LocalFault` is our caller's mistake.
5. On reconnect feed `ActionReconnected`; the partner's `Reestablish` makes us resend what it lacks.
6. On restart load `from_record(bytes)`; feed `ActionTick(now)` with each new block's timestamp so that
   withdraws expire and settlement is submitted after the challenge period.

Signing: `Signer` (our key), EIP-712 digests (`balance_proof_digest`, `balance_proof_update_digest` for
watchtower delegation, `withdraw_digest`, `cooperative_settle_digest`) per proto/eip712.md,
`recover_address`.
"""

from channeld.protocol._errors import (
    AmountMismatch,
    BadSettle,
    BadWithdraw,
    ConflictingProof,
    IllegalAction,
    IllegalInput,
    InsufficientCapacity,
    NonceGapTooLarge,
    NotEnoughCapacity,
    Refused,
    StateMismatch,
    TooManyInFlight,
    WrongChannel,
    refusal_code,
)
from channeld.protocol._events import (
    ActionClose,
    ActionCooperativeSettle,
    ActionPay,
    ActionReconnected,
    ActionTick,
    ActionWithdraw,
    ContractReceiveClosed,
    ContractReceiveDeposit,
    ContractReceiveProofUpdated,
    ContractReceiveSettled,
    ContractReceiveWithdraw,
    ContractSendClose,
    ContractSendCooperativeSettle,
    ContractSendSettle,
    ContractSendUpdateProof,
    ContractSendWithdraw,
    Effect,
    EventPaymentReceived,
    EventPaymentRefused,
    EventPaymentSent,
    EventWithdrawExpired,
    Persist,
    Send,
)
from channeld.protocol._machine import TRANSITIONS, announcement, check_announcement, handle, new_channel
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
    MAX_HELD_PROOFS,
    MAX_IN_FLIGHT,
    ChannelState,
    ChannelStatus,
    SettleTerms,
    Side,
    WithdrawTerms,
)

__all__ = [
    "MAX_HELD_PROOFS",
    "MAX_IN_FLIGHT",
    "SCHEMA_VERSION",
    "TRANSITIONS",
    "ActionClose",
    "ActionCooperativeSettle",
    "ActionPay",
    "ActionReconnected",
    "ActionTick",
    "ActionWithdraw",
    "AmountMismatch",
    "BadSettle",
    "BadWithdraw",
    "ChannelState",
    "ChannelStatus",
    "ConflictingProof",
    "ContractReceiveClosed",
    "ContractReceiveDeposit",
    "ContractReceiveProofUpdated",
    "ContractReceiveSettled",
    "ContractReceiveWithdraw",
    "ContractSendClose",
    "ContractSendCooperativeSettle",
    "ContractSendSettle",
    "ContractSendUpdateProof",
    "ContractSendWithdraw",
    "CorruptRecord",
    "Effect",
    "EventPaymentReceived",
    "EventPaymentRefused",
    "EventPaymentSent",
    "EventWithdrawExpired",
    "IllegalAction",
    "IllegalInput",
    "InsufficientCapacity",
    "InvalidSignature",
    "KnownKey",
    "NonceGapTooLarge",
    "NotEnoughCapacity",
    "Persist",
    "Refused",
    "Send",
    "SettleTerms",
    "Side",
    "Signer",
    "StateMismatch",
    "TooManyInFlight",
    "WithdrawTerms",
    "WrongChannel",
    "address_of_public_key",
    "announcement",
    "balance_proof_digest",
    "balance_proof_update_digest",
    "check_announcement",
    "cooperative_settle_digest",
    "domain_separator",
    "from_record",
    "handle",
    "keccak256",
    "new_channel",
    "recover_address",
    "refusal_code",
    "refusal_for",
    "to_record",
    "withdraw_digest",
]
