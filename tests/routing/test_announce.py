"""Channel announcements: signed by the announcer, checked against the chain, strictly decoded."""

from __future__ import annotations

from dataclasses import replace

import msgpack
import pytest

from channeld import protocol as p
from channeld import routing as r
from tests.routing.graphs import CHAIN_ID, CONTRACT, World


def world_with_channel() -> tuple[World, bytes]:
    world = World()
    return world, world.channel("alice", "bob", 500, p.FeePolicy(3, 100), p.FeePolicy(1, 0))


def test_announcements_enter_the_graph_with_the_announcers_fees() -> None:
    world, cid = world_with_channel()
    edge = world.graph.edge(cid, world.node("alice"))
    assert edge is not None and edge.target == world.node("bob")
    assert (edge.capacity, edge.fees) == (500, p.FeePolicy(3, 100))
    back = world.graph.edge(cid, world.node("bob"))
    assert back is not None and back.fees == p.FeePolicy(1, 0)


def test_encoding_round_trips() -> None:
    world, cid = world_with_channel()
    a = world.announce("alice", "bob", cid, 500, p.FeePolicy(2, 2))
    assert r.decode_announcement(r.encode_announcement(a)) == a


def test_newer_serial_replaces_and_older_is_ignored() -> None:
    world, cid = world_with_channel()
    old = r.sign_announcement(world.signers["alice"], CHAIN_ID, CONTRACT, cid, world.node("bob"), 500,
                              p.FeePolicy(99, 0), 1)
    assert world.graph.add_announcement(old) is False
    world.announce("alice", "bob", cid, 500, p.FeePolicy(7, 0))
    edge = world.graph.edge(cid, world.node("alice"))
    assert edge is not None and edge.fees == p.FeePolicy(7, 0)


def signed(world: World, cid: bytes, **changes: object) -> r.ChannelAnnouncement:
    a = r.sign_announcement(world.signers["alice"], CHAIN_ID, CONTRACT, cid, world.node("bob"), 500,
                            p.FeePolicy(1, 1), 1000)
    return replace(a, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(("change", "match"), [
    ({"fee_base": 0}, "not signed by its announcer"),
    ({"reveal_timeout": 1}, "not signed by its announcer"),
    ({"capacity": 600}, "not signed by its announcer"),
    ({"signature": bytes(65)}, "signature"),
])
def test_refuses_tampered_announcements(change: dict[str, object], match: str) -> None:
    world, cid = world_with_channel()
    with pytest.raises(r.BadAnnouncement, match=match):
        world.graph.add_announcement(signed(world, cid, **change))


def test_refuses_an_announcement_signed_by_a_third_party() -> None:
    world, cid = world_with_channel()
    mallory = p.Signer(p.keccak256(b"mallory"))
    a = signed(world, cid)
    digest = r.announcement_digest(a.chain_id, a.contract, a.channel_id, a.participant1, a.participant2,
                                   a.capacity, a.announcer, a.fee_base, a.fee_ppm, a.reveal_timeout, a.serial)
    with pytest.raises(r.BadAnnouncement, match="not signed by its announcer"):
        world.graph.add_announcement(replace(a, signature=mallory.sign(digest)))


def test_refuses_what_the_chain_does_not_confirm() -> None:
    world, cid = world_with_channel()
    world.node("carol")
    unknown = p.keccak256(b"no such channel")
    carol = world.signers["carol"]
    cases = [
        (r.sign_announcement(world.signers["alice"], CHAIN_ID, CONTRACT, unknown, world.node("bob"), 500,
                             p.FeePolicy(), 5), "does not exist on chain"),
        (r.sign_announcement(carol, CHAIN_ID, CONTRACT, cid, world.node("bob"), 500, p.FeePolicy(), 5),
         "participants"),
        (r.sign_announcement(world.signers["alice"], CHAIN_ID, CONTRACT, cid, world.node("bob"), 501,
                             p.FeePolicy(), 5), "capacity"),
        (r.sign_announcement(world.signers["alice"], CHAIN_ID + 1, CONTRACT, cid, world.node("bob"), 500,
                             p.FeePolicy(), 5), "not ours"),
    ]
    before = len(world.graph)
    for announcement, match in cases:
        with pytest.raises(r.BadAnnouncement, match=match):
            world.graph.add_announcement(announcement)
    assert len(world.graph) == before


def test_an_announcer_must_be_a_participant() -> None:
    world, cid = world_with_channel()
    a = signed(world, cid)
    with pytest.raises(r.BadAnnouncement, match="announcer must be a participant"):
        replace(a, announcer=bytes(20))


@pytest.mark.parametrize("data", [
    b"", b"\xc1", msgpack.packb([1, 2, 3]), msgpack.packb({"a": 1}),
    msgpack.packb([2] + [0] * 12), msgpack.packb([1] * 13), msgpack.packb([1] * 12),
    msgpack.packb([1, 2]) + b"\x00",
])
def test_decoding_refuses_malformed_bytes(data: bytes) -> None:
    with pytest.raises(r.BadAnnouncement):
        r.decode_announcement(data)


def test_decoding_refuses_wrong_field_types() -> None:
    world, cid = world_with_channel()
    fields = msgpack.unpackb(r.encode_announcement(signed(world, cid)))
    for index, bad in ((1, "x"), (2, b"short"), (8, -1), (9, 2_000_000), (10, -5), (11, 1.5), (12, b"\x00")):
        broken = list(fields)
        broken[index] = bad
        with pytest.raises(r.BadAnnouncement):
            r.decode_announcement(msgpack.packb(broken))


def test_own_channels_use_the_exact_balance_and_leave_when_closed() -> None:
    from tests.protocol.pair import make_pair

    alice, _ = make_pair(300, 100)
    graph = r.ChannelGraph(CHAIN_ID, CONTRACT, lambda cid: None)
    graph.add_own_channel(alice.state)
    edge = graph.edge(alice.state.channel_id, alice.signer.address)
    assert edge is not None and edge.capacity == 300
    alice.feed(p.ActionPay(1, 120))
    graph.add_own_channel(alice.state)
    edge = graph.edge(alice.state.channel_id, alice.signer.address)
    assert edge is not None and edge.capacity == 180
    alice.feed(p.ContractReceiveClosed(alice.signer.address, 10**10))
    graph.add_own_channel(alice.state)
    assert len(graph) == 0


def test_a_fee_base_beyond_uint64_cannot_be_announced() -> None:
    world, cid = world_with_channel()
    with pytest.raises(r.BadAnnouncement, match="out of range"):
        replace(signed(world, cid), fee_base=1 << 64)
