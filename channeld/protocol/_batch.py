"""Batch consent (docs/batch.md): a hub asks each partner to agree to its channel's entry in one batch
withdraw or batch cooperative close; each side's rules are pure functions here.

Partner side, `handle_batch_request`: the entry must be the channel exactly as this partner sees it on
chain, the hub may take no more than its own balance (a close pays each side exactly its balance), the
hub's own EIP-712 signature of the single-channel terms must be valid, and a BLS request's Merkle branch
must lead from the leaf the partner builds itself to the root. A consent reserves what it grants, as a
countersigned single withdraw or cooperative settle does (`Side.withdraw` with its expiry, or `settle`),
so the hub cannot also spend it off-chain; the chain's withdraw or settle event then updates the state.

Hub side: `batch_request` builds the request (changing nothing), `ActionBatchConsented` records a
partner's verified consent the same way, so the hub's own capacity counts the amount as withdrawn.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from channeld.protocol._common import Transition, check_binding, partner_key, transition
from channeld.protocol._errors import BadSettle, BadWithdraw, IllegalAction, Refused, WrongChannel
from channeld.protocol._settle import _not_quiet
from channeld.protocol._signing import Signer, cooperative_settle_digest, withdraw_digest
from channeld.protocol._state import ChannelState, SettleTerms, Side, WithdrawTerms
from channeld.protocol._withdraw import _capacity_problem, _terms_problem
from channeld.wire import (
    BATCH_WITHDRAW,
    SCHEME_BLS,
    BatchConsent,
    BatchConsentRequest,
    EntryTerms,
    MerkleBranch,
)

SettleTuple = tuple[bytes, int, bytes, bytes, int, bytes]


class BadBatchEntry(Refused):
    """The entry is not the channel as the receiver sees it on chain (participants, deposits, withdrawn)."""

    code = 30


class BadBatchBranch(Refused):
    """The Merkle branch does not lead from the receiver's own leaf to the batch's root."""

    code = 31


@dataclass(frozen=True, slots=True)
class ActionBatchConsented:
    """The hub records a partner's consent to the request it sent (its signature is checked again)."""

    request: BatchConsentRequest
    consent: BatchConsent


# --- what both sides agree on --------------------------------------------------------------------------


def entry_of(state: ChannelState, amount: int) -> EntryTerms:
    """The channel's entry from `state`'s side of view (the sender is the hub: `state.our`)."""
    first, second = _ordered(state, state.our, state.partner)
    return EntryTerms(state.partner.address, state.challenge_period, first.deposit, second.deposit,
                      first.withdrawn, second.withdrawn, amount)


def _ordered(state: ChannelState, a: Side, b: Side) -> tuple[Side, Side]:
    return (a, b) if a.address < b.address else (b, a)


def _entry_problem(state: ChannelState, entry: EntryTerms) -> str | None:
    """Why `entry` is not this channel as we (the hub's partner) see it, or None."""
    ours = entry_of(replace(state, our=state.partner, partner=state.our), entry.amount)
    if entry != ours:
        return (f"the entry's state (period {entry.challenge_period}, deposits {entry.deposit1}/"
                f"{entry.deposit2}, withdrawn {entry.withdrawn1}/{entry.withdrawn2}) is not this "
                f"channel's (period {ours.challenge_period}, deposits {ours.deposit1}/{ours.deposit2}, "
                f"withdrawn {ours.withdrawn1}/{ours.withdrawn2})")
    return None


def _held(entry: EntryTerms) -> int:
    return entry.deposit1 + entry.deposit2 - entry.withdrawn1 - entry.withdrawn2


def _settle_terms(state: ChannelState, hub: Side, partner: Side, msg: BatchConsentRequest) -> SettleTuple:
    """The CooperativeSettle terms of a close entry: the hub paid `amount` to the batch's receiver, its
    partner the rest of the channel to its own address (what the contract pays)."""
    hub_terms = (hub.address, msg.entry.amount, msg.receiver)
    partner_terms = (partner.address, _held(msg.entry) - msg.entry.amount, partner.address)
    if hub.address < partner.address:
        return (*hub_terms, *partner_terms)
    return (*partner_terms, *hub_terms)


def _digest(state: ChannelState, hub: Side, partner: Side, msg: BatchConsentRequest) -> bytes:
    """The single-channel EIP-712 digest both sides sign for this entry."""
    if msg.kind == BATCH_WITHDRAW:
        return withdraw_digest(state.chain_id, state.contract, state.channel_id, hub.address,
                               msg.entry.amount, msg.expiry, msg.receiver)
    return cooperative_settle_digest(state.chain_id, state.contract, state.channel_id,
                                     *_settle_terms(state, hub, partner, msg))


