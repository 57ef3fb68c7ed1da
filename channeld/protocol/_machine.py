"""The channel machine's entry point: which input is legal in which status, and who handles it.

`handle(state, input, signer)` returns `(new_state, effects)` or raises: a `PeerFault` for a partner's
message that breaks a rule (`IllegalInput` if the status does not allow it at all), a `LocalFault` for
our own caller's mistake. Either way the state passed in is untouched and nothing is to be done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from channeld.limits import RiskLimits
from channeld.protocol._batch import ActionBatchConsented, handle_batch_consented, handle_batch_request
from channeld.protocol._common import Transition, check_binding
from channeld.protocol._errors import IllegalAction, IllegalInput, StateMismatch, WrongChannel
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
    Effect,
    Send,
)
from channeld.protocol._fastpath import fast_pay, fast_receive
from channeld.protocol._locks import (
    find_lock,
    handle_action_expire_lock,
    handle_action_learn_secret,
    handle_action_send_locked_transfer,
    handle_action_unlock,
    handle_secret_registered,
)
from channeld.protocol._payments import (
    accept_up_to,
    handle_action_pay,
    handle_payment,
    handle_payment_accepted,
    handle_payment_refused,
    unacknowledged,
)
from channeld.protocol._settle import (
    handle_action_close,
    handle_action_cooperative_settle,
    handle_action_tick,
    handle_closed,
    handle_deposit,
    handle_proof_updated,
    handle_settle_request,
    handle_settle_signature,
    handle_settled,
    handle_withdraw,
    settle_request_of,
)
from channeld.protocol._signing import KnownKey, Signer
from channeld.protocol._state import (
    DEFAULT_REVEAL_TIMEOUT,
    MAX_LOCK_LIFETIME,
    ChannelState,
    ChannelStatus,
    Side,
)
from channeld.protocol._withdraw import (
    handle_action_withdraw,
    handle_withdraw_request,
    handle_withdraw_signature,
    withdraw_request_of,
)
from channeld.wire import (
    BatchConsentRequest,
    ChannelOpened,
    LockedTransfer,
    LockExpired,
    Message,
    Payment,
    PaymentAccepted,
    PaymentRefused,
    Reestablish,
    SecretReveal,
    SettleRequest,
    SettleSignature,
    Unlock,
    WithdrawRequest,
    WithdrawSignature,
    secrethash_of,
)


def handle_action_reconnected(state: ChannelState, action: ActionReconnected, signer: Signer) -> Transition:
    """Tell the partner what we hold; resend our requests and secret reveals it may have missed."""
    effects: list[Effect] = [Send(Reestablish(state.chain_id, state.contract, state.channel_id,
                                              state.our.nonce, state.partner.nonce))]
    for request in (withdraw_request_of(state), settle_request_of(state)):
        if request is not None:
            effects.append(Send(request))
    if state.status is ChannelStatus.OPEN:
        # a reveal lost with the connection would leave the partner's lock pending until we claim on chain
        for known in state.secrets:
            if find_lock(state.partner.locks, secrethash_of(known.secret)) is not None:
                effects.append(Send(SecretReveal(known.secret)))
    return state, effects


def handle_reestablish(state: ChannelState, msg: Reestablish, signer: Signer) -> Transition:
    """The partner's view: our proofs it accepted are done; the rest are sent again in nonce order."""
    check_binding(state, msg.chain_id, msg.contract, msg.channel_id)
    if msg.received_nonce > state.our.nonce:
        raise StateMismatch(f"partner claims our proof {msg.received_nonce}; our latest is {state.our.nonce}")
    new, effects = accept_up_to(state, msg.received_nonce)
    return new, effects + [Send(p) for p in unacknowledged(new)]


Handler = Callable[[ChannelState, Any, Signer], Transition]

HANDLERS: dict[type, Handler] = {
    ActionPay: handle_action_pay,
    ActionWithdraw: handle_action_withdraw,
    ActionCooperativeSettle: handle_action_cooperative_settle,
    ActionClose: handle_action_close,
    ActionReconnected: handle_action_reconnected,
    ActionTick: handle_action_tick,
    ContractReceiveDeposit: handle_deposit,
    ContractReceiveWithdraw: handle_withdraw,
    ContractReceiveClosed: handle_closed,
    ContractReceiveProofUpdated: handle_proof_updated,
    ContractReceiveSettled: handle_settled,
    Payment: handle_payment,
    PaymentAccepted: handle_payment_accepted,
    PaymentRefused: handle_payment_refused,
    WithdrawRequest: handle_withdraw_request,
    WithdrawSignature: handle_withdraw_signature,
    SettleRequest: handle_settle_request,
    SettleSignature: handle_settle_signature,
    Reestablish: handle_reestablish,
    ActionSendLockedTransfer: handle_action_send_locked_transfer,
    ActionUnlock: handle_action_unlock,
    ActionExpireLock: handle_action_expire_lock,
    ActionLearnSecret: handle_action_learn_secret,
    ContractReceiveSecretRegistered: handle_secret_registered,
    LockedTransfer: handle_payment,
    Unlock: handle_payment,
    LockExpired: handle_payment,
    BatchConsentRequest: handle_batch_request,
    ActionBatchConsented: handle_batch_consented,
}

