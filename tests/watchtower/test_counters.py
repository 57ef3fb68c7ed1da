"""The tower's counters (pushes accepted and refused, disputes submitted) carry on across its restarts."""

from __future__ import annotations

from pathlib import Path

import trio

from channeld.store import Namespace
from channeld.watchtower import RefusalCode, TowerDB, Watchtower
from channeld.watchtower.client import TowerClient, authorize
from channeld.wire import PushProof
from tests.tools import Anvil
from tests.watchtower.kit import Party
from tests.watchtower.test_service import ask, open_session, running_tower


async def test_counters_survive_a_restart(anvil: Anvil, tmp_path: Path) -> None:
    async with running_tower(anvil, tmp_path) as setup, trio.open_nursery() as nursery:
        client = TowerClient(setup.uri, setup.bob.node_key, setup.chain.chain_id, setup.chain.contract_bytes)
        nursery.start_soon(client.run)
        for nonce in (1, 2):
            client.push(setup.proof(nonce, nonce * 100))
            with trio.fail_after(10):
                await client.wait_synced()
        mallory = Party.new()
        session = await open_session(setup, mallory.node_key)
        nursery.start_soon(session.run)
        theirs = setup.proof(9, 900)
        reply = await ask(session, PushProof(theirs, authorize(mallory.signer, theirs)))
        assert reply.code == RefusalCode.NOT_PARTICIPANT  # type: ignore[attr-defined]
        before = setup.tower.statistics()
        assert before.pushes_accepted >= 2 and before.pushes_refused == 1
        nursery.cancel_scope.cancel()
    # the refusal wrote nothing itself: the clean stop kept it
    db = TowerDB(tmp_path / "db", Namespace(setup.chain.chain_id, setup.chain.contract_bytes))
    try:
        again = Watchtower(db, Party.new().node_key).statistics()
    finally:
        db.close()
    assert (again.pushes_accepted, again.pushes_refused) == (before.pushes_accepted, 1)
    assert again.disputes_submitted == before.disputes_submitted


def test_a_damaged_counters_row_counts_from_zero(tmp_path: Path) -> None:
    ns = Namespace(7, b"\x01" * 20)
    db = TowerDB(tmp_path / "db", ns)
    try:
        batch = db.batch()
        batch.set_counters({"pushes_accepted": 3, "pushes_refused": -1})
        db.write(batch)
        assert db.load_counters() == {"pushes_accepted": 3}
        assert Watchtower(db, Party.new().node_key).statistics().pushes_accepted == 3
    finally:
        db.close()
