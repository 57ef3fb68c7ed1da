"""openChannel and setTotalDeposit on a real anvil: every path and every refusal."""

from __future__ import annotations

import pytest

from channeld.chain.contract import (
    CHANNEL_TUPLE,
    ETHER,
    ChannelOpened,
    ChannelState,
    InvalidCallArgument,
    _call,
    encode_set_total_deposit,
)
from tests.contracts.conftest import PERIOD, World
from tests.contracts.helpers import assert_synced, open_channel, reverts


def test_open_token_channel_commits_sorted_state_and_takes_the_deposit(world: World) -> None:
    before = world.token.balance(world.hub.address)
    cid = open_channel(world, deposit_alice=70)
    state = world.hub.view(cid).state
    first, second = world.first_second()
    assert (state.participant1, state.participant2) == (first.address, second.address)
    own = state.deposit1 if state.is_first(world.alice.address) else state.deposit2
    assert own == 70 and state.held == 70 and state.challenge_period == PERIOD
    assert world.token.balance(world.hub.address) == before + 70


def test_open_ether_channel_requires_exact_value(world: World) -> None:
    cid = open_channel(world, deposit_alice=10**18, ether=True)
    assert world.chain.balance(ETHER, world.hub.address) == 10**18
    assert world.hub.view(cid).state.token == ETHER
    with reverts("WrongEtherAmount"):
        world.hub.transact(world.alice.address, _open_data(world, ETHER, 5, salt=777), value=4)


def test_open_token_channel_refuses_ether(world: World) -> None:
    with reverts("WrongEtherAmount"):
        world.hub.transact(world.alice.address, _open_data(world, world.token.address, 5, salt=778), value=1)


def _open_data(world: World, token: str, deposit: int, salt: int) -> bytes:
    from channeld.chain.contract import encode_open_channel

    return encode_open_channel(world.bob.address, token, PERIOD, salt, deposit)


@pytest.mark.parametrize("period", [9, 10**6 + 1])
def test_open_refuses_challenge_period_out_of_bounds(world: World, period: int) -> None:
    with reverts("ChallengePeriodOutOfBounds"):
        world.hub.open(world.alice.address, world.bob.address, world.token.address, period, 1)


def test_open_refuses_self_and_zero_partner(world: World) -> None:
    with reverts("InvalidPartner"):
        world.hub.open(world.alice.address, world.alice.address, world.token.address, PERIOD, 1)
    with reverts("InvalidPartner"):
        world.hub.open(world.alice.address, ETHER, world.token.address, PERIOD, 1)


def test_same_salt_in_the_same_second_is_refused_and_later_gives_a_new_id(world: World) -> None:
    chain, alice, bob = world.chain, world.alice.address, world.bob.address
    chain.rpc("evm_setAutomine", [False])
    try:
        data = _open_data(world, world.token.address, 0, salt=42)
        first = chain.w3.eth.send_transaction(
            {"from": alice, "to": world.hub.address, "data": data, "gas": 10**6}
        )
        second = chain.w3.eth.send_transaction(
            {"from": alice, "to": world.hub.address, "data": data, "gas": 10**6}
        )
        chain.rpc("evm_mine", [])
    finally:
        chain.rpc("evm_setAutomine", [True])
    assert chain.w3.eth.get_transaction_receipt(first)["status"] == 1
    assert chain.w3.eth.get_transaction_receipt(second)["status"] == 0  # ChannelExists
    chain.advance(1)
    cid_later, _ = world.hub.open(alice, bob, world.token.address, PERIOD, 42)
    ids = {event.channel_id for event in world.hub.events if isinstance(event, ChannelOpened)}
    assert cid_later in ids and len(ids) >= 1
    assert world.hub.slot(cid_later) != bytes(32)


def test_either_participant_raises_its_total_and_a_third_party_may_pay(world: World) -> None:
    cid = open_channel(world, deposit_alice=10, deposit_bob=20)
    world.hub.deposit(world.carol.address, cid, world.alice.address, 15)  # carol tops up alice's side
    state = world.hub.view(cid).state
    assert state.held == 35
    assert_synced(world, cid)


def test_deposit_that_lowers_or_keeps_the_total_is_refused(world: World) -> None:
    cid = open_channel(world, deposit_alice=10)
    for total in (10, 9):
        with reverts("DepositNotIncreasing"):
            world.hub.deposit(world.alice.address, cid, world.alice.address, total)


def test_deposit_for_an_outsider_is_refused(world: World) -> None:
    cid = open_channel(world, deposit_alice=10)
    state = world.hub.view(cid).state
    with pytest.raises(InvalidCallArgument):  # the binding refuses to build it...
        encode_set_total_deposit(cid, state, world.carol.address, 20)
    raw = _call(
        f"setTotalDeposit(bytes32,{CHANNEL_TUPLE},address,uint256)",  # ...and so does the contract
        ["bytes32", CHANNEL_TUPLE, "address", "uint256"],
        [cid, state.as_abi(), world.carol.address, 20],
    )
    with reverts("NotParticipant"):
        world.hub.transact(world.alice.address, raw)


def test_deposit_with_a_stale_or_forged_state_is_refused(world: World) -> None:
    cid = open_channel(world, deposit_alice=10)
    state = world.hub.view(cid).state
    forged = ChannelState(
        state.participant1,
        state.participant2,
        state.token,
        state.challenge_period,
        state.deposit1 + 1000,
        state.deposit2 + 1000,
    )
    with reverts("StateMismatch"):
        world.hub.transact(
            world.alice.address, encode_set_total_deposit(cid, forged, world.alice.address, 5000)
        )
    with reverts("UnknownChannel"):
        world.hub.transact(
            world.alice.address, encode_set_total_deposit(b"\x01" * 32, state, world.alice.address, 50)
        )


def test_ether_deposit_must_send_the_exact_increase(world: World) -> None:
    cid = open_channel(world, deposit_alice=100, ether=True)
    with reverts("WrongEtherAmount"):
        world.hub.deposit(world.bob.address, cid, world.bob.address, 50, value=49)
    world.hub.deposit(world.bob.address, cid, world.bob.address, 50)
    assert world.hub.view(cid).state.held == 150
    assert_synced(world, cid)
