"""BLS12-381 for batch consent, on py-ecc's G2ProofOfPossession ciphersuite (G1 keys, G2 signatures,
RFC 9380 hash-to-curve), plus the EIP-2537 point encoding the contract's precompiles take.

py-ecc is pure Python: a signature takes about 0.2 s and a verification 0.6 s, so none of this may run on
the payment path; `channeld.batch.BlsWorker` runs it in worker processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_typing import BLSPubkey, BLSSignature
from py_ecc.bls import G2ProofOfPossession as Scheme
from py_ecc.bls.g2_primitives import pubkey_to_G1, signature_to_G2
from py_ecc.bls.hash_to_curve import hash_to_G2
from py_ecc.optimized_bls12_381 import normalize

from channeld.batch._errors import BatchRefused, InvalidBlsData
from channeld.batch._tree import MerklePath, verify_path

SIGNATURE_DST = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"


@dataclass(frozen=True, slots=True, repr=False)
class BlsSecretKey:
    """A BLS secret key (a scalar); never printed."""

    scalar: int

    @classmethod
    def from_seed(cls, seed: bytes) -> BlsSecretKey:
        """KeyGen of draft-irtf-cfrg-bls-signature from at least 32 bytes of key material."""
        if not isinstance(seed, bytes) or len(seed) < 32:
            raise InvalidBlsData("a BLS key needs at least 32 bytes of seed")
        return cls(Scheme.KeyGen(seed))

    def public_key(self) -> bytes:
        """The 48-byte compressed G1 public key."""
        return bytes(Scheme.SkToPk(self.scalar))

    def sign(self, message: bytes) -> bytes:
        """The 96-byte compressed G2 signature of `message`."""
        return bytes(Scheme.Sign(self.scalar, message))

    def prove_possession(self) -> bytes:
        """The proof of possession registerBlsKey checks: a PoP-ciphersuite signature of the public key."""
        return bytes(Scheme.PopProve(self.scalar))


def _fp(value: int) -> bytes:
    return value.to_bytes(64, "big")


def g1_to_eip2537(public_key: bytes) -> bytes:
    """A compressed G1 public key (48 bytes) as the precompiles take it: x || y, 64 bytes each."""
    if not Scheme.KeyValidate(BLSPubkey(public_key)):
        raise InvalidBlsData("not a valid BLS public key")
    x, y = normalize(pubkey_to_G1(BLSPubkey(public_key)))
    return _fp(int(x)) + _fp(int(y))


def g2_to_eip2537(signature: bytes) -> bytes:
    """A compressed G2 signature (96 bytes) as the precompiles take it: x.c0 || x.c1 || y.c0 || y.c1."""
    try:
        point = signature_to_G2(BLSSignature(signature))
    except (ValueError, TypeError) as error:
        raise InvalidBlsData(f"not a G2 point: {error}") from error
    x, y = normalize(point)
    return b"".join(_fp(int(c)) for c in (*x.coeffs, *y.coeffs))


def hash_to_g2_eip2537(message: bytes, dst: bytes = SIGNATURE_DST) -> bytes:
    """RFC 9380 hash_to_curve as py-ecc does it, EIP-2537 encoded (compared with the contract's)."""
    # py-ecc annotates this parameter as a hash object though it calls it: its own ciphersuite passes this.
    x, y = normalize(hash_to_G2(message, dst, Scheme.xmd_hash_function))  # type: ignore[arg-type]
    return b"".join(_fp(int(c)) for c in (*x.coeffs, *y.coeffs))


def aggregate_signatures(signatures: Sequence[bytes]) -> bytes:
    if not signatures:
        raise InvalidBlsData("nothing to aggregate")
    try:
        return bytes(Scheme.Aggregate([BLSSignature(s) for s in signatures]))
    except (ValueError, TypeError) as error:
        raise InvalidBlsData(f"a signature does not decode: {error}") from error


def aggregate_public_keys(public_keys: Sequence[bytes]) -> bytes:
    """The sum of compressed public keys, compressed (what registerBlsSigners stores the hash of)."""
    keys = [BLSPubkey(key) for key in public_keys]
    if not keys or not all(Scheme.KeyValidate(key) for key in keys):
        raise InvalidBlsData("aggregate needs at least one valid public key")
    return bytes(Scheme._AggregatePKs(keys))


def verify_aggregate(public_keys: Sequence[bytes], message: bytes, signature: bytes) -> bool:
    """Whether `signature` is every key's signature of `message`, aggregated (keys must have PoPs)."""
    keys = [BLSPubkey(key) for key in public_keys]
    return bool(Scheme.FastAggregateVerify(keys, message, BLSSignature(signature)))


def verify_possession(public_key: bytes, proof: bytes) -> bool:
    return bool(Scheme.PopVerify(BLSPubkey(public_key), BLSSignature(proof)))


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    return bool(Scheme.Verify(BLSPubkey(public_key), message, BLSSignature(signature)))


def partner_sign(
    key: BlsSecretKey, expected_leaf: bytes, path: MerklePath, root: bytes, message: bytes
) -> bytes:
    """A partner's consent: sign `message` only if the leaf it expects (built from its own view of its
    channel and the amounts it agreed to) is in the tree at `root`. BatchRefused otherwise, signing nothing.
    `message` must be BatchTerms.message(path.count, root) for the terms the partner agreed to; the caller
    builds it from its own terms, never the hub's bytes."""
    if not verify_path(expected_leaf, path, root):
        raise BatchRefused("the entry or its Merkle path does not lead to the root: not signing")
    return key.sign(message)
