"""BOLT 8 (Noise_XK_secp256k1_ChaChaPoly_SHA256) handshake, sans-io.

The names follow the Noise specification (`mix_key`, `mix_hash`, `encrypt_and_hash`, `split`) so each line
can be checked against BOLT 8's "Handshake Exchange". Nothing here touches a socket or a clock: the caller
reads exactly `ACT_ONE_SIZE`/`ACT_TWO_SIZE`/`ACT_THREE_SIZE` bytes and hands them in.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import struct
from dataclasses import dataclass

import coincurve
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from channeld.transport._errors import HandshakeError, TransportMisuse

PROTOCOL_NAME = b"Noise_XK_secp256k1_ChaChaPoly_SHA256"
PROLOGUE = b"lightning"
HANDSHAKE_VERSION = 0
ACT_ONE_SIZE = 50
ACT_TWO_SIZE = 50
ACT_THREE_SIZE = 66
PUBKEY_SIZE = 33
TAG_SIZE = 16
# Noise reserves 2^64-1; a cipher that reaches it must never encrypt again.
MAX_NONCE = 2**64 - 1

_NONCE = struct.Struct("<4xQ")


def nonce_bytes(n: int) -> bytes:
    """BOLT 8 nonce: 32 zero bits then `n` as a little-endian 64-bit value."""
    return _NONCE.pack(n)


def hkdf(salt: bytes, ikm: bytes) -> tuple[bytes, bytes]:
    """RFC 5869 extract-and-expand with empty info, 64 bytes split into two 32-byte keys."""
    prk = hmac.digest(salt, ikm, "sha256")
    first = hmac.digest(prk, b"\x01", "sha256")
    second = hmac.digest(prk, first + b"\x02", "sha256")
    return first, second


def ecdh(private_key: coincurve.PrivateKey, public_key: bytes) -> bytes:
    """sha256 of the compressed shared point; coincurve's default hash does exactly that."""
    return bytes(private_key.ecdh(public_key))


def parse_public_key(data: bytes) -> bytes | None:
    """The 33-byte compressed key if `data` is a valid curve point in that form, else None."""
    if len(data) != PUBKEY_SIZE or data[0] not in (2, 3):
        return None
    try:
        coincurve.PublicKey(data)
    except ValueError:
        return None
    return data


class CipherState:
    """A ChaCha20-Poly1305 key with its nonce; the nonce ceiling is checked before any crypto runs."""

    __slots__ = ("_aead", "key", "nonce")

    def __init__(self, key: bytes, nonce: int = 0) -> None:
        if len(key) != 32:
            raise TransportMisuse(f"cipher key must be 32 bytes, got {len(key)}")
        self.key = key
        self.nonce = nonce
        self._aead = ChaCha20Poly1305(key)

    def _next_nonce(self) -> bytes:
        if self.nonce >= MAX_NONCE:
            raise TransportMisuse("nonce space exhausted; the key must not be used again")
        n = self.nonce
        self.nonce = n + 1
        return _NONCE.pack(n)

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        return self._aead.encrypt(self._next_nonce(), plaintext, ad)

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        """Raises `InvalidTag` on a bad tag, always; the nonce is consumed either way."""
        return self._aead.decrypt(self._next_nonce(), ciphertext, ad)


