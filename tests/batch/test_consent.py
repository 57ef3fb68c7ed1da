"""The partner's and the hub's batch consent rules (channeld/protocol/_batch.py), pure and in memory."""

from __future__ import annotations

from dataclasses import replace

import pytest

from channeld import protocol as p
from channeld import wire
from channeld.batch import BatchEntry, BatchKind, leaf, merkle_path, merkle_root
from channeld.errors import PeerFault
from channeld.protocol._errors import BadSettle, BadWithdraw, WrongChannel
from channeld.protocol._signing import InvalidSignature
from tests.protocol.pair import CHANNEL_ID, NOW, Peer, make_pair, settle_all

TOKEN = bytes(20)
COLD = bytes([0xC0] * 20)
LATER = NOW + 3600
BATCH = bytes([7] * 32)


def earned(hub_earnings: int = 300) -> tuple[Peer, Peer]:
    """Alice (the hub, deposit 0) has earned `hub_earnings` from Bob (deposit 1000)."""
    alice, bob = make_pair(0, 1000)
    bob.feed(p.ActionPay(1, hub_earnings))
    settle_all(bob, alice)
    return alice, bob


def ask(hub: Peer, kind: int = wire.BATCH_WITHDRAW, branch: wire.MerkleBranch = wire.NO_BRANCH
        ) -> wire.BatchConsentRequest:
    scheme = wire.SCHEME_ECDSA if branch == wire.NO_BRANCH else wire.SCHEME_BLS
    return p.batch_request(hub.state, hub.signer, batch_id=BATCH, kind=kind, scheme=scheme, token=TOKEN,
                           receiver=COLD, expiry=LATER, branch=branch)


def refused(partner: Peer, msg: wire.BatchConsentRequest, error: type[Exception], code: int) -> None:
    before = partner.state
    decoded = wire.decode(wire.encode(msg))
    with pytest.raises(error) as caught:
        partner.feed(decoded)
    assert isinstance(caught.value, PeerFault) and p.refusal_code(caught.value) == code
    assert partner.state is before


def test_withdraw_consent_reserves_the_hubs_earnings_on_both_sides() -> None:
    alice, bob = earned(300)
    request = ask(alice)
    assert request.entry.amount == 300  # all the hub holds: its new total withdrawn
    bob.feed(wire.decode(wire.encode(request)))
    consent = p.batch_consent_of(bob.state, request)
    digest = p.withdraw_digest(alice.state.chain_id, alice.state.contract, CHANNEL_ID, alice.signer.address,
                               300, LATER, COLD)
    assert p.recover_address(digest, consent.signature) == bob.signer.address
    assert bob.state.partner_balance() == 0  # reserved: the hub cannot spend it off-chain as well
    alice.feed(p.ActionBatchConsented(request, consent))
    assert alice.state.our_balance() == 0
    assert not [e for e in alice.effects if isinstance(e, p.ContractSendWithdraw)]  # the batch submits
    with pytest.raises(p.NotEnoughCapacity):
        alice.feed(p.ActionPay(9, 1))


def test_the_chain_event_settles_the_reservation() -> None:
    alice, bob = earned(300)
    request = ask(alice)
    bob.feed(request)
    alice.feed(p.ActionBatchConsented(request, p.batch_consent_of(bob.state, request)))
    for peer in (alice, bob):
        peer.feed(p.ContractReceiveWithdraw(alice.signer.address, 300))
    assert alice.state.our.withdraw is None and bob.state.partner.withdraw is None
    assert alice.state.our_balance() == 0 and bob.state.our_balance() == 700
    bob.feed(p.ActionPay(2, 50))  # the channel keeps working
    settle_all(bob, alice)
    assert alice.state.our_balance() == 50


def test_an_unused_consent_expires() -> None:
    alice, bob = earned(300)
    bob.feed(ask(alice))
    bob.feed(p.ActionTick(LATER + 1))
    assert bob.state.partner.withdraw is None and bob.state.partner_balance() == 300


def test_asking_again_with_the_same_terms_changes_nothing() -> None:
    alice, bob = earned(300)
    request = ask(alice)
    bob.feed(request)
    state = bob.state
    bob.feed(request)
    assert bob.state is state


def test_entry_that_is_not_the_channel_is_refused() -> None:
    alice, bob = earned(300)
    request = ask(alice)
    wrong = replace(request, entry=replace(request.entry, deposit2=request.entry.deposit2 + 1,
                                           deposit1=request.entry.deposit1 + 1))
    refused(bob, wrong, p.BadBatchEntry, 30)
    refused(bob, replace(request, entry=replace(request.entry, challenge_period=1)), p.BadBatchEntry, 30)
    refused(bob, replace(request, entry=replace(request.entry, partner=bytes(20))), WrongChannel, 18)


