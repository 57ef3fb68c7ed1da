"""Signed conversion announcements: a node offers to turn asset X on one chain into asset Y on another.

The converter says: a lock of `x` in `source` that reaches me, I forward as a lock of
`terms.amount_out(x)` in `target` (rate `rate_numerator / rate_denominator` Y per X rounded down, minus
`fee_base + ceil(y * fee_ppm / 10^6)` on the `y` forwarded; `channeld.protocol._crosschain`), keeping at
least `margin` seconds between the expiries of the two locks. `serial` orders one converter's
announcements of one direction (source, target): a higher one replaces a lower one; `expires_at` (unix
seconds) bounds how long a rate may be used, so a rate nobody refreshes dies by itself.

Signed digest: keccak256 of a fixed tag and the packed fields (integers 32 bytes, addresses 20), so the
signature cannot pass for a channel announcement's or a balance proof's. Wire form: msgpack array
`[1, converter, source chain id, contract, token, target chain id, contract, token, rate numerator
(32 bytes), rate denominator (32 bytes), fee_base, fee_ppm, margin, serial, expires_at, signature]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

from channeld.protocol import (
    MAX_LOCK_LIFETIME,
    FeePolicy,
    InvalidSignature,
    Signer,
    keccak256,
    recover_address,
)
from channeld.protocol._crosschain import RATE_LIMIT, Asset, ConversionTerms
from channeld.routing._announce import BadAnnouncement
from channeld.wire import AssetId, ConversionGossip

CONVERSION_VERSION = 1
# a rate is announced for at most a day: a converter refreshes it (higher serial) as the market moves
MAX_CONVERSION_LIFETIME = 24 * 3600
_TAG = b"channeld conversion announcement v1"
_U64 = 1 << 64
_FIELDS = 16


@dataclass(frozen=True, slots=True)
class ConversionAnnouncement:
    converter: bytes
    source_chain_id: int
    source_contract: bytes
    source_token: bytes
    target_chain_id: int
    target_contract: bytes
    target_token: bytes
    rate_numerator: int
    rate_denominator: int
    fee_base: int
    fee_ppm: int
    margin: int
    serial: int
    expires_at: int
    signature: bytes

    def __post_init__(self) -> None:
        problem = _shape_problem(self)
        if problem is not None:
            raise BadAnnouncement(f"conversion announcement: {problem}")

    @property
    def source(self) -> Asset:
        return Asset(self.source_chain_id, self.source_contract, self.source_token)

    @property
    def target(self) -> Asset:
        return Asset(self.target_chain_id, self.target_contract, self.target_token)

    @property
    def terms(self) -> ConversionTerms:
        fees = FeePolicy(self.fee_base, self.fee_ppm)
        return ConversionTerms(self.rate_numerator, self.rate_denominator, fees)

    @property
    def direction(self) -> tuple[bytes, Asset, Asset]:
        """What a newer announcement replaces: the same converter, source and target."""
        return self.converter, self.source, self.target

    def digest(self) -> bytes:
        return conversion_digest(self.converter, self.source, self.target, self.rate_numerator,
                                 self.rate_denominator, self.fee_base, self.fee_ppm, self.margin, self.serial,
                                 self.expires_at)


def _shape_problem(a: ConversionAnnouncement) -> str | None:
    sizes = ((a.converter, 20), (a.source_contract, 20), (a.source_token, 20), (a.target_contract, 20),
             (a.target_token, 20), (a.signature, 65))
    if any(type(value) is not bytes or len(value) != size for value, size in sizes):
        return "an address is 20 bytes, a signature 65"
    ints = ((a.source_chain_id, 1, _U64), (a.target_chain_id, 1, _U64), (a.rate_numerator, 1, RATE_LIMIT),
            (a.rate_denominator, 1, RATE_LIMIT), (a.fee_base, 0, _U64), (a.fee_ppm, 0, 1_000_001),
            (a.margin, 0, MAX_LOCK_LIFETIME), (a.serial, 0, _U64), (a.expires_at, 0, _U64))
    for value, low, high in ints:
        if type(value) is not int or not low <= value < high:
            return f"integer field {value!r} out of range [{low}, {high})"
    if (a.source_chain_id, a.source_contract, a.source_token) == (a.target_chain_id, a.target_contract,
                                                                  a.target_token):
        return "source and target are the same asset"
    return None


def conversion_digest(converter: bytes, source: Asset, target: Asset, rate_numerator: int,
                      rate_denominator: int, fee_base: int, fee_ppm: int, margin: int, serial: int,
                      expires_at: int) -> bytes:
    ints = (rate_numerator, rate_denominator, fee_base, fee_ppm, margin, serial, expires_at)
    return keccak256(_TAG + converter + _packed(source) + _packed(target)
                     + b"".join(i.to_bytes(32, "big") for i in ints))


def _packed(asset: Asset) -> bytes:
    return asset.chain_id.to_bytes(32, "big") + asset.contract + asset.token


def sign_conversion(signer: Signer, source: Asset, target: Asset, terms: ConversionTerms, margin: int,
                    serial: int, expires_at: int) -> ConversionAnnouncement:
    """Our offer to convert `source` into `target` at `terms` until `expires_at`."""
    digest = conversion_digest(signer.address, source, target, terms.numerator, terms.denominator,
                               terms.fees.base, terms.fees.ppm, margin, serial, expires_at)
    return ConversionAnnouncement(signer.address, source.chain_id, source.contract, source.token,
                                  target.chain_id, target.contract, target.token, terms.numerator,
                                  terms.denominator, terms.fees.base, terms.fees.ppm, margin, serial,
                                  expires_at, signer.sign(digest))


def verify_conversion(a: ConversionAnnouncement, now: int) -> None:
    """Raise `BadAnnouncement` unless `a` is signed by its converter and its rate is live at `now`."""
    try:
        signer = recover_address(a.digest(), a.signature)
    except InvalidSignature as exc:
        raise BadAnnouncement(f"conversion announcement signature: {exc}") from None
    if signer != a.converter:
        raise BadAnnouncement("conversion announcement is not signed by its converter")
    if a.expires_at <= now:
        raise BadAnnouncement(f"conversion rate expired at {a.expires_at} (now {now})")
    if a.expires_at > now + MAX_CONVERSION_LIFETIME:
        raise BadAnnouncement(f"conversion rate valid until {a.expires_at}: more than "
                              f"{MAX_CONVERSION_LIFETIME} s ahead of now ({now})")


def encode_conversion(a: ConversionAnnouncement) -> bytes:
    return msgpack.packb([CONVERSION_VERSION, a.converter, a.source_chain_id, a.source_contract,
                          a.source_token, a.target_chain_id, a.target_contract, a.target_token,
                          a.rate_numerator.to_bytes(32, "big"), a.rate_denominator.to_bytes(32, "big"),
                          a.fee_base, a.fee_ppm, a.margin, a.serial, a.expires_at, a.signature],
                         use_bin_type=True)


def decode_conversion(data: bytes) -> ConversionAnnouncement:
    """Strictly decode a gossiped conversion announcement (a `BadAnnouncement` for anything malformed)."""
    try:
        fields: Any = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, msgpack.ExtraData) as exc:
        raise BadAnnouncement(f"conversion announcement is not one msgpack value: {exc}") from None
    if type(fields) is not list or len(fields) != _FIELDS or type(fields[0]) is not int \
            or fields[0] != CONVERSION_VERSION:
        raise BadAnnouncement(f"a conversion announcement is a {_FIELDS}-element array of version 1")
    for i in (8, 9):
        if type(fields[i]) is not bytes or len(fields[i]) != 32:
            raise BadAnnouncement("the rate's numerator and denominator are 32 bytes each")
        fields[i] = int.from_bytes(fields[i], "big")
    return ConversionAnnouncement(*fields[1:])


def conversion_to_wire(a: ConversionAnnouncement) -> ConversionGossip:
    return ConversionGossip(a.converter, AssetId(a.source_chain_id, a.source_contract, a.source_token),
                            AssetId(a.target_chain_id, a.target_contract, a.target_token), a.rate_numerator,
                            a.rate_denominator, a.fee_base, a.fee_ppm, a.margin, a.serial, a.expires_at,
                            a.signature)


def conversion_from_wire(m: ConversionGossip) -> ConversionAnnouncement:
    """The announcement a gossip message carries (its signature still to be verified)."""
    return ConversionAnnouncement(m.converter, m.source.chain_id, m.source.contract, m.source.token,
                                  m.target.chain_id, m.target.contract, m.target.token, m.rate_numerator,
                                  m.rate_denominator, m.fee_base, m.fee_ppm, m.margin, m.serial, m.expires_at,
                                  m.signature)
