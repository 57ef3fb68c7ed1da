"""The pure rules: which pushes are stored, when a close needs a dispute, when a dispute is over."""

from __future__ import annotations

from dataclasses import replace

import pytest

from channeld.chain.contract import ETHER, ChannelState, Closing, OnChainChannel, Settlement, StoredProof
from channeld.watchtower import (
    DisputeStatus,
    HeldProof,
    PushRefusal,
    RefusalCode,
    check_push,
    dispute_calldata,
    dispute_needed,
    dispute_status,
)
from channeld.watchtower.client import authorize
from channeld.wire import PushProof
from tests.watchtower.kit import Party, sign_proof

CHAIN, CONTRACT, CID = 31337, bytes(range(20)), b"\x42" * 32
ALICE, BOB, MALLORY = Party(b"\x01" * 32), Party(b"\x02" * 32), Party(b"\x03" * 32)


def _addr(party: Party) -> bytes:
    return party.signer.address


def _channel() -> OnChainChannel:
    first, second = sorted([ALICE.address, BOB.address], key=lambda a: int(a, 16))
    return OnChainChannel(CID, ChannelState(first, second, ETHER, 600, 10**18, 0))


def _closed_by_alice(settle_time: int = 1000, alice_nonce: int = 0) -> OnChainChannel:
    channel = _channel()
    proof = StoredProof(alice_nonce, alice_nonce * 10) if alice_nonce else StoredProof()
    alice_first = channel.state.participant1 == ALICE.address
    closing = Closing(ALICE.address, settle_time, **{"proof1" if alice_first else "proof2": proof})
    return replace(channel, closing=closing)


def _push(nonce: int, signer: Party = ALICE, authorizer: Party = BOB, chain: int = CHAIN) -> PushProof:
    proof = sign_proof(chain, CONTRACT, CID, signer.signer, nonce, nonce * 10)
    return PushProof(proof, authorize(authorizer.signer, proof))


def _check(push: PushProof, channel: OnChainChannel | None = None, held: HeldProof | None = None,
           pusher: Party = BOB, now: int = 0) -> HeldProof | None:
    return check_push(CHAIN, CONTRACT, _addr(pusher), push, channel or _channel(), held, now)


def _refused(code: RefusalCode, *args: object, **kwargs: object) -> None:
    with pytest.raises(PushRefusal) as caught:
        _check(*args, **kwargs)  # type: ignore[arg-type]
    assert caught.value.code is code


def test_a_valid_push_becomes_the_held_proof() -> None:
    held = _check(_push(3))
    assert held is not None and (held.pusher, held.nonce, held.transferred_amount) == (_addr(BOB), 3, 30)


def test_refusals_name_their_reason() -> None:
    held = _check(_push(3))
    _refused(RefusalCode.WRONG_CHANNEL, _push(4, chain=1))
    with pytest.raises(PushRefusal) as caught:
        check_push(CHAIN, CONTRACT, _addr(BOB), _push(4), None, None, 0)
    assert caught.value.code is RefusalCode.UNKNOWN_CHANNEL
    _refused(RefusalCode.NOT_PARTICIPANT, _push(4, authorizer=MALLORY), pusher=MALLORY)
    _refused(RefusalCode.STALE, _push(2), held=held)
    _refused(RefusalCode.CONFLICTING_PROOF, PushProof(
        sign_proof(CHAIN, CONTRACT, CID, ALICE.signer, 3, 99), _push(3).authorization), held=held)
    _refused(RefusalCode.INVALID_SIGNATURE, _push(4, signer=MALLORY))
    _refused(RefusalCode.INVALID_SIGNATURE, _push(4, signer=BOB))  # the pusher's own proof is not evidence
    _refused(RefusalCode.BAD_AUTHORIZATION, _push(4, authorizer=ALICE))
    _refused(RefusalCode.NOT_WATCHABLE, _push(4), channel=_closed_by_alice(settle_time=10), now=11)
    settled = replace(_closed_by_alice(), settled=Settlement(1, 0, 1, 0))
    _refused(RefusalCode.NOT_WATCHABLE, _push(4), channel=settled)


def test_an_exact_repush_is_accepted_without_storing() -> None:
    held = _check(_push(3))
    assert _check(_push(3), held=held) is None
    assert _check(_push(4), held=held) is not None


def test_a_malformed_signature_is_refused_not_raised() -> None:
    push = _push(4)
    broken = replace(push.balance_proof, signature=b"\xff" * 64 + b"\x1b")
    _refused(RefusalCode.INVALID_SIGNATURE, PushProof(broken, push.authorization))


def test_a_close_by_the_partner_below_the_held_nonce_needs_a_dispute() -> None:
    held = _check(_push(7))
    dispute = dispute_needed(_closed_by_alice(settle_time=1000), held, now=10)
    assert dispute is not None and (dispute.channel_id, dispute.nonce, dispute.settle_time) == (CID, 7, 1000)
    assert dispute_needed(_closed_by_alice(alice_nonce=7), held, now=10) is None
    assert dispute_needed(_closed_by_alice(settle_time=5), held, now=10) is None
    assert dispute_needed(_channel(), held, now=10) is None
    # bob closing: the held proof (bob's delegation) works against alice, not against him
    bob_closed = replace(_channel(), closing=Closing(BOB.address, 1000))
    assert dispute_needed(bob_closed, held, now=10) is None
    assert len(dispute_calldata(_closed_by_alice(), held)) > 4  # type: ignore[arg-type]


def test_a_dispute_ends_when_the_chain_holds_our_nonce_or_time_is_up() -> None:
    held = _check(_push(7))
    dispute = dispute_needed(_closed_by_alice(), held, now=0)
    assert dispute is not None
    assert dispute_status(_closed_by_alice(), dispute, 10) is DisputeStatus.PENDING
    assert dispute_status(_closed_by_alice(alice_nonce=6), dispute, 10) is DisputeStatus.PENDING
    assert dispute_status(_closed_by_alice(alice_nonce=7), dispute, 10) is DisputeStatus.DONE
    assert dispute_status(_closed_by_alice(alice_nonce=9), dispute, 10) is DisputeStatus.DONE
    assert dispute_status(_closed_by_alice(), dispute, 1001) is DisputeStatus.EXPIRED
    assert dispute_status(None, dispute, 10) is DisputeStatus.DONE
