"""Signed channel announcements, as nodes gossip them, and their checks against the chain.

An announcement says: on (chain id, contract) channel `channel_id` joins `participant1 < participant2`
with `capacity` (the sum of both deposits), and `announcer` (one of the two) forwards payments out through
it for `fee_base + fee_ppm` per million, needing `reveal_timeout` seconds between the expiries of the
locks it receives and forwards; `serial` orders one announcer's announcements of one channel (a
higher one replaces a lower one). The announcer signs the keccak256 digest of the packed fields behind a
fixed tag, so the signature cannot be taken for a balance proof's or any EIP-712 message's.

Wire form (for gossip): msgpack array `[1, chain_id, contract, channel_id, participant1, participant2,
capacity (32 bytes big-endian), announcer, fee_base, fee_ppm, reveal_timeout, serial, signature]`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack

from channeld.errors import PeerFault
from channeld.protocol import (
    DEFAULT_REVEAL_TIMEOUT,
    MAX_LOCK_LIFETIME,
    FeePolicy,
    InvalidSignature,
    Signer,
    keccak256,
    recover_address,
)

ANNOUNCEMENT_VERSION = 1
_TAG = b"channeld channel announcement v1"
_U64 = 1 << 64
_U256 = 1 << 256


class BadAnnouncement(PeerFault):
    """A gossiped announcement that is malformed, badly signed, or does not match the chain."""


@dataclass(frozen=True, slots=True)
class OnChainChannel:
    """What the chain says about a channel: its participants (ordered) and the deposits it holds."""

    participant1: bytes
    participant2: bytes
    capacity: int


# channel id -> the chain's view of it, or None if no such open channel exists
ChainLookup = Callable[[bytes], OnChainChannel | None]


@dataclass(frozen=True, slots=True)
class ChannelAnnouncement:
    chain_id: int
    contract: bytes
    channel_id: bytes
    participant1: bytes
    participant2: bytes
    capacity: int
    announcer: bytes
    fee_base: int
    fee_ppm: int
    reveal_timeout: int
    serial: int
    signature: bytes

    def __post_init__(self) -> None:
        problem = _shape_problem(self)
        if problem is not None:
            raise BadAnnouncement(problem)

    @property
    def fees(self) -> FeePolicy:
        return FeePolicy(self.fee_base, self.fee_ppm)

    @property
    def partner(self) -> bytes:
        """The participant the announcer forwards toward through this channel."""
        return self.participant2 if self.announcer == self.participant1 else self.participant1


def _shape_problem(a: ChannelAnnouncement) -> str | None:
    sizes = ((a.contract, 20), (a.channel_id, 32), (a.participant1, 20), (a.participant2, 20),
             (a.announcer, 20), (a.signature, 65))
    if any(type(value) is not bytes or len(value) != size for value, size in sizes):
        return "an address is 20 bytes, a channel id 32, a signature 65"
    ints = ((a.chain_id, _U64), (a.capacity, _U256), (a.fee_base, _U64), (a.serial, _U64),
            (a.reveal_timeout, MAX_LOCK_LIFETIME))
    if any(type(value) is not int or not 0 <= value < limit for value, limit in ints):
        return "integer field out of range"
    if type(a.fee_ppm) is not int or not 0 <= a.fee_ppm <= 1_000_000:
        return "fee_ppm must be in [0, 1000000]"
    if a.participant1 >= a.participant2:
        return "participant1 must be lower than participant2"
    if a.announcer not in (a.participant1, a.participant2):
        return "the announcer must be a participant of the channel"
    return None


def announcement_digest(chain_id: int, contract: bytes, channel_id: bytes, participant1: bytes,
                        participant2: bytes, capacity: int, announcer: bytes, fee_base: int, fee_ppm: int,
                        reveal_timeout: int, serial: int) -> bytes:
    return keccak256(
        _TAG + chain_id.to_bytes(32, "big") + contract + channel_id + participant1 + participant2
        + capacity.to_bytes(32, "big") + announcer + fee_base.to_bytes(32, "big")
        + fee_ppm.to_bytes(32, "big") + reveal_timeout.to_bytes(32, "big") + serial.to_bytes(32, "big"))


def sign_announcement(signer: Signer, chain_id: int, contract: bytes, channel_id: bytes, partner: bytes,
                      capacity: int, fees: FeePolicy, serial: int,
                      reveal_timeout: int = DEFAULT_REVEAL_TIMEOUT) -> ChannelAnnouncement:
    """Our announcement of our channel with `partner`."""
    p1, p2 = sorted((signer.address, partner))
    digest = announcement_digest(chain_id, contract, channel_id, p1, p2, capacity, signer.address, fees.base,
                                 fees.ppm, reveal_timeout, serial)
    return ChannelAnnouncement(chain_id, contract, channel_id, p1, p2, capacity, signer.address, fees.base,
                               fees.ppm, reveal_timeout, serial, signer.sign(digest))


def verify_announcement(a: ChannelAnnouncement, chain_id: int, contract: bytes, lookup: ChainLookup) -> None:
    """Raise `BadAnnouncement` unless `a` is for our chain, signed by its announcer, and the chain agrees."""
    if (a.chain_id, a.contract) != (chain_id, contract):
        raise BadAnnouncement(f"announcement for chain {a.chain_id} / contract 0x{a.contract.hex()} "
                              "is not ours")
    digest = announcement_digest(a.chain_id, a.contract, a.channel_id, a.participant1, a.participant2,
                                 a.capacity, a.announcer, a.fee_base, a.fee_ppm, a.reveal_timeout, a.serial)
    try:
        signer = recover_address(digest, a.signature)
    except InvalidSignature as exc:
        raise BadAnnouncement(f"announcement signature: {exc}") from None
    if signer != a.announcer:
        raise BadAnnouncement("announcement is not signed by its announcer")
    onchain = lookup(a.channel_id)
    if onchain is None:
        raise BadAnnouncement(f"channel {a.channel_id.hex()} does not exist on chain")
    if (onchain.participant1, onchain.participant2) != (a.participant1, a.participant2):
        raise BadAnnouncement("announced participants are not the channel's on chain")
    if a.capacity != onchain.capacity:
        raise BadAnnouncement(f"announced capacity {a.capacity} is not the chain's {onchain.capacity}")


def encode_announcement(a: ChannelAnnouncement) -> bytes:
    return msgpack.packb([ANNOUNCEMENT_VERSION, a.chain_id, a.contract, a.channel_id, a.participant1,
                          a.participant2, a.capacity.to_bytes(32, "big"), a.announcer, a.fee_base, a.fee_ppm,
                          a.reveal_timeout, a.serial, a.signature], use_bin_type=True)


def decode_announcement(data: bytes) -> ChannelAnnouncement:
    """Strictly decode a gossiped announcement (a `BadAnnouncement` for anything malformed)."""
    try:
        fields: Any = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, msgpack.ExtraData) as exc:
        raise BadAnnouncement(f"announcement is not one msgpack value: {exc}") from None
    if type(fields) is not list or len(fields) != 13 or fields[0] != ANNOUNCEMENT_VERSION:
        raise BadAnnouncement("an announcement is a 13-element array of version 1")
    if type(fields[0]) is not int or type(fields[6]) is not bytes or len(fields[6]) != 32:
        raise BadAnnouncement("capacity is 32 bytes")
    fields[6] = int.from_bytes(fields[6], "big")
    return ChannelAnnouncement(*fields[1:])
