"""Cooperative settle, unilateral close and the chain's events about a channel's money and life."""

from __future__ import annotations

from dataclasses import replace

from channeld.protocol._common import (
    Transition,
    check_binding,
    partner_key,
    partner_proof_for_chain,
    transition,
)
from channeld.protocol._errors import BadSettle, IllegalAction, WrongChannel
from channeld.protocol._events import (
    ActionClose,
    ActionCooperativeSettle,
    ActionTick,
    ContractReceiveClosed,
    ContractReceiveDeposit,
    ContractReceiveProofUpdated,
    ContractReceiveSettled,
    ContractReceiveWithdraw,
    ContractSendClose,
    ContractSendCooperativeSettle,
    ContractSendSettle,
    ContractSendUpdateProof,
    Effect,
    EventWithdrawExpired,
    Send,
)
from channeld.protocol._locks import claims_due, settled_unlocks
from channeld.protocol._signing import Signer, cooperative_settle_digest
from channeld.protocol._state import UINT256_LIMIT, ChannelState, ChannelStatus, SettleTerms, Side
from channeld.wire import SettleRequest, SettleSignature

# --- cooperative settle --------------------------------------------------------------------------------


def _not_quiet(state: ChannelState) -> str | None:
    """Why final amounts cannot be agreed now, or None: every proof must be settled on both sides."""
    if state.in_flight or state.locks_in_flight:
        return f"{len(state.in_flight) + len(state.locks_in_flight)} of our proofs are not yet accepted"
    if state.held:
        return f"{len(state.held)} partner payments wait for a missing nonce"
    if state.our.locked or state.partner.locked:
        return "locks are pending"
    if state.our.withdraw is not None or state.partner.withdraw is not None:
        return "a withdraw is pending"
    return None


def _final_terms(state: ChannelState, our_receiver: bytes) -> tuple[bytes, int, bytes, bytes, int, bytes]:
    ours = (state.our.address, state.our_balance(), our_receiver)
    theirs = (state.partner.address, state.partner_balance(), state.partner.address)
    first, second = (ours, theirs) if state.our.address < state.partner.address else (theirs, ours)
    return (*first, *second)


def _digest(state: ChannelState, terms: tuple[bytes, int, bytes, bytes, int, bytes]) -> bytes:
    return cooperative_settle_digest(state.chain_id, state.contract, state.channel_id, *terms)


def _we_are_first(state: ChannelState) -> bool:
    return state.our.address < state.partner.address


def handle_action_cooperative_settle(state: ChannelState, action: ActionCooperativeSettle,
                                     signer: Signer) -> Transition:
    if state.settle is not None:
        raise IllegalAction("a cooperative settle is already in progress")
    problem = _not_quiet(state)
    if problem is not None:
        raise IllegalAction(f"cannot settle cooperatively: {problem}")
    terms = _final_terms(state, state.our.address if action.receiver is None else action.receiver)
    signature = signer.sign(_digest(state, terms))
    first = _we_are_first(state)
    settle = SettleTerms(*terms, signature1=signature if first else None,
                         signature2=None if first else signature, requested_by_us=True)
    request = SettleRequest(state.chain_id, state.contract, state.channel_id, *terms, signature)
    return transition(state, replace(state, settle=settle), [Send(request)])


def settle_request_of(state: ChannelState) -> SettleRequest | None:
    """Our cooperative settle request not yet countersigned (to send again after a reconnect)."""
    s = state.settle
    if s is None or not s.requested_by_us or (s.signature1 is not None and s.signature2 is not None):
        return None
    ours = s.signature1 if _we_are_first(state) else s.signature2
    assert ours is not None  # we signed our request when we made it
    return SettleRequest(state.chain_id, state.contract, state.channel_id, s.participant1, s.amount1,
                         s.receiver1, s.participant2, s.amount2, s.receiver2, ours)


def _terms_of(msg: SettleRequest | SettleSignature) -> tuple[bytes, int, bytes, bytes, int, bytes]:
    return (msg.participant1, msg.amount1, msg.receiver1, msg.participant2, msg.amount2, msg.receiver2)


def _settle_terms(s: SettleTerms) -> tuple[bytes, int, bytes, bytes, int, bytes]:
    return (s.participant1, s.amount1, s.receiver1, s.participant2, s.amount2, s.receiver2)


def handle_settle_request(state: ChannelState, msg: SettleRequest, signer: Signer) -> Transition:
    check_binding(state, msg.chain_id, msg.contract, msg.channel_id)
    if (msg.participant1, msg.participant2) != state.participants:
        raise WrongChannel("the settle's participants are not this channel's")
    terms = _terms_of(msg)
    current = state.settle
    if current is not None and not current.requested_by_us and _settle_terms(current) == terms:
        return state, [Send(_countersignature(state, current))]
    if current is not None:
        raise BadSettle("a different cooperative settle is already in progress")
    problem = _not_quiet(state)
    if problem is not None:
        raise BadSettle(problem)
    expected = _final_terms(state, state.our.address)
    if terms != expected:
        raise BadSettle(f"proposed payouts {msg.amount1}/{msg.amount2} to 0x{msg.receiver1.hex()}/"
                        f"0x{msg.receiver2.hex()} differ from ours {expected[1]}/{expected[4]} "
                        "(the receiver for us must be our own address)")
    digest = _digest(state, terms)
    partner_key(state.partner_public_key).check(digest, msg.signature)
    ours = signer.sign(digest)
    first = _we_are_first(state)
    settle = SettleTerms(*terms, signature1=ours if first else msg.signature,
                         signature2=msg.signature if first else ours, requested_by_us=False)
    return transition(state, replace(state, settle=settle), [Send(_countersignature(state, settle))])


