"""Random sequences of deposits, withdrawals, proofs and closes never pay out more than was deposited."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channeld.chain.contract import ContractRevert, StoredProof
from tests.contracts.conftest import PERIOD, World
from tests.contracts.helpers import assert_synced, open_channel

FAR = 2**40
actions = st.lists(
    st.one_of(
        st.tuples(st.just("deposit"), st.booleans(), st.integers(1, 200)),
        st.tuples(st.just("withdraw"), st.booleans(), st.integers(1, 200)),
    ),
    max_size=5,
)
proofs = st.tuples(st.integers(0, 400), st.integers(0, 400), st.integers(0, 50), st.integers(0, 50))
endings = st.sampled_from(["settle", "cooperative"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=actions, sent=proofs, ending=endings)
def test_payouts_never_exceed_deposits(
    world: World, steps: list[tuple[str, bool, int]], sent: tuple[int, int, int, int], ending: str
) -> None:
    snapshot = world.chain.snapshot()
    channels, events = dict(world.hub.channels), list(world.hub.events)
    try:
        _run(world, steps, sent, ending)
    finally:
        world.chain.revert(snapshot)
        world.hub.channels, world.hub.events = channels, events


def _run(
    world: World, steps: list[tuple[str, bool, int]], sent: tuple[int, int, int, int], ending: str
) -> None:
    hub, token = world.hub, world.token
    start = token.balance(hub.address)
    cid = open_channel(world, 50, 50)
    deposited, paid = 100, 0
    for kind, by_alice, amount in steps:
        party = world.alice if by_alice else world.bob
        state = hub.view(cid).state
        first = state.is_first(party.address)
        if kind == "deposit":
            total = (state.deposit1 if first else state.deposit2) + amount
            hub.deposit(party.address, cid, party.address, total)
            deposited += amount
            continue
        total = (state.withdrawn1 if first else state.withdrawn2) + amount
        signatures = [
            hub.sign_withdraw(p, cid, party.address, total, FAR, party.address) for p in world.first_second()
        ]
        try:
            hub.withdraw(party.address, cid, party.address, total, FAR, party.address, *signatures)
            paid += amount
        except ContractRevert as refused:
            assert refused.name == "WithdrawExceedsChannel"
    held = hub.view(cid).state.held
    assert token.balance(hub.address) - start == deposited - paid == held
    paid += _end(world, cid, sent, ending)
    assert_synced(world, cid)
    assert paid <= deposited
    assert token.balance(hub.address) - start == deposited - paid


def _end(world: World, cid: bytes, sent: tuple[int, int, int, int], ending: str) -> int:
    hub = world.hub
    before = hub.view(cid).state.held
    if ending == "cooperative":
        state = hub.view(cid).state
        args = (before // 3, state.participant1, before - before // 3, state.participant2)
        signatures = [hub.sign_cooperative(p, cid, *args) for p in world.first_second()]
        hub.cooperative_settle(world.carol.address, cid, *args, *signatures)
        return before
    alice_proof = StoredProof(4, sent[0], sent[2], b"\x01" * 32 if sent[2] else bytes(32))
    bob_proof = StoredProof(3, sent[1], sent[3], b"\x02" * 32 if sent[3] else bytes(32))
    hub.close(world.alice.address, cid, bob_proof, hub.sign_proof(world.bob, cid, bob_proof))
    hub.update(world.bob.address, cid, alice_proof, hub.sign_proof(world.alice, cid, alice_proof))
    world.chain.advance(PERIOD + 1)
    hub.settle(world.carol.address, cid)
    settled = hub.view(cid).settled
    assert settled is not None
    assert settled.amount1 + settled.amount2 + settled.locked1 + settled.locked2 == before
    return settled.amount1 + settled.amount2
