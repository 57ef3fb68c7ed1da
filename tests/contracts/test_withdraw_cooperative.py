"""setTotalWithdraw and cooperativeSettle: both signatures, receivers, expiry, amounts."""

from __future__ import annotations

from channeld.chain.contract import ETHER, SETTLED, PayoutDeferred
from tests.contracts.conftest import World
from tests.contracts.helpers import assert_synced, open_channel, reverts
from tests.contracts.hub import Token, account

FAR = 2**40


def _withdraw(
    world: World, cid: bytes, total: int, receiver: str, *, expiry: int = FAR, sender: str | None = None
) -> None:
    """alice withdraws up to `total`; both sign; alice (or `sender`) sends."""
    alice = world.alice.address
    signatures = {
        party.address: world.hub.sign_withdraw(party, cid, alice, total, expiry, receiver)
        for party in (world.alice, world.bob)
    }
    state = world.hub.view(cid).state
    ordered = (signatures[state.participant1], signatures[state.participant2])
    world.hub.withdraw(sender or world.carol.address, cid, alice, total, expiry, receiver, *ordered)


def test_withdraw_pays_a_cold_wallet_and_keeps_the_channel_open(world: World) -> None:
    cid = open_channel(world, 100, 50)
    cold = account("alice cold wallet").address
    _withdraw(world, cid, 30, cold)
    _withdraw(world, cid, 45, cold)  # set-total: pays only the 15 more
    assert world.token.balance(cold) == 45
    assert world.hub.view(cid).state.held == 105
    assert_synced(world, cid)


def test_withdraw_sender_may_omit_its_own_signature_but_nobody_else(world: World) -> None:
    cid = open_channel(world, 100, 50)
    alice, state = world.alice.address, world.hub.view(cid).state
    bob_signature = world.hub.sign_withdraw(world.bob, cid, alice, 10, FAR, alice)
    pair = (b"", bob_signature) if state.is_first(alice) else (bob_signature, b"")
    # Without alice's signature the binding sends the shorter `withdraw`, whose participant is the sender.
    with reverts("NotParticipant"):
        world.hub.withdraw(world.carol.address, cid, alice, 10, FAR, alice, *pair)
    with reverts("WrongSigner"):  # bob's signature in alice's place
        world.hub.withdraw(world.bob.address, cid, alice, 10, FAR, alice, *pair[::-1])
    world.hub.withdraw(alice, cid, alice, 10, FAR, alice, *pair)
    assert world.hub.view(cid).state.held == 140
    assert_synced(world, cid)


def test_partner_may_send_a_withdrawal_without_its_own_signature(world: World) -> None:
    cid = open_channel(world, 100, 50)
    alice, state = world.alice.address, world.hub.view(cid).state
    alice_signature = world.hub.sign_withdraw(world.alice, cid, alice, 10, FAR, alice)
    pair = (alice_signature, b"") if state.is_first(alice) else (b"", alice_signature)
    with reverts("InvalidSignature"):
        world.hub.withdraw(world.carol.address, cid, alice, 10, FAR, alice, *pair)
    world.hub.withdraw(world.bob.address, cid, alice, 10, FAR, alice, *pair)
    assert world.token.balance(alice) > 0 and world.hub.view(cid).state.withdrawn1 + \
        world.hub.view(cid).state.withdrawn2 == 10
    assert_synced(world, cid)


def test_withdraw_refuses_expired_repeated_excessive_and_wrongly_signed(world: World) -> None:
    cid = open_channel(world, 100, 50)
    alice = world.alice.address
    now = world.chain.timestamp()
    with reverts("WithdrawExpired"):
        _withdraw(world, cid, 10, alice, expiry=now - 1)
    with reverts("WithdrawExceedsChannel"):
        _withdraw(world, cid, 151, alice)
    _withdraw(world, cid, 20, alice)
    with reverts("WithdrawNotIncreasing"):
        _withdraw(world, cid, 20, alice)
    state = world.hub.view(cid).state
    carol_signature = world.hub.sign_withdraw(world.carol, cid, alice, 40, FAR, alice)
    alice_signature = world.hub.sign_withdraw(world.alice, cid, alice, 40, FAR, alice)
    pair = (alice_signature, carol_signature) if state.is_first(alice) else (carol_signature, alice_signature)
    with reverts("WrongSigner"):
        world.hub.withdraw(world.carol.address, cid, alice, 40, FAR, alice, *pair)


def test_withdraw_signed_for_another_receiver_is_refused(world: World) -> None:
    cid = open_channel(world, 100, 50)
    alice, state = world.alice.address, world.hub.view(cid).state
    signatures = [world.hub.sign_withdraw(p, cid, alice, 10, FAR, alice) for p in (world.alice, world.bob)]
    if not state.is_first(alice):
        signatures.reverse()
    with reverts("WrongSigner"):
        world.hub.withdraw(world.carol.address, cid, alice, 10, FAR, world.carol.address, *signatures)