def _countersignature(state: ChannelState, s: SettleTerms) -> SettleSignature:
    ours = s.signature1 if _we_are_first(state) else s.signature2
    assert ours is not None  # both signatures are set once we countersigned
    return SettleSignature(state.chain_id, state.contract, state.channel_id, *_settle_terms(s), ours)


def handle_settle_signature(state: ChannelState, msg: SettleSignature, signer: Signer) -> Transition:
    check_binding(state, msg.chain_id, msg.contract, msg.channel_id)
    s = state.settle
    if s is None or not s.requested_by_us or _settle_terms(s) != _terms_of(msg):
        raise BadSettle("the countersigned terms are not our pending settle request")
    first = _we_are_first(state)
    if (s.signature2 if first else s.signature1) == msg.signature:
        return state, []
    partner_key(state.partner_public_key).check(_digest(state, _terms_of(msg)), msg.signature)
    s = replace(s, signature2=msg.signature) if first else replace(s, signature1=msg.signature)
    assert s.signature1 is not None and s.signature2 is not None
    submit = ContractSendCooperativeSettle(state.channel_id, *_settle_terms(s), s.signature1, s.signature2)
    return transition(state, replace(state, settle=s), [submit])


# --- unilateral close, time and chain events -----------------------------------------------------------


def handle_action_close(state: ChannelState, action: ActionClose, signer: Signer) -> Transition:
    return state, [ContractSendClose(state.channel_id, partner_proof_for_chain(state))]


def _check_amount(value: object, what: str) -> None:
    if type(value) is not int or not 0 <= value < UINT256_LIMIT:
        raise IllegalAction(f"{what} must be an integer in [0, 2**256), got {value!r}")


def handle_action_tick(state: ChannelState, tick: ActionTick, signer: Signer) -> Transition:
    _check_amount(tick.now, "a block timestamp")
    if tick.now <= state.now:
        return state, []  # time never goes back; an older or repeated tick adds nothing
    new = replace(state, now=tick.now)
    effects: list[Effect] = []
    for ours in (True, False):
        side = new.our if ours else new.partner
        if side.withdraw is not None and side.withdraw.expiry < tick.now:
            effects.append(EventWithdrawExpired(side.address, side.withdraw.total_withdraw))
            new = _with_side(new, ours, replace(side, withdraw=None))
    if new.status is ChannelStatus.CLOSED and tick.now > new.settle_deadline and not new.settle_submitted:
        new = replace(new, settle_submitted=True)
        effects.append(ContractSendSettle(new.channel_id))
    new, claims = claims_due(new)
    if not effects and not claims:
        # Every change above comes with an effect, so only the clock moved: not worth a write of every
        # channel at every block. The node reads the chain's time again before it serves peers after a
        # restart, so a stale stored `now` never decides.
        return new, []
    return transition(state, new, effects + claims)


def _with_side(state: ChannelState, ours: bool, side: Side) -> ChannelState:
    return replace(state, our=side) if ours else replace(state, partner=side)


def _is_ours(state: ChannelState, participant: bytes) -> bool:
    """Whether `participant` is us (True) or the partner (False); anyone else is an error."""
    if participant == state.our.address:
        return True
    if participant == state.partner.address:
        return False
    raise IllegalAction(f"0x{participant.hex()} is not a participant of this channel")


def handle_deposit(state: ChannelState, event: ContractReceiveDeposit, signer: Signer) -> Transition:
    _check_amount(event.total_deposit, "a total deposit")
    ours = _is_ours(state, event.participant)
    side = state.our if ours else state.partner
    if event.total_deposit <= side.deposit:
        return state, []  # totals are monotonic; an older event adds nothing
    return transition(state, _with_side(state, ours, replace(side, deposit=event.total_deposit)), [])


def handle_withdraw(state: ChannelState, event: ContractReceiveWithdraw, signer: Signer) -> Transition:
    _check_amount(event.total_withdraw, "a total withdraw")
    ours = _is_ours(state, event.participant)
    side = state.our if ours else state.partner
    if event.total_withdraw <= side.withdrawn:
        return state, []
    pending = side.withdraw
    if pending is not None and pending.total_withdraw <= event.total_withdraw:
        pending = None
    new_side = replace(side, withdrawn=event.total_withdraw, withdraw=pending)
    return transition(state, _with_side(state, ours, new_side), [])


def handle_closed(state: ChannelState, event: ContractReceiveClosed, signer: Signer) -> Transition:
    _is_ours(state, event.closer)
    _check_amount(event.settle_deadline, "a settle deadline")
    new = replace(state, status=ChannelStatus.CLOSED, closer=event.closer,
                  settle_deadline=event.settle_deadline, settle=None)
    effects: list[Effect] = []
    proof = partner_proof_for_chain(state) if event.closer == state.partner.address else None
    if proof is not None:
        effects.append(ContractSendUpdateProof(state.channel_id, proof, event.settle_deadline))
    new, claims = claims_due(new)
    return transition(state, new, effects + claims)


def handle_proof_updated(state: ChannelState, event: ContractReceiveProofUpdated,
                         signer: Signer) -> Transition:
    _is_ours(state, event.participant)
    # the contract already keeps the higher nonce; nothing of ours depends on which one it now holds
    return state, []


def handle_settled(state: ChannelState, event: ContractReceiveSettled, signer: Signer) -> Transition:
    new = replace(state, status=ChannelStatus.SETTLED, in_flight=(), held=(), settle=None,
                  locks_in_flight=())
    return transition(state, new, settled_unlocks(state))