# --- the hub -------------------------------------------------------------------------------------------


def batch_amount(state: ChannelState, kind: int) -> int:
    """The hub's entry amount: its new total withdrawn (all it holds taken out), or its payout."""
    balance = state.our_balance()
    return state.our.withdrawn + balance if kind == BATCH_WITHDRAW else balance


def batch_request(state: ChannelState, signer: Signer, *, batch_id: bytes, kind: int, scheme: int,
                  token: bytes, receiver: bytes, expiry: int, branch: MerkleBranch) -> BatchConsentRequest:
    """Our request for the partner's consent to this channel's entry (nothing changes until it answers)."""
    if state.settle is not None or state.our.withdraw is not None or state.partner.withdraw is not None:
        raise IllegalAction("a withdraw or cooperative settle is already pending on this channel")
    entry = entry_of(state, batch_amount(state, kind))
    unsigned = BatchConsentRequest(state.chain_id, state.contract, state.channel_id, batch_id, kind, scheme,
                                   token, receiver, expiry, entry, bytes(65), branch)
    signature = signer.sign(_digest(state, state.our, state.partner, unsigned))
    return replace(unsigned, hub_signature=signature)


def handle_batch_consented(state: ChannelState, action: ActionBatchConsented, signer: Signer) -> Transition:
    msg, consent = action.request, action.consent
    check_binding(state, msg.chain_id, msg.contract, msg.channel_id)
    if (consent.channel_id, consent.batch_id) != (msg.channel_id, msg.batch_id):
        raise IllegalAction("the consent answers another request")
    digest = _digest(state, state.our, state.partner, msg)
    if msg.kind == BATCH_WITHDRAW:
        terms = WithdrawTerms(state.our.address, msg.entry.amount, msg.expiry, msg.receiver,
                              msg.hub_signature, consent.signature)
        if state.our.withdraw == terms:
            return state, []
        problem = _withdraw_problem(state, state.our, state.partner, msg)
        if problem is not None:
            raise IllegalAction(f"cannot record the consent: {problem}")
        partner_key(state.partner_public_key).check(digest, consent.signature)
        return transition(state, replace(state, our=replace(state.our, withdraw=terms)), [])
    settle = _settle_state(state, state.our, state.partner, msg, consent.signature, requested_by_us=True)
    if state.settle == settle:
        return state, []
    problem = _close_problem(state, state.our, state.partner, msg)
    if problem is not None:
        raise IllegalAction(f"cannot record the consent: {problem}")
    partner_key(state.partner_public_key).check(digest, consent.signature)
    return transition(state, replace(state, settle=settle), [])


# --- the partner ---------------------------------------------------------------------------------------


def _withdraw_problem(state: ChannelState, hub: Side, partner: Side, msg: BatchConsentRequest) -> str | None:
    if state.settle is not None:
        return "a cooperative settle is in progress"
    return (_terms_problem(state, hub, msg.entry.amount, msg.expiry)
            or _capacity_problem(hub, partner, msg.entry.amount))


def _close_problem(state: ChannelState, hub: Side, partner: Side, msg: BatchConsentRequest) -> str | None:
    if state.settle is not None:
        return "a cooperative settle is already in progress"
    problem = _not_quiet(state)
    if problem is not None:
        return problem
    hub_balance = state.our_balance() if hub is state.our else state.partner_balance()
    partner_balance = state.partner_balance() if hub is state.our else state.our_balance()
    if (msg.entry.amount, _held(msg.entry) - msg.entry.amount) != (hub_balance, partner_balance):
        return (f"payouts {msg.entry.amount}/{_held(msg.entry) - msg.entry.amount} (hub/partner) are not "
                f"the balances {hub_balance}/{partner_balance}")
    if msg.scheme == SCHEME_BLS and msg.expiry <= state.now:
        return f"expiry {msg.expiry} has passed (now={state.now})"
    return None


def _settle_state(state: ChannelState, hub: Side, partner: Side, msg: BatchConsentRequest,
                  partner_signature: bytes, *, requested_by_us: bool) -> SettleTerms:
    terms = _settle_terms(state, hub, partner, msg)
    hub_first = hub.address < partner.address
    first_sig, second_sig = ((msg.hub_signature, partner_signature) if hub_first
                             else (partner_signature, msg.hub_signature))
    return SettleTerms(*terms, signature1=first_sig, signature2=second_sig, requested_by_us=requested_by_us)


