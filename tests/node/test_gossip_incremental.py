"""Our own announcements are signed once per change and sent incrementally, and only to peers whose
`Init` asks for gossip: a hub's wallets (no gossip bit) get none, so its gossip is not O(channels x peers)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import trio

from channeld.node._gossip import GOSSIP_FEATURES, wants_gossip
from channeld.wire import ChannelGossip
from tests.node.embedded import until
from tests.node.test_gossip_unit import _address, _open, _recording, _world


def test_the_gossip_bit_is_bit_zero_of_the_last_feature_byte() -> None:
    assert wants_gossip(GOSSIP_FEATURES)
    assert wants_gossip(b"\x80\x01") and not wants_gossip(b"\x01\x00")
    assert not wants_gossip(b"") and not wants_gossip(b"\x02")


async def test_a_peer_without_the_gossip_bit_gets_no_announcements_and_others_only_changes(
        tmp_path: Path) -> None:
    world = _world(tmp_path, ("alice", "bob", "carol"))
    async with world.node("carol") as carol, world.node("bob") as bob, world.node("alice") as alice:
        manager = carol.peers.manager
        manager.local_init = replace(manager.local_init, features=b"")  # carol: a wallet keeping no graph
        cid = await _open(alice, bob)
        await until(lambda: bob.gossip.graph.edge(cid, _address(alice)) is not None, timeout=10)
        held = bob.gossip.graph.edge(cid, _address(alice))
        assert held is not None
        async with _recording(alice) as sent:
            await alice.connect(carol.uri)
            await until(lambda: carol.node_id in alice.peers.manager.sessions)
            for _ in range(3):  # the gossip loop's own passes, nothing changed meanwhile
                await trio.sleep(world.configs["alice"].chain.poll_interval * 2)
            alice.gossip.announce()
            quiet = [(peer, m) for peer, m in sent if isinstance(m, ChannelGossip)]
            alice.gossip.announce(again=True)  # the periodic refresh, signed anew
        gossip = [(peer, m) for peer, m in sent if isinstance(m, ChannelGossip)]
        assert quiet == []  # no change: nothing re-sent, and nothing ever to carol
        assert [(peer, m.channel_id) for peer, m in gossip] == [(bob.node_id, cid)]
        assert gossip[0][1].serial > held.serial  # a new serial: a flood stopped by a refusal runs again
