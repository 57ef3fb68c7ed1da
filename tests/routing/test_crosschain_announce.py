"""Conversion announcements are untrusted input: every field, the signature, the rate's life, the channels."""

from __future__ import annotations

import dataclasses

import msgpack
import pytest

from channeld import protocol as p
from channeld import routing as r
from channeld import wire
from channeld.protocol._crosschain import Asset, ConversionTerms
from tests.routing.crosschain_world import NOW, World, X, Y, bridge_world

SIGNER = p.Signer(p.keccak256(b"converter"))
TERMS = ConversionTerms(3000, 10**12, p.FeePolicy(5, 100))


def offer(**changes: object) -> r.ConversionAnnouncement:
    a = r.sign_conversion(SIGNER, X, Y, TERMS, 900, 7, NOW + 600)
    return dataclasses.replace(a, **changes) if changes else a


def test_round_trip_through_bytes_and_the_wire_message() -> None:
    a = offer()
    assert r.decode_conversion(r.encode_conversion(a)) == a
    message = r.conversion_to_wire(a)
    assert wire.decode(wire.encode(message)) == message
    assert r.conversion_from_wire(message) == a
    assert (a.source, a.target, a.terms) == (X, Y, TERMS)
    r.verify_conversion(a, NOW)


@pytest.mark.parametrize("changes", [
    {"rate_numerator": 3001}, {"fee_base": 6}, {"margin": 901}, {"serial": 8}, {"expires_at": NOW + 601},
    {"target_token": bytes(20)}, {"converter": bytes([9] * 20)},
])
def test_any_changed_field_breaks_the_signature(changes: dict[str, object]) -> None:
    with pytest.raises(r.BadAnnouncement, match=r"not signed by its converter|signature"):
        r.verify_conversion(offer(**changes), NOW)


def test_a_rate_is_used_only_while_it_lives() -> None:
    with pytest.raises(r.BadAnnouncement, match="expired"):
        r.verify_conversion(offer(), NOW + 600)
    far = r.sign_conversion(SIGNER, X, Y, TERMS, 0, 1, NOW + r.MAX_CONVERSION_LIFETIME + 1)
    with pytest.raises(r.BadAnnouncement, match="ahead of now"):
        r.verify_conversion(far, NOW)


@pytest.mark.parametrize("changes", [
    {"rate_numerator": 0}, {"rate_denominator": 1 << 128}, {"fee_ppm": 1_000_001}, {"fee_base": -1},
    {"margin": p.MAX_LOCK_LIFETIME}, {"source_chain_id": 0}, {"serial": 1 << 64}, {"converter": b"short"},
    {"signature": bytes(64)}, {"rate_numerator": True},
    {"target_chain_id": X.chain_id, "target_contract": X.contract, "target_token": X.token},
])
def test_malformed_fields_are_refused_when_built(changes: dict[str, object]) -> None:
    with pytest.raises(r.BadAnnouncement):
        offer(**changes)


def test_malformed_bytes_are_refused_when_decoded() -> None:
    good = msgpack.unpackb(r.encode_conversion(offer()), raw=False)
    bad_values = [good[:-1], [2, *good[1:]], [*good[:8], 5, *good[9:]], [*good[:9], b"\x00" * 31, *good[10:]],
                  {"a": 1}, [True, *good[1:]]]
    for value in bad_values:
        with pytest.raises(r.BadAnnouncement):
            r.decode_conversion(msgpack.packb(value, use_bin_type=True))
    with pytest.raises(r.BadAnnouncement):
        r.decode_conversion(r.encode_conversion(offer()) + b"\x00")
    with pytest.raises(r.BadAnnouncement):
        r.decode_conversion(msgpack.packb([*good[:8], (0).to_bytes(32, "big"), *good[9:]], use_bin_type=True))


def test_the_wire_message_checks_its_rules() -> None:
    message = r.conversion_to_wire(offer())
    for changes in ({"rate_denominator": 0}, {"fee_ppm": 1_000_001}, {"target": message.source}):
        with pytest.raises(wire.InvalidMessage):
            dataclasses.replace(message, **changes)


def test_a_graph_takes_conversions_only_between_its_assets_by_nodes_with_channels_in_both() -> None:
    w = bridge_world()
    stranger = p.Signer(p.keccak256(b"stranger"))
    lonely = r.sign_conversion(stranger, X, Y, TERMS, 0, 1, NOW + 60)
    with pytest.raises(r.BadAnnouncement, match="has no channel"):
        w.graph.add_conversion(lonely, NOW)
    elsewhere = Asset(5, X.contract)
    with pytest.raises(r.BadAnnouncement, match="an asset we do not route"):
        w.graph.add_conversion(r.sign_conversion(w.signers["conv"], elsewhere, Y, TERMS, 0, 1, NOW + 60), NOW)
    forged = dataclasses.replace(r.sign_conversion(w.signers["conv"], X, Y, TERMS, 0, 50, NOW + 60),
                                 rate_numerator=10**6)
    with pytest.raises(r.BadAnnouncement):
        w.graph.add_conversion(forged, NOW)
    assert [c.rate_numerator for c in w.graph.conversions_into(Y, NOW)] == [3]


def test_a_graph_for_the_wrong_chain_is_refused() -> None:
    w = World()
    with pytest.raises(r.RoutingError, match="is for chain"):
        r.CrossChainGraph({Y: w.graphs[X]})