def test_hub_taking_more_than_its_balance_is_refused() -> None:
    alice, bob = earned(300)
    request = ask(alice)
    greedy = replace(request, entry=replace(request.entry, amount=301))
    # re-signed by the hub, so only the amount is wrong
    digest = p.withdraw_digest(alice.state.chain_id, alice.state.contract, CHANNEL_ID, alice.signer.address,
                               301, LATER, COLD)
    refused(bob, replace(greedy, hub_signature=alice.signer.sign(digest)), BadWithdraw, 23)


def test_forged_hub_signature_and_second_withdraw_are_refused() -> None:
    alice, bob = earned(300)
    request = ask(alice)
    refused(bob, replace(request, hub_signature=bob.signer.sign(bytes(32))), InvalidSignature, 26)
    refused(bob, replace(request, expiry=NOW + 10), BadWithdraw, 23)  # no time left to mine it
    bob.feed(request)
    digest = p.withdraw_digest(alice.state.chain_id, alice.state.contract, CHANNEL_ID, alice.signer.address,
                               200, LATER, COLD)
    other = replace(request, entry=replace(request.entry, amount=200),
                    hub_signature=alice.signer.sign(digest))
    refused(bob, other, BadWithdraw, 23)


def test_close_consent_pays_each_side_its_balance() -> None:
    alice, bob = earned(300)
    request = ask(alice, wire.BATCH_CLOSE)
    assert request.entry.amount == 300
    bob.feed(request)
    consent = p.batch_consent_of(bob.state, request)
    p1, p2 = alice.state.participants
    amounts = {alice.signer.address: (300, COLD), bob.signer.address: (700, bob.signer.address)}
    digest = p.cooperative_settle_digest(alice.state.chain_id, alice.state.contract, CHANNEL_ID,
                                         p1, *amounts[p1], p2, *amounts[p2])
    assert p.recover_address(digest, consent.signature) == bob.signer.address
    alice.feed(p.ActionBatchConsented(request, consent))
    assert alice.state.settle is not None and alice.state.settle.requested_by_us
    with pytest.raises(p.IllegalAction):
        alice.feed(p.ActionPay(9, 1))  # no payments once the close is agreed


def test_close_with_other_payouts_or_pending_payments_is_refused() -> None:
    alice, bob = earned(300)
    request = ask(alice, wire.BATCH_CLOSE)
    p1, p2 = alice.state.participants
    amounts = {alice.signer.address: (400, COLD), bob.signer.address: (600, bob.signer.address)}
    digest = p.cooperative_settle_digest(alice.state.chain_id, alice.state.contract, CHANNEL_ID,
                                         p1, *amounts[p1], p2, *amounts[p2])
    greedy = replace(request, entry=replace(request.entry, amount=400),
                     hub_signature=alice.signer.sign(digest))
    refused(bob, greedy, BadSettle, 24)
    bob.feed(p.ActionPay(3, 5))  # not yet accepted by the hub: the channel is not quiet
    refused(bob, request, BadSettle, 24)


def bls_request(hub: Peer, kind: int, others: int = 2, index: int = 1) -> wire.BatchConsentRequest:
    amount = p.batch_amount(hub.state, kind)
    e = p.entry_of(hub.state, amount)
    mine = leaf(BatchKind(kind), BatchEntry(CHANNEL_ID, "0x" + e.partner.hex(), e.challenge_period,
                                            e.deposit1, e.deposit2, e.withdrawn1, e.withdrawn2, e.amount))
    leaves = [bytes([i + 1] * 32) for i in range(others)]
    leaves.insert(index, mine)
    path = merkle_path(leaves, index)
    branch = wire.MerkleBranch(index, len(leaves), merkle_root(leaves), b"".join(path.siblings))
    return ask(hub, kind, branch)


@pytest.mark.parametrize("kind", [wire.BATCH_WITHDRAW, wire.BATCH_CLOSE])
def test_bls_consent_checks_the_branch_against_its_own_leaf(kind: int) -> None:
    alice, bob = earned(300)
    request = bls_request(alice, kind)
    bad_root = replace(request, branch=replace(request.branch, root=bytes(32)))
    refused(bob, bad_root, p.BadBatchBranch, 31)
    bad_index = replace(request, branch=replace(request.branch, index=0))
    refused(bob, bad_index, p.BadBatchBranch, 31)
    bob.feed(wire.decode(wire.encode(request)))
    message = p.batch_message_of(bob.state, request)
    assert len(message) == 32
    # a partner dropped out: the hub asks again over a smaller tree, same terms, new root
    again = bls_request(alice, kind, others=1, index=0)
    state = bob.state
    bob.feed(again)
    assert bob.state is state and p.batch_message_of(bob.state, again) != message


def test_the_hub_records_only_a_valid_consent() -> None:
    alice, bob = earned(300)
    request = ask(alice)
    bob.feed(request)
    consent = p.batch_consent_of(bob.state, request)
    with pytest.raises(InvalidSignature):
        alice.feed(p.ActionBatchConsented(request, replace(consent, signature=alice.signer.sign(bytes(32)))))
    with pytest.raises(p.IllegalAction):
        alice.feed(p.ActionBatchConsented(request, replace(consent, batch_id=bytes(32))))
    assert alice.state.our.withdraw is None
