"""The direct-payment fast path: the common case of `ActionPay` and `Payment`, in fewer steps.

Still pure (state in, new state and effects out), the same wire messages and the same durability
(`Persist` first). It takes only the case it was written for: an open channel with no cooperative settle
under way, a payment without a lock, and for a received payment the next nonce with nothing held. It
skips what the general machine re-proves there: the status table, the field checks of the proof and
messages we build ourselves (their values come from a state and a message that were already valid, and
the few new values are range-checked here), and the `transition()` list. Anything else, including every
input that would be refused, returns None and goes to the general machine, which raises the precise
error; `tests/perf/test_fastpath.py` proves with hypothesis that both give the same state and effects.
"""

from __future__ import annotations

from channeld.protocol._common import Transition, partner_key, proof_digest, sign_our_proof
from channeld.protocol._events import ActionPay, EventPaymentReceived, Persist, Send
from channeld.protocol._payments import _evolve_side, _evolve_state
from channeld.protocol._signing import InvalidSignature, Signer
from channeld.protocol._state import MAX_IN_FLIGHT, UINT256_LIMIT, ChannelState, ChannelStatus
from channeld.wire import Payment, PaymentAccepted

_U64_LIMIT = 1 << 64
_MAX_METADATA = 1024  # wire.Payment.metadata (VarBytes(1024))


def fast_pay(state: ChannelState, action: ActionPay, signer: Signer) -> Transition | None:
    """Our next proof and its `Payment`, or None where the general machine must decide."""
    our = state.our
    previous = our.proof
    amount, payment_id, metadata = action.amount, action.payment_id, action.metadata
    if (state.status is not ChannelStatus.OPEN or state.settle is not None or previous is None
            or len(state.in_flight) + len(state.locks_in_flight) >= MAX_IN_FLIGHT
            or type(amount) is not int or amount <= 0 or previous.nonce + 1 >= _U64_LIMIT
            or type(payment_id) is not int or not 0 <= payment_id < _U64_LIMIT
            or type(metadata) is not bytes or len(metadata) > _MAX_METADATA):
        return None
    if action.limits is not None:
        action.limits.check(amount)  # the general machine checks the limits at this point too
    transferred = previous.transferred_amount + amount
    partner = state.partner
    if transferred >= UINT256_LIMIT or (our.deposit - our.effective_withdrawn - transferred
                                        - previous.locked_amount + partner.transferred) < 0:
        return None
    proof = sign_our_proof(state, signer, previous.nonce + 1, transferred, previous.locked_amount,
                           previous.locks_root, trusted=True)
    payment = Payment.trusted(proof, payment_id, amount, metadata)
    new = _evolve_state(state, our=_evolve_side(our, proof=proof), in_flight=(*state.in_flight, payment))
    return new, [Persist(state.channel_id, new), Send(payment)]


def fast_receive(state: ChannelState, msg: Payment, signer: Signer | None = None) -> Transition | None:
    """The partner's next proof applied and acknowledged, or None where the general machine must decide.

    (`signer` keeps the shape of the machine's table: the payee signs nothing here.)"""
    proof = msg.balance_proof
    partner = state.partner
    previous = partner.proof
    if (state.status is not ChannelStatus.OPEN or state.settle is not None or state.held
            or proof.nonce != partner.nonce + 1 or proof.channel_id != state.channel_id
            or proof.chain_id != state.chain_id or proof.contract != state.contract):
        return None
    if previous is None:
        if proof.locked_amount != 0 or proof.transferred_amount != msg.amount:
            return None
    elif (proof.locked_amount != previous.locked_amount or proof.locks_root != previous.locks_root
          or proof.transferred_amount != previous.transferred_amount + msg.amount):
        return None
    our = state.our
    if (partner.deposit - partner.effective_withdrawn - proof.transferred_amount - proof.locked_amount
            + our.transferred) < 0:
        return None
    try:
        partner_key(state.partner_public_key).check_rs(proof_digest(proof), proof.signature)
    except InvalidSignature:
        return None  # the general machine raises it again, with the same text
    new = _evolve_state(state, partner=_evolve_side(partner, proof=proof))
    ack = PaymentAccepted.trusted(state.channel_id, proof.nonce, msg.payment_id)
    return new, [Persist(state.channel_id, new), Send(ack),
                 EventPaymentReceived(msg.payment_id, msg.amount, proof.nonce, msg.metadata)]
