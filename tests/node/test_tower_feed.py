"""The node's tower feeder, in-process on the embedded chain with a real tower over real sockets.

Under a stream of payments the tower ends up holding the newest proof, the node pushed only a handful
of times (coalescing: at most one push per channel per `PUSH_INTERVAL`), and a settled channel is
forgotten by the client.
"""

from __future__ import annotations

import time
from pathlib import Path

import trio

from channeld.node import Node
from channeld.node._journal import Journal
from channeld.node._towers import PUSH_INTERVAL, TOWERS_TABLE, TowerRefused
from channeld.protocol import ChannelStatus
from channeld.transport import BadPeerUri
from tests.node.embedded import ETH, World, until

PAYMENTS = 300
CONCURRENCY = 16


async def test_pushes_coalesce_and_the_tower_holds_the_newest_proof(tmp_path: Path) -> None:
    world = World(tmp_path)
    async with world.tower() as (tower, tower_uri), world.node("bob") as bob, world.node("alice") as alice:
        bob.towers.add(tower_uri)
        await alice.open_channel(bob.uri, ETH, challenge_period=600)
        await until(lambda: all(_has_open(n) for n in (alice, bob)))
        cid = next(iter(bob.channels.channels))
        client = bob.towers.clients[tower_uri]
        started = time.monotonic()
        async with trio.open_nursery() as nursery:
            for _ in range(CONCURRENCY):
                nursery.start_soon(_pay_many, alice, bob.node_id, PAYMENTS // CONCURRENCY)
        await until(bob.towers.is_synced)
        elapsed = time.monotonic() - started
        sent = PAYMENTS // CONCURRENCY * CONCURRENCY
        held = tower.db.get_held(cid, bytes.fromhex(bob.key.address[2:]))
        assert held is not None and held.nonce == sent and held.transferred_amount == sent * 10**15
        pushes = client.statistics().pushes_sent
        assert 1 <= pushes <= elapsed / PUSH_INTERVAL + 3, (pushes, elapsed)
        listed = bob.towers.list()
        assert listed[0]["uri"] == tower_uri and listed[0]["connected"] and listed[0]["pending"] == 0

        await alice.close(cid)  # cooperative: settles at once
        await until(lambda: bob.channels.entry(cid).state.status is ChannelStatus.SETTLED)
        await until(lambda: client.statistics().channels == 0)


def _has_open(node: Node) -> bool:
    return any(entry.state.status is ChannelStatus.OPEN for entry in node.channels.channels.values())


async def _pay_many(payer: Node, payee: bytes, count: int) -> None:
    for _ in range(count):
        result = await payer.pay(payee, 10**15)
        assert result["status"] == "accepted", result


async def test_adding_a_tower_is_checked_and_kept_across_restarts(tmp_path: Path) -> None:
    world = World(tmp_path)
    async with world.tower() as (_, tower_uri):
        async with world.node("bob") as bob:
            for bad, refusal in (("nonsense", BadPeerUri), (bob.uri, TowerRefused)):
                try:
                    bob.towers.add(bad)
                except refusal:
                    pass
                else:
                    raise AssertionError(f"{bad!r} was accepted")
            bob.towers.add(tower_uri)
            try:
                bob.towers.add(tower_uri)
            except TowerRefused as exc:
                assert "already added" in str(exc)
            else:
                raise AssertionError("a tower was added twice")
        journal = Journal.open(tmp_path / "bob")  # damage: a record no `add` would have written
        journal.put(TOWERS_TABLE, "zz", {"uri": "garbage"}, sync=True)
        journal.close()
        async with world.node("bob") as bob:  # starts anyway, and uses the good tower again
            assert [t["uri"] for t in bob.towers.list()] == [tower_uri, "garbage"]
            await until(lambda: bob.towers.list()[0]["connected"])
            assert list(bob.towers.clients) == [tower_uri]