# inputs that may add a lock (a held lock message may be applied after any partner proof): they take the
# node's risk limits, which bound the locks pending in the channel
LimitedHandler = Callable[[ChannelState, Any, Signer, RiskLimits], Transition]
LOCK_LIMITED: dict[type, LimitedHandler] = {
    ActionSendLockedTransfer: handle_action_send_locked_transfer,
    Payment: handle_payment,
    LockedTransfer: handle_payment,
    Unlock: handle_payment,
    LockExpired: handle_payment,
}

# the common case of a direct payment, each way (protocol/_fastpath.py); None hands the input on to the table
FastPath = Callable[[ChannelState, Any, Signer], Transition | None]
FAST_PATHS: dict[type, FastPath] = {
    ActionPay: fast_pay,
    Payment: fast_receive,
}

# the legal inputs per status; anything else raises, naming the status and the input
TRANSITIONS: dict[ChannelStatus, frozenset[type]] = {
    ChannelStatus.OPEN: frozenset(HANDLERS) - {ContractReceiveProofUpdated},
    ChannelStatus.CLOSED: frozenset({
        ActionTick, ContractReceiveProofUpdated, ContractReceiveSettled, PaymentAccepted, PaymentRefused,
        ActionLearnSecret, ContractReceiveSecretRegistered,
    }),
    ChannelStatus.SETTLED: frozenset({ActionTick}),
}


def handle(state: ChannelState, event: object, signer: Signer,
           limits: RiskLimits | None = None) -> Transition:
    """Apply one input to one channel: `(new_state, effects)`, or raise and change nothing.

    `limits`: the node's risk limits (None: only the protocol's own rules, as for a wallet). Payment
    limits travel in `ActionPay.limits`, with the ledger they are checked against.
    """
    fast = FAST_PATHS.get(type(event))
    if fast is not None:
        done = fast(state, event, signer)
        if done is not None:
            return done
    return handle_general(state, event, signer, limits)


def handle_general(state: ChannelState, event: object, signer: Signer,
                   limits: RiskLimits | None = None) -> Transition:
    """`handle` without the fast path: the status table and the handlers (every input, every error)."""
    kind = type(event)
    if kind not in TRANSITIONS[state.status]:
        text = f"{kind.__name__} is not allowed while the channel is {state.status.name}"
        if isinstance(event, Message):
            raise IllegalInput(text)
        raise IllegalAction(text)
    if limits is not None and kind in LOCK_LIMITED:
        return LOCK_LIMITED[kind](state, event, signer, limits)
    return HANDLERS[kind](state, event, signer)


def new_channel(chain_id: int, contract: bytes, channel_id: bytes, challenge_period: int,
                our_address: bytes, partner_public_key: bytes,
                reveal_timeout: int = DEFAULT_REVEAL_TIMEOUT) -> ChannelState:
    """The state of a channel just opened on chain (deposits arrive as `ContractReceiveDeposit`).

    `reveal_timeout` (seconds) is how long we need to get a secret registered on chain: a lock must
    outlive `now` by at least that much for us to accept or offer it.
    """
    partner = KnownKey(partner_public_key)
    if partner.address == our_address:
        raise IllegalAction("a channel needs two different participants")
    if type(reveal_timeout) is not int or not 0 < reveal_timeout < MAX_LOCK_LIFETIME:
        raise IllegalAction(f"reveal timeout must be in (0, {MAX_LOCK_LIFETIME}) seconds")
    return ChannelState(chain_id=chain_id, contract=contract, channel_id=channel_id,
                        challenge_period=challenge_period, our=Side(our_address),
                        partner=Side(partner.address), partner_public_key=partner.public_key,
                        reveal_timeout=reveal_timeout)


def announcement(state: ChannelState) -> ChannelOpened:
    """The `ChannelOpened` message telling the partner about this channel."""
    p1, p2 = state.participants
    return ChannelOpened(state.chain_id, state.contract, state.channel_id, p1, p2, state.challenge_period)


def check_announcement(state: ChannelState, msg: ChannelOpened) -> None:
    """A partner's `ChannelOpened` matches the channel we saw on chain, or `WrongChannel`."""
    check_binding(state, msg.chain_id, msg.contract, msg.channel_id)
    if (msg.participant1, msg.participant2) != state.participants:
        raise WrongChannel("announced participants are not this channel's")
    if msg.challenge_period != state.challenge_period:
        raise WrongChannel(f"announced challenge period {msg.challenge_period} is not "
                           f"{state.challenge_period}")

