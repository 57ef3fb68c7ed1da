"""EIP-712 digests (proto/eip712.md) on a packed fast path, and secp256k1 signatures via libsecp256k1.

Digests are built by concatenating the 32-byte words EIP-712 defines and hashing once per struct (plus
the outer hash EIP-712 itself prescribes); no typed-data dictionaries on the hot path. Tests prove the
result equal to eth_account's encoder and to the contract's own digest.

Signatures are 65 bytes `r || s || v`, v in {27, 28}, low-s. A partner's balance proof is checked against
its KNOWN key by plain ECDSA verification of (r, s) (`KnownKey.check_rs`): that is what decides whether
the partner signed it, and it costs less than recovering the key (on the 2-core dev box, best of 5:
digest 2.9 µs, sign 34 µs, verify 35 µs, recover-and-compare 44 µs). Verification ignores `v`, which
the contract's `ecrecover` needs, so a proof is given its recoverable `v` (`KnownKey.chain_signature`,
one recovery) when it leaves for the chain or a watchtower, never on the payment path. Withdraw and
settle signatures, which the contract checks as given, are still recovered and compared (`check`).
"""

from __future__ import annotations

from functools import lru_cache

import sha3
from coincurve import PrivateKey
from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT

from channeld.errors import LocalFault, PeerFault

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = SECP256K1_N // 2
_CTX = GLOBAL_CONTEXT.ctx


def keccak256(data: bytes) -> bytes:
    return sha3.keccak_256(data).digest()


