"""Payment requests: what a recipient signs and hands to a payer, as one compact string with a checksum.

A request names the chain and contract, the recipient's node id, the amount, a sha256 payment hash whose
preimage only the recipient knows, an expiry (unix seconds) and a description, and carries the
recipient's signature over all of it. Encoded: `chpr1` + lowercase base32 (no padding) of
msgpack([body, signature]) followed by the first 4 bytes of its sha256, so a mistyped or truncated
string is refused before anything else is read. The payer gets the preimage back when it pays: that is
its receipt.

Body versions: 1 is `[1, chain id, contract, node id, amount, hash, expiry, description]`, the asset
being the chain's native coin; 2 appends the ERC-20 `token` the amount is in (a payer paying from
another asset needs it to find a conversion). A request in the native coin is still encoded as version
1, so payers that read only version 1 keep paying it.
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass

import coincurve
import msgpack
from eth_utils import to_checksum_address

from channeld.errors import PeerFault

PREFIX = "chpr1"
VERSION = 1
TOKEN_VERSION = 2
NATIVE = bytes(20)
MAX_DESCRIPTION = 256
MAX_ENCODED = 1024
_DOMAIN = b"channeld payment request v1"
_CHECKSUM = 4
# A direct payment that pays a request carries this tag and the payment hash as its metadata.
METADATA_TAG = b"\x01"


class BadPaymentRequest(PeerFault):
    """A payment request string that is malformed, mistyped, wrongly signed or otherwise unusable."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"bad payment request: {reason}")


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    chain_id: int
    contract: bytes
    node_id: bytes
    amount: int
    payment_hash: bytes
    expiry: int
    description: str
    signature: bytes = b""
    token: bytes = NATIVE

    def __post_init__(self) -> None:
        _check(0 < self.chain_id < 2**64, "chain id out of range")
        _check(len(self.contract) == 20, "contract must be 20 bytes")
        _check(len(self.node_id) == 33 and self.node_id[0] in (2, 3), "node id must be a compressed key")
        _check(0 < self.amount < 2**256, "amount must be positive and below 2**256")
        _check(len(self.payment_hash) == 32, "payment hash must be 32 bytes")
        _check(0 < self.expiry < 2**63, "expiry out of range")
        _check(len(self.description.encode()) <= MAX_DESCRIPTION,
               f"description longer than {MAX_DESCRIPTION} bytes")
        _check(self.signature == b"" or len(self.signature) == 65, "signature must be 65 bytes")
        _check(type(self.token) is bytes and len(self.token) == 20, "token must be 20 bytes")

    @property
    def version(self) -> int:
        return VERSION if self.token == NATIVE else TOKEN_VERSION

    def body(self) -> bytes:
        fields = [self.version, self.chain_id, self.contract, self.node_id, self.amount.to_bytes(32, "big"),
                  self.payment_hash, self.expiry, self.description]
        return msgpack.packb(fields if self.token == NATIVE else [*fields, self.token])

    def digest(self) -> bytes:
        return hashlib.sha256(_DOMAIN + self.body()).digest()

    def signed(self, private_key: coincurve.PrivateKey) -> PaymentRequest:
        if private_key.public_key.format() != self.node_id:
            raise BadPaymentRequest("the signing key is not the request's node id")
        raw = private_key.sign_recoverable(self.digest(), hasher=None)
        return PaymentRequest(self.chain_id, self.contract, self.node_id, self.amount, self.payment_hash,
                              self.expiry, self.description, raw[:64] + bytes([raw[64] + 27]), self.token)

    def verify(self) -> None:
        """Raise unless the signature is the request node's, over exactly these fields."""
        _check(len(self.signature) == 65 and self.signature[64] in (27, 28), "the request is not signed")
        recoverable = self.signature[:64] + bytes([self.signature[64] - 27])
        try:
            key = coincurve.PublicKey.from_signature_and_message(recoverable, self.digest(), hasher=None)
        except ValueError:
            raise BadPaymentRequest("the request's signature does not recover a key") from None
        _check(key.format() == self.node_id, "the request is not signed by its node")

    def is_expired(self, now: float) -> bool:
        return now >= self.expiry

    def encode(self) -> str:
        _check(len(self.signature) == 65, "only a signed request can be encoded")
        raw = msgpack.packb([self.body(), self.signature])
        raw += hashlib.sha256(raw).digest()[:_CHECKSUM]
        return PREFIX + base64.b32encode(raw).decode().rstrip("=").lower()

    @classmethod
    def decode(cls, text: str) -> PaymentRequest:
        """Parse and verify a request string (checksum, fields, signature); raise `BadPaymentRequest`."""
        raw = _unwrap(text)
        try:
            body, signature = msgpack.unpackb(raw, raw=False, strict_map_key=True)
            fields = msgpack.unpackb(body, raw=False)
            _check(type(fields) is list and bool(fields) and type(fields[0]) is int
                   and fields[0] in (VERSION, TOKEN_VERSION),
                   f"request version is not {VERSION} or {TOKEN_VERSION}")
            _check(len(fields) == 8 + (fields[0] == TOKEN_VERSION), "wrong number of fields for the version")
            version, chain_id, contract, node_id, amount, payment_hash, expiry, description = fields[:8]
        except (ValueError, TypeError, msgpack.UnpackException):
            raise BadPaymentRequest("the request's fields do not decode") from None
        token = fields[8] if version == TOKEN_VERSION else NATIVE
        _check(all(isinstance(v, bytes) for v in (contract, node_id, amount, payment_hash, signature, token)),
               "a byte field has the wrong type")
        # one asset, one encoding: a version 2 request naming the native coin would sign another body
        _check(version == VERSION or token != NATIVE, "a version 2 request names an ERC-20 token")
        _check(all(type(v) is int for v in (chain_id, expiry)) and isinstance(description, str),
               "a number or text field has the wrong type")
        _check(len(amount) == 32, "amount must be 32 bytes")
        request = cls(chain_id, contract, node_id, int.from_bytes(amount, "big"), payment_hash, expiry,
                      description, signature, token)
        request.verify()
        return request

    def qr(self, kind: str = "svg", scale: int = 4) -> bytes:
        """The encoded request as a QR code image (`svg` or `png`)."""
        import segno  # only the API's image endpoint needs it

        out = io.BytesIO()
        segno.make(self.encode().upper(), error="m").save(out, kind=kind, scale=scale)
        return out.getvalue()

    def as_json(self) -> dict[str, object]:
        return {"request": self.encode(), "chain_id": self.chain_id,
                "contract": to_checksum_address(self.contract),
                "node_id": self.node_id.hex(), "amount": str(self.amount),
                "payment_hash": "0x" + self.payment_hash.hex(), "expiry": self.expiry,
                "description": self.description, "token": to_checksum_address(self.token)}


def _unwrap(text: str) -> bytes:
    _check(isinstance(text, str) and len(text) <= MAX_ENCODED, "the request string is too long")
    lowered = text.strip().lower()
    _check(lowered.startswith(PREFIX), f"a payment request starts with {PREFIX!r}")
    digits = lowered[len(PREFIX):].upper()
    try:
        raw = base64.b32decode(digits + "=" * (-len(digits) % 8))
    except ValueError:
        raise BadPaymentRequest("the request string is not base32") from None
    _check(len(raw) > _CHECKSUM, "the request string is too short")
    payload, checksum = raw[:-_CHECKSUM], raw[-_CHECKSUM:]
    _check(hashlib.sha256(payload).digest()[:_CHECKSUM] == checksum,
           "the request's checksum does not match (mistyped or truncated?)")
    return payload


def _check(condition: bool, reason: str) -> None:
    if not condition:
        raise BadPaymentRequest(reason)


def payment_metadata(payment_hash: bytes) -> bytes:
    return METADATA_TAG + payment_hash


def hash_from_metadata(metadata: bytes) -> bytes | None:
    if len(metadata) == 33 and metadata[:1] == METADATA_TAG:
        return metadata[1:]
    return None