class SymmetricState:
    """The handshake's `ck`, `h` and current temporary key."""

    __slots__ = ("chaining_key", "cipher", "handshake_hash")

    def __init__(self) -> None:
        h = hashlib.sha256(PROTOCOL_NAME).digest()
        self.chaining_key = h
        self.handshake_hash = h
        self.cipher: CipherState | None = None
        self.mix_hash(PROLOGUE)

    @property
    def temp_key(self) -> bytes | None:
        return None if self.cipher is None else self.cipher.key

    def mix_hash(self, data: bytes) -> None:
        self.handshake_hash = hashlib.sha256(self.handshake_hash + data).digest()

    def mix_key(self, input_key_material: bytes) -> None:
        self.chaining_key, temp_key = hkdf(self.chaining_key, input_key_material)
        self.cipher = CipherState(temp_key)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self._require_cipher().encrypt_with_ad(self.handshake_hash, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        """Raises `InvalidTag` on a bad tag; `h` is only updated after the tag checks out."""
        plaintext = self._require_cipher().decrypt_with_ad(self.handshake_hash, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def encrypt_with_ad(self, plaintext: bytes) -> bytes:
        return self._require_cipher().encrypt_with_ad(self.handshake_hash, plaintext)

    def decrypt_with_ad(self, ciphertext: bytes) -> bytes:
        return self._require_cipher().decrypt_with_ad(self.handshake_hash, ciphertext)

    def split(self) -> tuple[bytes, bytes]:
        return hkdf(self.chaining_key, b"")

    def _require_cipher(self) -> CipherState:
        if self.cipher is None:
            raise TransportMisuse("encrypt/decrypt before mix_key")
        return self.cipher


class Role(enum.Enum):
    INITIATOR = "initiator"
    RESPONDER = "responder"


class Step(enum.Enum):
    WRITE_ACT_ONE = "write_act_one"
    READ_ACT_ONE = "read_act_one"
    WRITE_ACT_TWO = "write_act_two"
    READ_ACT_TWO = "read_act_two"
    WRITE_ACT_THREE = "write_act_three"
    READ_ACT_THREE = "read_act_three"
    DONE = "done"
    FAILED = "failed"


# The only legal order per role: each step is followed by exactly one next step.
_NEXT_STEP: dict[tuple[Role, Step], Step] = {
    (Role.INITIATOR, Step.WRITE_ACT_ONE): Step.READ_ACT_TWO,
    (Role.INITIATOR, Step.READ_ACT_TWO): Step.WRITE_ACT_THREE,
    (Role.INITIATOR, Step.WRITE_ACT_THREE): Step.DONE,
    (Role.RESPONDER, Step.READ_ACT_ONE): Step.WRITE_ACT_TWO,
    (Role.RESPONDER, Step.WRITE_ACT_TWO): Step.READ_ACT_THREE,
    (Role.RESPONDER, Step.READ_ACT_THREE): Step.DONE,
}


@dataclass(frozen=True, slots=True)
class TransportKeys:
    """What a finished handshake hands to the framing layer."""

    send_key: bytes
    receive_key: bytes
    chaining_key: bytes
    remote_static: bytes
    handshake_hash: bytes


class HandshakeState:
    """One side of a BOLT 8 handshake. Any failure leaves it FAILED; it can never be resumed."""

    def __init__(
        self,
        role: Role,
        local_static: coincurve.PrivateKey,
        remote_static: bytes | None = None,
        ephemeral: coincurve.PrivateKey | None = None,
    ) -> None:
        if role is Role.INITIATOR and (remote_static is None or parse_public_key(remote_static) is None):
            raise TransportMisuse("the initiator needs the responder's 33-byte compressed public key")
        self.role = role
        self.step = Step.WRITE_ACT_ONE if role is Role.INITIATOR else Step.READ_ACT_ONE
        self._s = local_static
        self._e = ephemeral if ephemeral is not None else coincurve.PrivateKey()
        self._re: bytes | None = None
        self.remote_static = remote_static
        self.symmetric = SymmetricState()
        responder_static = remote_static if role is Role.INITIATOR else self.local_public
        assert responder_static is not None
        self.symmetric.mix_hash(responder_static)

    @property
    def local_public(self) -> bytes:
        return self._s.public_key.format(compressed=True)

    @property
    def ephemeral_public(self) -> bytes:
        return self._e.public_key.format(compressed=True)

    def _advance(self, step: Step) -> None:
        if self.step is not step:
            raise TransportMisuse(f"{self.role.value} cannot {step.value} while at {self.step.value}")
        self.step = _NEXT_STEP[(self.role, step)]

    def _fail(self, act: int, reason: str, detail: str = "") -> HandshakeError:
        self.step = Step.FAILED
        return HandshakeError(act, reason, detail)

    # -- acts one and two share a shape: version || ephemeral key || tag over an empty payload
    def _write_ephemeral_act(self, remote_key: bytes) -> bytes:
        e_pub = self.ephemeral_public
        self.symmetric.mix_hash(e_pub)
        self.symmetric.mix_key(ecdh(self._e, remote_key))
        return bytes((HANDSHAKE_VERSION,)) + e_pub + self.symmetric.encrypt_and_hash(b"")

    def _read_ephemeral_act(self, act: int, message: bytes, local_key: coincurve.PrivateKey) -> None:
        if len(message) != ACT_ONE_SIZE:
            raise self._fail(act, "read_failed", f"{len(message)} bytes, expected {ACT_ONE_SIZE}")
        if message[0] != HANDSHAKE_VERSION:
            raise self._fail(act, "bad_version", f"version {message[0]}")
        re = parse_public_key(message[1:34])
        if re is None:
            raise self._fail(act, "bad_pubkey", "ephemeral key is not a compressed curve point")
        self.symmetric.mix_hash(re)
        self.symmetric.mix_key(ecdh(local_key, re))
        try:
            self.symmetric.decrypt_and_hash(message[34:])
        except InvalidTag:
            raise self._fail(act, "bad_tag") from None
        self._re = re

    def write_act_one(self) -> bytes:
        """Initiator: `-> e, es`."""
        self._advance(Step.WRITE_ACT_ONE)
        assert self.remote_static is not None
        return self._write_ephemeral_act(self.remote_static)

    def read_act_one(self, message: bytes) -> None:
        """Responder: check the initiator knows our static key."""
        self._advance(Step.READ_ACT_ONE)
        self._read_ephemeral_act(1, message, self._s)

    def write_act_two(self) -> bytes:
        """Responder: `<- e, ee`."""
        self._advance(Step.WRITE_ACT_TWO)
        assert self._re is not None
        return self._write_ephemeral_act(self._re)

    def read_act_two(self, message: bytes) -> None:
        self._advance(Step.READ_ACT_TWO)
        self._read_ephemeral_act(2, message, self._e)

    def write_act_three(self) -> bytes:
        """Initiator: `-> s, se`."""
        self._advance(Step.WRITE_ACT_THREE)
        assert self._re is not None
        c = self.symmetric.encrypt_and_hash(self.local_public)
        self.symmetric.mix_key(ecdh(self._s, self._re))
        # BOLT 8 does not mix the final tag into h (unlike Noise's EncryptAndHash); h is then unused.
        t = self.symmetric.encrypt_with_ad(b"")
        return bytes((HANDSHAKE_VERSION,)) + c + t

    def read_act_three(self, message: bytes) -> None:
        """Responder: learn and authenticate the initiator's static key."""
        self._advance(Step.READ_ACT_THREE)
        if len(message) != ACT_THREE_SIZE:
            raise self._fail(3, "read_failed", f"{len(message)} bytes, expected {ACT_THREE_SIZE}")
        if message[0] != HANDSHAKE_VERSION:
            raise self._fail(3, "bad_version", f"version {message[0]}")
        try:
            rs_raw = self.symmetric.decrypt_and_hash(message[1:50])
        except InvalidTag:
            raise self._fail(3, "bad_ciphertext") from None
        rs = parse_public_key(rs_raw)
        if rs is None:
            raise self._fail(3, "bad_pubkey", "static key is not a compressed curve point")
        self.symmetric.mix_key(ecdh(self._e, rs))
        try:
            self.symmetric.decrypt_with_ad(message[50:])
        except InvalidTag:
            raise self._fail(3, "bad_tag") from None
        self.remote_static = rs

    def split(self) -> TransportKeys:
        """The session keys; only after the last act. The initiator sends with the first key."""
        if self.step is not Step.DONE:
            raise TransportMisuse(f"split before the handshake is done (at {self.step.value})")
        first, second = self.symmetric.split()
        send, receive = (first, second) if self.role is Role.INITIATOR else (second, first)
        assert self.remote_static is not None
        return TransportKeys(send, receive, self.symmetric.chaining_key, self.remote_static,
                             self.symmetric.handshake_hash)