DOMAIN_TYPEHASH = keccak256(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
BALANCE_PROOF_TYPEHASH = keccak256(
    b"BalanceProof(bytes32 channelId,uint256 nonce,uint256 transferredAmount,uint256 lockedAmount,"
    b"bytes32 locksRoot)")
BALANCE_PROOF_UPDATE_TYPEHASH = keccak256(
    b"BalanceProofUpdate(bytes32 channelId,uint256 nonce,uint256 transferredAmount,uint256 lockedAmount,"
    b"bytes32 locksRoot)")
WITHDRAW_TYPEHASH = keccak256(
    b"Withdraw(bytes32 channelId,address participant,uint256 totalWithdraw,uint256 expiry,address receiver)")
COOPERATIVE_SETTLE_TYPEHASH = keccak256(
    b"CooperativeSettle(bytes32 channelId,address participant1,uint256 amount1,address receiver1,"
    b"address participant2,uint256 amount2,address receiver2)")
DOMAIN_NAME = "channeld"
DOMAIN_VERSION = "1"
_PAD12 = bytes(12)


class InvalidSignature(PeerFault):
    """A signature that is malformed, high-s, or not made by the expected key over this digest."""


@lru_cache(maxsize=64)
def domain_separator(chain_id: int, contract: bytes) -> bytes:
    """hashStruct(EIP712Domain) for one chain and contract (cached: a node serves few of them)."""
    return keccak256(
        DOMAIN_TYPEHASH + keccak256(DOMAIN_NAME.encode()) + keccak256(DOMAIN_VERSION.encode())
        + chain_id.to_bytes(32, "big") + _PAD12 + contract)


def balance_proof_digest(chain_id: int, contract: bytes, channel_id: bytes, nonce: int,
                         transferred_amount: int, locked_amount: int, locks_root: bytes) -> bytes:
    struct_hash = keccak256(
        BALANCE_PROOF_TYPEHASH + channel_id + nonce.to_bytes(32, "big")
        + transferred_amount.to_bytes(32, "big") + locked_amount.to_bytes(32, "big") + locks_root)
    return keccak256(b"\x19\x01" + domain_separator(chain_id, contract) + struct_hash)


def balance_proof_update_digest(chain_id: int, contract: bytes, channel_id: bytes, nonce: int,
                                transferred_amount: int, locked_amount: int, locks_root: bytes) -> bytes:
    """The non-closer's authorization for a watchtower to submit the closer's proof with these fields."""
    struct_hash = keccak256(
        BALANCE_PROOF_UPDATE_TYPEHASH + channel_id + nonce.to_bytes(32, "big")
        + transferred_amount.to_bytes(32, "big") + locked_amount.to_bytes(32, "big") + locks_root)
    return keccak256(b"\x19\x01" + domain_separator(chain_id, contract) + struct_hash)


def withdraw_digest(chain_id: int, contract: bytes, channel_id: bytes, participant: bytes,
                    total_withdraw: int, expiry: int, receiver: bytes) -> bytes:
    struct_hash = keccak256(
        WITHDRAW_TYPEHASH + channel_id + _PAD12 + participant + total_withdraw.to_bytes(32, "big")
        + expiry.to_bytes(32, "big") + _PAD12 + receiver)
    return keccak256(b"\x19\x01" + domain_separator(chain_id, contract) + struct_hash)


def cooperative_settle_digest(chain_id: int, contract: bytes, channel_id: bytes,
                              participant1: bytes, amount1: int, receiver1: bytes,
                              participant2: bytes, amount2: int, receiver2: bytes) -> bytes:
    struct_hash = keccak256(
        COOPERATIVE_SETTLE_TYPEHASH + channel_id
        + _PAD12 + participant1 + amount1.to_bytes(32, "big") + _PAD12 + receiver1
        + _PAD12 + participant2 + amount2.to_bytes(32, "big") + _PAD12 + receiver2)
    return keccak256(b"\x19\x01" + domain_separator(chain_id, contract) + struct_hash)


def address_of_public_key(uncompressed: bytes) -> bytes:
    """The Ethereum address: last 20 bytes of keccak256 of the 64-byte public key (no 0x04 prefix)."""
    return keccak256(uncompressed[-64:])[12:]


class Signer:
    """Our own key: signs 32-byte digests."""

    __slots__ = ("_key", "address", "public_key")

    def __init__(self, secret: bytes) -> None:
        valid = type(secret) is bytes and len(secret) == 32
        if not valid or not 0 < int.from_bytes(secret, "big") < SECP256K1_N:
            raise LocalFault("a private key is 32 bytes, a number in [1, n-1]")
        self._key = PrivateKey(secret)
        self.public_key = self._key.public_key.format(compressed=False)
        self.address = address_of_public_key(self.public_key)

    def sign(self, digest: bytes) -> bytes:
        # libsecp256k1 always produces low-s; its recovery id is 0/1 for every realistic r
        rsv = self._key.sign_recoverable(digest, hasher=None)
        return rsv[:64] + bytes((rsv[64] + 27,))

    def __repr__(self) -> str:
        return f"Signer(address=0x{self.address.hex()})"


class KnownKey:
    """A partner's public key, parsed once, to check its signatures quickly."""

    __slots__ = ("_parsed", "address", "public_key")

    def __init__(self, public_key: bytes) -> None:
        parsed = ffi.new("secp256k1_pubkey *")
        if not lib.secp256k1_ec_pubkey_parse(_CTX, parsed, public_key, len(public_key)):
            raise LocalFault("not a valid secp256k1 public key")
        self._parsed = parsed
        self.public_key = _serialize_uncompressed(parsed)
        self.address = address_of_public_key(self.public_key)

    def check(self, digest: bytes, signature: bytes) -> None:
        """Raise `InvalidSignature` unless this key made `signature` over `digest`, v included."""
        recovered = recover_raw(digest, signature)
        if lib.secp256k1_ec_pubkey_cmp(_CTX, recovered, self._parsed) != 0:
            raise InvalidSignature("signature is not by the partner's key")

    def check_rs(self, digest: bytes, signature: bytes) -> None:
        """Raise `InvalidSignature` unless (r, s) is this key's signature over `digest` (low-s).

        `v` must be 27 or 28 but is not checked against the key: before such a signature is used on
        chain it goes through `chain_signature`, which gives it the `v` that recovers to this key.
        """
        _check_shape(signature)
        if len(digest) != 32:
            raise LocalFault("a digest is 32 bytes")
        sig = ffi.new("secp256k1_ecdsa_signature *")
        lib.secp256k1_ecdsa_signature_parse_compact(_CTX, sig, signature[:64])
        if not lib.secp256k1_ecdsa_verify(_CTX, sig, digest, self._parsed):
            raise InvalidSignature("signature is not by the partner's key")

    def chain_signature(self, digest: bytes, signature: bytes) -> bytes:
        """`signature` with the `v` under which `ecrecover(digest, ...)` yields this key (the contract's
        check); raises `InvalidSignature` if neither `v` does, i.e. (r, s) is not this key's."""
        for v in (signature[64], 55 - signature[64]):  # as given first, then the other of 27 / 28
            candidate = signature[:64] + bytes((v,))
            try:
                self.check(digest, candidate)
            except InvalidSignature:
                continue
            return candidate
        raise InvalidSignature("no v recovers this signature to the partner's key")


def _check_shape(signature: bytes) -> None:
    if type(signature) is not bytes or len(signature) != 65:
        raise InvalidSignature("a signature is 65 bytes r || s || v")
    if signature[64] not in (27, 28):
        raise InvalidSignature(f"v must be 27 or 28, got {signature[64]}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    if not 0 < r < SECP256K1_N or not 0 < s <= _HALF_N:
        raise InvalidSignature("r must be in [1, n-1] and s in [1, n/2] (low-s)")


def recover_raw(digest: bytes, signature: bytes) -> ffi.CData:
    """The public key (libsecp256k1 struct) that made `signature` over `digest`."""
    _check_shape(signature)
    if len(digest) != 32:
        raise LocalFault("a digest is 32 bytes")
    sig = ffi.new("secp256k1_ecdsa_recoverable_signature *")
    if not lib.secp256k1_ecdsa_recoverable_signature_parse_compact(_CTX, sig, signature[:64],
                                                                  signature[64] - 27):
        raise InvalidSignature("signature does not parse")
    pubkey = ffi.new("secp256k1_pubkey *")
    if not lib.secp256k1_ecdsa_recover(_CTX, pubkey, sig, digest):
        raise InvalidSignature("no public key recovers from this signature")
    return pubkey


def recover_address(digest: bytes, signature: bytes) -> bytes:
    """The address that made `signature` over `digest` (what the contract's ecrecover returns)."""
    return address_of_public_key(_serialize_uncompressed(recover_raw(digest, signature)))


def _serialize_uncompressed(pubkey: ffi.CData) -> bytes:
    out = ffi.new("unsigned char[65]")
    size = ffi.new("size_t *", 65)
    lib.secp256k1_ec_pubkey_serialize(_CTX, out, size, pubkey, lib.SECP256K1_EC_UNCOMPRESSED)
    return bytes(ffi.buffer(out, 65))
