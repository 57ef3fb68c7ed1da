"""Tokens that charge a fee or call back into the hub during a transfer."""

from __future__ import annotations

from channeld.chain.contract import StoredProof, encode_set_total_deposit
from tests.contracts.conftest import PERIOD, World
from tests.contracts.helpers import assert_synced, reverts
from tests.contracts.hub import Token


def _hostile(world: World, name: str) -> Token:
    token = Token(world.chain, world.alice.address, name)
    for party in (world.alice, world.bob):
        token.mint(party.address, 10**6)
        token.approve(party.address, world.hub.address, 2**256 - 1)
    return token


def test_fee_on_transfer_token_is_refused_with_a_named_error(world: World) -> None:
    token = _hostile(world, "FeeOnTransferToken")
    with reverts("TokenAmountMismatch"):
        world.hub.open(world.alice.address, world.bob.address, token.address, PERIOD, 1, 1000)
    cid, _ = world.hub.open(world.alice.address, world.bob.address, token.address, PERIOD, 2)
    with reverts("TokenAmountMismatch"):
        world.hub.deposit(world.bob.address, cid, world.bob.address, 1000)
    assert token.balance(world.hub.address) == 0


def test_reentry_during_deposit_is_refused(world: World) -> None:
    token = _hostile(world, "ReentrantToken")
    cid, _ = world.hub.open(world.alice.address, world.bob.address, token.address, PERIOD, 1)
    state = world.hub.view(cid).state
    # During bob's deposit the token tries to raise alice's total through the hub.
    token.arm(world.hub.address, encode_set_total_deposit(cid, state, world.alice.address, 1))
    with reverts("Reentrancy"):
        world.hub.deposit(world.bob.address, cid, world.bob.address, 500)
    assert token.balance(world.hub.address) == 0
    assert_synced(world, cid)


def test_reentry_during_settle_cannot_take_more_and_defers_the_payout(world: World) -> None:
    token = _hostile(world, "ReentrantToken")
    cid, _ = world.hub.open(world.alice.address, world.bob.address, token.address, PERIOD, 1, 100)
    world.hub.close(world.alice.address, cid, StoredProof(), b"")
    world.chain.advance(PERIOD + 1)
    view = world.hub.view(cid)
    assert view.closing is not None
    from channeld.chain.contract import encode_settle_channel

    token.arm(world.hub.address, encode_settle_channel(cid, view.state, view.closing))
    world.hub.settle(world.bob.address, cid)
    # The re-entering settle was refused, so alice's transfer failed and became a claimable payout.
    assert token.balance(world.hub.address) == 100
    deferred = [e for e in world.hub.events if type(e).__name__ == "PayoutDeferred"]
    assert len(deferred) == 1 and deferred[0].amount == 100
    from channeld.chain.contract import ETHER, encode_claim

    token.arm(ETHER, b"")  # the failed transfer rolled back the token's disarming too
    world.hub.transact(world.alice.address, encode_claim(token.address, world.alice.address))
    assert token.balance(world.hub.address) == 0
    assert token.balance(world.alice.address) == 10**6


def test_reentry_during_withdraw_cannot_pay_twice(world: World) -> None:
    # withdraw stores the new commitment before it pays, so the re-entering copy of the same call
    # presents a state that is no longer current.
    token = _hostile(world, "ReentrantToken")
    cid, _ = world.hub.open(world.alice.address, world.bob.address, token.address, PERIOD, 1, 100)
    alice, state = world.alice.address, world.hub.view(cid).state
    signatures = [world.hub.sign_withdraw(p, cid, alice, 10, 2**40, alice) for p in (world.alice, world.bob)]
    if not state.is_first(alice):
        signatures.reverse()
    from channeld.chain.contract import encode_set_total_withdraw

    token.arm(world.hub.address, encode_set_total_withdraw(cid, state, alice, 10, 2**40, alice, *signatures))
    with reverts("StateMismatch"):
        world.hub.withdraw(alice, cid, alice, 10, 2**40, alice, *signatures)
    assert token.balance(world.hub.address) == 100
