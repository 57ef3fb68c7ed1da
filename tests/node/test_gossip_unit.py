"""The node's gossip (`channeld/node/_gossip.py`): what it announces, what it accepts, whom it relays to.

Nodes run in-process on one embedded chain (real stores, sockets and contract logs). Where a test must see
exactly what a node relays, the node's peer sender is replaced by a recorder (the only stand-in here).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from channeld import wire
from channeld.chain import contract as hub
from channeld.config import RoutingConfig
from channeld.node import Node
from channeld.node._gossip import EARLY_WAIT, capacity_of, from_wire, to_wire
from channeld.protocol import ChannelStatus, FeePolicy, Signer
from channeld.routing import NoRoute, sign_announcement
from channeld.wire import ChannelGossip, Message
from tests.node.embedded import ETH, World, until

FEE_BASE, FEE_PPM = 3, 250


def _world(root: Path, names: tuple[str, ...], **routing: object) -> World:
    """Nodes re-announcing every 30 s (the default): what a test sees comes from announcing at once."""
    world = World(root, names)
    for name in names:
        settings = RoutingConfig(fee_base=FEE_BASE, fee_ppm=FEE_PPM, **routing.get(name, {}))  # type: ignore[arg-type]
        world.configs[name] = replace(world.configs[name], routing=settings)
    return world


async def _open(payer: Node, payee: Node, deposit: int = ETH) -> bytes:
    before = set(payer.channels.channels)
    await payer.open_channel(payee.uri, deposit, None, 600)
    await until(lambda: set(payer.channels.channels) - before)
    (cid,) = set(payer.channels.channels) - before
    await until(lambda: cid in payee.channels.channels and payer.channels.entry(cid).state.our.deposit)
    await until(lambda: payer.gossip.lookup(cid) is not None and payee.gossip.lookup(cid) is not None)
    return cid


def _address(node: Node) -> bytes:
    return bytes.fromhex(node.key.address[2:])


def _announce_as(node: Node, cid: bytes, partner: Node, capacity: int, serial: int) -> ChannelGossip:
    signer = Signer(node.key.private_key.secret)
    return to_wire(sign_announcement(signer, node.chain_id, node.ns.contract, cid, _address(partner),
                                     capacity, FeePolicy(FEE_BASE, FEE_PPM), serial))


@asynccontextmanager
async def _recording(node: Node) -> AsyncIterator[list[tuple[bytes, Message]]]:
    """What `node` sends to its peers meanwhile (the messages still go out)."""
    sent: list[tuple[bytes, Message]] = []
    original = node.peers.send

    def record(peer_id: bytes, message: Message) -> None:
        sent.append((peer_id, message))
        original(peer_id, message)

    node.peers.send = record  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        node.peers.send = original  # type: ignore[method-assign]


# --- pure --------------------------------------------------------------------------------------------

P1, P2 = "0x" + "11" * 20, "0x" + "22" * 20


@pytest.mark.parametrize(("closing", "settled", "cooperative", "expected"), [
    (None, None, False, 1000 + 500 - 100),
    (hub.Closing(P1, 99), None, False, None),
    (hub.Closing(P1, 99), hub.Settlement(1, 0, 2, 0), False, None),
    (None, None, True, None),
])
def test_capacity_counts_deposits_less_withdrawals_while_open(
        closing: hub.Closing | None, settled: hub.Settlement | None, cooperative: bool,
        expected: int | None) -> None:
    state = hub.ChannelState(P1, P2, hub.ETHER, 600, 1000, 500, 100, 0)
    assert capacity_of(hub.OnChainChannel(bytes(32), state, closing, settled, cooperative)) == expected


def test_an_announcement_survives_the_wire() -> None:
    signer = Signer(bytes(31) + b"\x07")
    partner = bytes(19) + b"\x01"
    announcement = sign_announcement(signer, 31337, bytes(20), bytes(range(32)), partner, 10**20,
                                     FeePolicy(FEE_BASE, FEE_PPM), 42)
    message = wire.decode(wire.encode(to_wire(announcement)))
    assert isinstance(message, ChannelGossip)
    assert from_wire(message) == announcement


# --- in-process nodes --------------------------------------------------------------------------------


async def test_a_forwarding_node_announces_each_open_channel_and_a_non_forwarding_one_none(
        tmp_path: Path) -> None:
    world = _world(tmp_path, ("alice", "bob"), bob={"forward": "no"})
    async with world.node("bob") as bob, world.node("alice") as alice:
        cid = await _open(alice, bob)
        first, second = alice.gossip.own_announcements(), alice.gossip.own_announcements()
        assert [(a.channel_id, a.announcer, a.capacity, a.fee_base, a.fee_ppm) for a in first] == [
            (cid, _address(alice), ETH, FEE_BASE, FEE_PPM)]
        assert second[0].serial > first[0].serial  # a later round replaces the earlier one everywhere
        assert bob.gossip.own_announcements() == []
        # Alice announced the channel as soon as it opened (not an interval later), Bob verified it against
        # the chain: he can route to her, she cannot to him
        await until(lambda: bob.gossip.graph.edge(cid, _address(alice)) is not None, timeout=10)
        assert alice.gossip.graph.edge(cid, _address(bob)) is None


async def test_a_verified_announcement_is_relayed_once_to_every_other_peer(tmp_path: Path) -> None:
    world = _world(tmp_path, ("alice", "bob", "carol"))
    async with world.node("carol") as carol, world.node("bob") as bob, world.node("alice") as alice:
        cid = await _open(alice, bob)
        await bob.connect(carol.uri)
        message = _announce_as(alice, cid, bob, ETH, serial=2**62)
        async with _recording(bob) as sent:
            relayed = bob.gossip.relayed
            bob.gossip.on_message(alice.node_id, message)
            bob.gossip.on_message(alice.node_id, message)  # the same serial again: the flood stops here
        assert [peer for peer, m in sent if m == message] == [carol.node_id]
        assert bob.gossip.relayed == relayed + 1
        assert bob.gossip.graph.edge(cid, _address(alice)) is not None


async def test_a_forged_or_unknown_announcement_is_refused_and_not_relayed(tmp_path: Path) -> None:
    world = _world(tmp_path, ("alice", "bob", "carol"))
    async with world.node("carol") as carol, world.node("bob") as bob, world.node("alice") as alice:
        cid = await _open(alice, bob)
        await bob.connect(carol.uri)
        # the capacity changed after signing; a channel the chain does not hold; a capacity it does not
        forged = replace(_announce_as(alice, cid, bob, ETH, serial=2**62), capacity=2 * ETH)
        unknown = _announce_as(alice, bytes(range(32)), bob, ETH, serial=2**62)
        wrong_size = _announce_as(alice, cid, bob, ETH // 2, serial=2**62)
        async with _recording(bob) as sent:
            refused = bob.gossip.refused
            for message in (forged, unknown, wrong_size):
                bob.gossip.on_message(alice.node_id, message)
            assert bob.gossip.refused == refused + 2
            # a channel the chain does not hold (yet) is given a few seconds for its logs to arrive
            await until(lambda: bob.gossip.refused == refused + 3, timeout=3 * EARLY_WAIT)
        assert not [m for _, m in sent if m in (forged, unknown, wrong_size)]
        edge = bob.gossip.graph.edge(cid, _address(alice))
        assert edge is None or edge.serial < 2**62


async def test_a_closed_channel_leaves_the_graph(tmp_path: Path) -> None:
    world = _world(tmp_path, ("alice", "bob"))
    async with world.node("bob") as bob, world.node("alice") as alice:
        cid = await _open(alice, bob)
        await until(lambda: bob.gossip.graph.edge(cid, _address(alice)) is not None)
        await alice.close(cid, force=True)
        await until(lambda: bob.gossip.lookup(cid) is None)
        assert bob.gossip.graph.edge(cid, _address(alice)) is None
        await until(lambda: alice.channels.entry(cid).state.status is not ChannelStatus.OPEN)
        assert alice.gossip.own_announcements() == []
        with pytest.raises(NoRoute):
            alice.gossip.plan(_address(bob), 1, 0)
