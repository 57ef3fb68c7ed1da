"""No batch, whatever amounts a hub puts in it, pays out more than its channels hold."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channeld import batch
from channeld.chain.contract import ContractRevert
from tests.contracts.batch_world import FAR, open_batch
from tests.contracts.conftest import World
from tests.contracts.hub import account

COLD = account("property cold wallet").address
HELD = 150  # every channel: alice 100 + partner 50


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amounts=st.lists(st.integers(0, 2 * HELD), min_size=1, max_size=4), close=st.booleans())
def test_a_batch_never_pays_more_than_its_channels_hold(
    world: World, amounts: list[int], close: bool
) -> None:
    snapshot = world.chain.snapshot()
    channels, events = dict(world.hub.channels), list(world.hub.events)
    try:
        _run(world, amounts, close)
    finally:
        world.chain.revert(snapshot)
        world.hub.channels, world.hub.events = channels, events


def _run(world: World, amounts: list[int], close: bool) -> None:
    group = open_batch(world, len(amounts), first=20)
    hub_before = world.token.balance(world.hub.address)
    token = world.token.address
    # Partners sign exactly the amounts asked: the contract alone stands between them and the channels.
    if close:
        valid = all(a <= HELD for a in amounts)
        # a payout above what a channel holds cannot even be signed meaningfully: partners sign it capped
        signatures = group.close_signatures([min(a, HELD) for a in amounts], COLD)
        data = batch.encode_batch_cooperative_close(token, COLD, group.entries(amounts), signatures)
    else:
        valid = all(0 < a <= HELD for a in amounts)
        data = batch.encode_batch_withdraw(token, COLD, FAR, group.entries(amounts),
                                           group.withdraw_signatures(amounts, COLD))
    try:
        world.hub.transact(world.alice.address, data)
        paid = True
    except ContractRevert:
        paid = False
    paid_out = hub_before - world.token.balance(world.hub.address)
    assert paid == valid
    assert paid_out <= HELD * len(amounts)
    if not paid:
        assert paid_out == 0 and world.token.balance(COLD) == 0
    elif close:
        assert paid_out == HELD * len(amounts) and world.token.balance(COLD) == sum(amounts)
    else:
        assert paid_out == sum(amounts) == world.token.balance(COLD)
