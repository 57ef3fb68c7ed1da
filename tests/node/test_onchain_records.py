"""The node's stored view of a channel on chain: it round-trips, and older rows still read."""

from __future__ import annotations

from dataclasses import replace

import msgpack
import pytest

from channeld.chain import contract as hub
from channeld.node._records import decode_onchain, encode_onchain
from channeld.protocol import CorruptRecord

P1, P2 = "0x" + "11" * 20, "0x" + "22" * 20
CID = b"\x07" * 32


def settled_channel() -> hub.OnChainChannel:
    state = hub.ChannelState(P1, P2, hub.ETHER, 60, 100, 50, 10, 0)
    proof = hub.StoredProof(3, 20, 5, b"\x01" * 32)
    closing = hub.Closing(P2, 1_000, proof, hub.StoredProof(0, 0, 0, b"\x00" * 32))
    return hub.OnChainChannel(CID, state, closing, hub.Settlement(90, 5, 45, 0))


@pytest.mark.parametrize(("unlocked1", "unlocked2"), [(False, False), (True, False), (False, True)])
def test_the_view_round_trips_with_its_unlocked_sides(unlocked1: bool, unlocked2: bool) -> None:
    """A side already unlocked is remembered over a restart: its unlock is not sent again (to revert)."""
    channel = replace(settled_channel(), unlocked1=unlocked1, unlocked2=unlocked2)
    assert decode_onchain(encode_onchain(channel)) == channel


def test_a_row_stored_before_the_unlocked_flags_reads_as_nothing_unlocked() -> None:
    channel = replace(settled_channel(), unlocked1=True)
    legacy = msgpack.packb(msgpack.unpackb(encode_onchain(channel))[:12])
    assert decode_onchain(legacy) == replace(channel, unlocked1=False)


def test_a_truncated_row_is_a_corrupt_record() -> None:
    short = msgpack.packb(msgpack.unpackb(encode_onchain(settled_channel()))[:11])
    with pytest.raises(CorruptRecord):
        decode_onchain(short)