def _already_granted(state: ChannelState, msg: BatchConsentRequest) -> bool:
    """Whether we already consented to exactly these terms (a BLS batch re-asks with a new root when a
    partner dropped out): the reservation stands, only the root to sign is new."""
    hub = state.partner
    if msg.kind == BATCH_WITHDRAW:
        w = hub.withdraw
        return w is not None and (w.total_withdraw, w.expiry, w.receiver, w.participant_signature) == (
            msg.entry.amount, msg.expiry, msg.receiver, msg.hub_signature)
    s = state.settle
    return (s is not None and not s.requested_by_us
            and (s.participant1, s.amount1, s.receiver1, s.participant2, s.amount2, s.receiver2)
            == _settle_terms(state, hub, state.our, msg)
            and msg.hub_signature in (s.signature1, s.signature2))


def handle_batch_request(state: ChannelState, msg: BatchConsentRequest, signer: Signer) -> Transition:
    """Consent to the hub's entry, reserving what it grants, or refuse (a `Refused` naming why)."""
    check_binding(state, msg.chain_id, msg.contract, msg.channel_id)
    if msg.entry.partner != state.our.address:
        raise WrongChannel("the entry names another partner")
    problem = _entry_problem(state, msg.entry)
    if problem is not None:
        raise BadBatchEntry(problem)
    if msg.scheme == SCHEME_BLS:
        _check_branch(state, msg)
    if _already_granted(state, msg):
        return state, []
    hub, ours = state.partner, state.our
    digest = _digest(state, hub, ours, msg)
    if msg.kind == BATCH_WITHDRAW:
        problem = _withdraw_problem(state, hub, ours, msg)
        if problem is not None:
            raise BadWithdraw(problem)
        partner_key(state.partner_public_key).check(digest, msg.hub_signature)
        terms = WithdrawTerms(hub.address, msg.entry.amount, msg.expiry, msg.receiver, msg.hub_signature,
                              signer.sign(digest))
        return transition(state, replace(state, partner=replace(hub, withdraw=terms)), [])
    problem = _close_problem(state, hub, ours, msg)
    if problem is not None:
        raise BadSettle(problem)
    partner_key(state.partner_public_key).check(digest, msg.hub_signature)
    settle = _settle_state(state, hub, ours, msg, signer.sign(digest), requested_by_us=False)
    return transition(state, replace(state, settle=settle), [])


def _check_branch(state: ChannelState, msg: BatchConsentRequest) -> None:
    # py-ecc loads with channeld.batch: only nodes that take part in a BLS batch pay for it
    from channeld.batch import BatchEntry, BatchKind, MerklePath, leaf, verify_path

    e = msg.entry
    kind = BatchKind.WITHDRAW if msg.kind == BATCH_WITHDRAW else BatchKind.CLOSE
    if kind is BatchKind.CLOSE and e.amount > _held(e):
        raise BadSettle(f"a payout of {e.amount} exceeds the {_held(e)} the channel holds")
    expected = leaf(kind, BatchEntry(state.channel_id, "0x" + e.partner.hex(), e.challenge_period, e.deposit1,
                                     e.deposit2, e.withdrawn1, e.withdrawn2, e.amount))
    branch = msg.branch
    if not verify_path(expected, MerklePath(branch.index, branch.count, branch.path), branch.root):
        raise BadBatchBranch("the Merkle branch does not lead from this channel's entry to the root")


def batch_consent_of(state: ChannelState, msg: BatchConsentRequest) -> BatchConsent:
    """Our consent to `msg` once `handle_batch_request` granted it (the ECDSA part; a BLS consent adds
    its BLS signature and key, made off the event loop)."""
    if msg.kind == BATCH_WITHDRAW:
        w = state.partner.withdraw
        signature = None if w is None else w.partner_signature
    else:
        s = state.settle
        we_first = state.our.address < state.partner.address
        signature = None if s is None else (s.signature1 if we_first else s.signature2)
    if signature is None:
        raise IllegalAction("no consent to this request is recorded")
    return BatchConsent(msg.channel_id, msg.batch_id, signature, b"", b"")


def batch_message_of(state: ChannelState, msg: BatchConsentRequest) -> bytes:
    """The 32-byte message a BLS consent signs, rebuilt from the terms we agreed to (docs/batch.md)."""
    from channeld.batch import BatchKind, BatchTerms

    kind = BatchKind.WITHDRAW if msg.kind == BATCH_WITHDRAW else BatchKind.CLOSE
    hub = state.partner.address
    terms = BatchTerms(state.chain_id, _checksum(state.contract), kind, _checksum(msg.token), _checksum(hub),
                       _checksum(msg.receiver), msg.expiry)
    return terms.message(msg.branch.count, msg.branch.root)


def _checksum(address: bytes) -> str:
    from eth_utils import to_checksum_address

    return str(to_checksum_address(address))