def _cooperative(
    world: World,
    cid: bytes,
    amount_alice: int,
    amount_bob: int,
    receiver_alice: str,
    sender: str | None = None,
) -> None:
    state = world.hub.view(cid).state
    bob = world.bob.address
    if state.is_first(world.alice.address):
        args = (amount_alice, receiver_alice, amount_bob, bob)
    else:
        args = (amount_bob, bob, amount_alice, receiver_alice)
    signatures = [world.hub.sign_cooperative(p, cid, *args) for p in world.first_second()]
    world.hub.cooperative_settle(sender or world.carol.address, cid, *args, *signatures)


def test_cooperative_settle_pays_at_once_and_tombstones_the_id(world: World) -> None:
    cid = open_channel(world, 100, 50)
    cold = account("alice cold wallet 2").address
    bob_before = world.token.balance(world.bob.address)
    _cooperative(world, cid, 120, 30, cold)
    assert world.token.balance(cold) == 120
    assert world.token.balance(world.bob.address) == bob_before + 30
    assert world.hub.slot(cid) == SETTLED
    assert_synced(world, cid)


def test_cooperative_settle_refuses_amounts_that_do_not_add_up(world: World) -> None:
    cid = open_channel(world, 100, 50)
    for amounts in ((100, 49), (100, 51), (151, 0)):
        with reverts("PayoutMismatch"):
            _cooperative(world, cid, *amounts, world.alice.address)


def test_cooperative_settle_refuses_a_wrong_signer(world: World) -> None:
    cid = open_channel(world, 100, 50)
    state = world.hub.view(cid).state
    args = (75, state.participant1, 75, state.participant2)
    signatures = [
        world.hub.sign_cooperative(world.carol, cid, *args),
        world.hub.sign_cooperative(world.first_second()[1], cid, *args),
    ]
    with reverts("WrongSigner"):
        world.hub.cooperative_settle(world.carol.address, cid, *args, *signatures)


def test_ether_cooperative_settle_to_a_refusing_receiver_is_deferred_then_claimed(world: World) -> None:
    cid = open_channel(world, 10**18, 0, ether=True)
    refuser = Token(world.chain, world.alice.address, "EtherRefuser").address
    _cooperative(world, cid, 10**18, 0, refuser)
    assert world.chain.balance(ETHER, refuser) == 0
    assert world.chain.balance(ETHER, world.hub.address) == 10**18
    with reverts("NothingToClaim"):
        world.hub.transact(world.carol.address, _claim(ETHER, world.carol.address))
    assert PayoutDeferred(ETHER, refuser, 10**18) in world.hub.events
    world.chain.fund(refuser, 10**18)  # gas money, set directly: the contract refuses transfers
    cold = account("refuser's rescue").address
    world.hub.transact(refuser, _claim(ETHER, cold))
    assert world.chain.balance(ETHER, cold) == 10**18


def _claim(token: str, to: str) -> bytes:
    from channeld.chain.contract import encode_claim

    return encode_claim(token, to)


def test_the_short_withdraw_checks_like_the_long_one(world: World) -> None:
    cid = open_channel(world, 100, 50)
    alice, state = world.alice.address, world.hub.view(cid).state

    def pair(signature: bytes) -> tuple[bytes, bytes]:
        return (b"", signature) if state.is_first(alice) else (signature, b"")

    carol_signature = world.hub.sign_withdraw(world.carol, cid, alice, 10, FAR, alice)
    with reverts("WrongSigner"):
        world.hub.withdraw(alice, cid, alice, 10, FAR, alice, *pair(carol_signature))
    now = world.chain.timestamp()
    stale = world.hub.sign_withdraw(world.bob, cid, alice, 10, now - 1, alice)
    with reverts("WithdrawExpired"):
        world.hub.withdraw(alice, cid, alice, 10, now - 1, alice, *pair(stale))
    too_much = world.hub.sign_withdraw(world.bob, cid, alice, 151, FAR, alice)
    with reverts("WithdrawExceedsChannel"):
        world.hub.withdraw(alice, cid, alice, 151, FAR, alice, *pair(too_much))
    other_amount = world.hub.sign_withdraw(world.bob, cid, alice, 11, FAR, alice)
    with reverts("WrongSigner"):  # signed for 11, sent for 10
        world.hub.withdraw(alice, cid, alice, 10, FAR, alice, *pair(other_amount))
    before = world.token.balance(alice)
    good = world.hub.sign_withdraw(world.bob, cid, alice, 10, FAR, alice)
    world.hub.withdraw(alice, cid, alice, 10, FAR, alice, *pair(good))
    assert world.token.balance(alice) == before + 10
    with reverts("WithdrawNotIncreasing"):
        world.hub.withdraw(alice, cid, alice, 10, FAR, alice, *pair(good))
    assert_synced(world, cid)


def test_the_short_withdraw_pays_ether(world: World) -> None:
    cid = open_channel(world, 100, ether=True)
    alice, state = world.alice.address, world.hub.view(cid).state
    signature = world.hub.sign_withdraw(world.bob, cid, alice, 40, FAR, alice)
    pair = (b"", signature) if state.is_first(alice) else (signature, b"")
    receipt = world.hub.withdraw(alice, cid, alice, 40, FAR, alice, *pair)
    assert world.chain.balance(ETHER, world.hub.address) == 60
    assert receipt["gasUsed"] < 50_000
    assert_synced(world, cid)
