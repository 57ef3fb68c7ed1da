"""Withdraw while open: the requester signs a new total, the partner countersigns after its checks.

A signed total counts as withdrawn in both sides' capacity from the moment it is signed, since either
holder of both signatures may execute it until it expires.
"""

from __future__ import annotations

from dataclasses import replace

from channeld.protocol._common import Transition, check_binding, partner_key, transition
from channeld.protocol._errors import BadWithdraw, IllegalAction, NotEnoughCapacity, WrongChannel
from channeld.protocol._events import ActionWithdraw, ContractSendWithdraw, Send
from channeld.protocol._signing import Signer, withdraw_digest
from channeld.protocol._state import (
    MAX_WITHDRAW_WINDOW,
    MIN_WITHDRAW_WINDOW,
    UINT256_LIMIT,
    ChannelState,
    Side,
    WithdrawTerms,
    balance,
)
from channeld.wire import WithdrawRequest, WithdrawSignature


def _digest(state: ChannelState, participant: bytes, total: int, expiry: int, receiver: bytes) -> bytes:
    return withdraw_digest(state.chain_id, state.contract, state.channel_id, participant, total, expiry,
                           receiver)


def _terms_problem(state: ChannelState, side: Side, total: int, expiry: int) -> str | None:
    """Why `side` may not raise its total withdrawn to `total` with this expiry, or None."""
    if side.withdraw is not None:
        return f"a withdraw of total {side.withdraw.total_withdraw} is already pending"
    if not side.withdrawn < total < UINT256_LIMIT:
        return f"total withdraw {total} must exceed the current total {side.withdrawn}"
    if not state.now + MIN_WITHDRAW_WINDOW <= expiry <= state.now + MAX_WITHDRAW_WINDOW:
        return (f"expiry {expiry} must lie between now+{MIN_WITHDRAW_WINDOW} and "
                f"now+{MAX_WITHDRAW_WINDOW} (now={state.now})")
    return None


def _capacity_problem(side: Side, other: Side, total: int) -> str | None:
    if balance(side, other, withdrawn=total) < 0:
        holds = balance(side, other, withdrawn=0)
        return f"total withdraw {total} exceeds what the participant holds ({holds})"
    return None


def handle_action_withdraw(state: ChannelState, action: ActionWithdraw, signer: Signer) -> Transition:
    if state.settle is not None:
        raise IllegalAction("cannot withdraw: a cooperative settle is in progress")
    total = action.total_withdraw
    if type(total) is not int or type(action.expiry) is not int or not 0 <= action.expiry < 1 << 64:
        raise IllegalAction("total_withdraw and expiry must be integers in range")
    problem = _terms_problem(state, state.our, total, action.expiry)
    if problem is not None:
        raise IllegalAction(f"cannot withdraw: {problem}")
    problem = _capacity_problem(state.our, state.partner, total)
    if problem is not None:
        raise NotEnoughCapacity(f"cannot withdraw: {problem}")
    receiver = state.our.address if action.receiver is None else action.receiver
    signature = signer.sign(_digest(state, state.our.address, total, action.expiry, receiver))
    request = WithdrawRequest(state.chain_id, state.contract, state.channel_id, state.our.address, total,
                              action.expiry, receiver, signature)
    terms = WithdrawTerms(state.our.address, total, action.expiry, receiver, signature)
    return transition(state, replace(state, our=replace(state.our, withdraw=terms)), [Send(request)])


def withdraw_request_of(state: ChannelState) -> WithdrawRequest | None:
    """Our pending withdraw request not yet countersigned (to send again after a reconnect)."""
    w = state.our.withdraw
    if w is None or w.partner_signature is not None:
        return None
    return WithdrawRequest(state.chain_id, state.contract, state.channel_id, w.participant, w.total_withdraw,
                           w.expiry, w.receiver, w.participant_signature)


def handle_withdraw_request(state: ChannelState, msg: WithdrawRequest, signer: Signer) -> Transition:
    check_binding(state, msg.chain_id, msg.contract, msg.channel_id)
    if msg.participant != state.partner.address:
        raise WrongChannel("a withdraw request must be for the requester's own deposit")
    pending = state.partner.withdraw
    if pending is not None and _same_terms(pending, msg) and pending.participant_signature == msg.signature:
        return state, [Send(_countersignature(state, pending, signer))]
    if state.settle is not None:
        raise BadWithdraw("a cooperative settle is in progress")
    problem = (_terms_problem(state, state.partner, msg.total_withdraw, msg.expiry)
               or _capacity_problem(state.partner, state.our, msg.total_withdraw))
    if problem is not None:
        raise BadWithdraw(problem)
    digest = _digest(state, msg.participant, msg.total_withdraw, msg.expiry, msg.receiver)
    partner_key(state.partner_public_key).check(digest, msg.signature)
    terms = WithdrawTerms(msg.participant, msg.total_withdraw, msg.expiry, msg.receiver, msg.signature,
                          signer.sign(digest))
    new = replace(state, partner=replace(state.partner, withdraw=terms))
    return transition(state, new, [Send(_countersignature(state, terms, signer))])


def _same_terms(terms: WithdrawTerms, msg: WithdrawRequest | WithdrawSignature) -> bool:
    return (terms.participant, terms.total_withdraw, terms.expiry, terms.receiver) == (
        msg.participant, msg.total_withdraw, msg.expiry, msg.receiver)


def _countersignature(state: ChannelState, terms: WithdrawTerms, signer: Signer) -> WithdrawSignature:
    assert terms.partner_signature is not None  # set when the terms were accepted
    return WithdrawSignature(state.chain_id, state.contract, state.channel_id, terms.participant,
                             terms.total_withdraw, terms.expiry, terms.receiver, terms.partner_signature)


def handle_withdraw_signature(state: ChannelState, msg: WithdrawSignature, signer: Signer) -> Transition:
    check_binding(state, msg.chain_id, msg.contract, msg.channel_id)
    ours = state.our.withdraw
    if ours is None or not _same_terms(ours, msg):
        raise BadWithdraw("the countersigned terms are not our pending withdraw request")
    if ours.partner_signature == msg.signature:
        return state, []
    digest = _digest(state, ours.participant, ours.total_withdraw, ours.expiry, ours.receiver)
    partner_key(state.partner_public_key).check(digest, msg.signature)
    terms = replace(ours, partner_signature=msg.signature)
    submit = ContractSendWithdraw(state.channel_id, terms.participant, terms.total_withdraw, terms.expiry,
                                  terms.receiver, terms.participant_signature, msg.signature)
    return transition(state, replace(state, our=replace(state.our, withdraw=terms)), [submit])
