"""The node's identity key, its encrypted keystore, the operator's password and the admin API token.

A data directory holds, each file mode 0600 in a 0700 directory:

- `keystore.json`: the secp256k1 key in Ethereum's V3 keystore format (scrypt), readable by any wallet;
- `api-token`: 32 random bytes as hex, the bearer secret of the local control API;
- `channeld.toml`: the configuration (written by `channeld.config`, not here).

The secret key lives only inside a `NodeKey`, whose repr and str show the address and nothing else, and
which refuses to be pickled or copied into logs by accident.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import secrets
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import coincurve
from eth_account import Account
from eth_utils import keccak, to_checksum_address

from channeld.errors import LocalFault

log = logging.getLogger(__name__)

KEYSTORE_FILE = "keystore.json"
API_TOKEN_FILE = "api-token"
PASSWORD_ENV = "CHANNELD_PASSWORD"
# Ethereum's standard scrypt cost (geth, MetaMask): about a second and 256 MiB to try one password.
DEFAULT_SCRYPT_N = 2**18
_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_MAX_SECRET_FILE = 64 * 1024


class KeystoreError(LocalFault):
    """The keystore, key file, password or API token is missing, unreadable or wrong."""


class NodeKey:
    """The node's secp256k1 key. Shows only its address; the secret is reachable only for signing."""

    __slots__ = ("_address", "_node_id", "_private_key")

    def __init__(self, secret: bytes) -> None:
        _check_secret(secret)
        self._private_key = coincurve.PrivateKey(secret)
        uncompressed = self._private_key.public_key.format(compressed=False)
        self._address = to_checksum_address(keccak(uncompressed[1:])[-20:])
        self._node_id = self._private_key.public_key.format(compressed=True).hex()

    @classmethod
    def generate(cls) -> NodeKey:
        """A fresh key from the operating system's CSPRNG."""
        while True:
            candidate = secrets.token_bytes(32)
            if 0 < int.from_bytes(candidate, "big") < _SECP256K1_ORDER:
                return cls(candidate)

    @property
    def address(self) -> str:
        """The EIP-55 checksummed Ethereum address: the node's on-chain identity."""
        return self._address

    @property
    def node_id(self) -> str:
        """The 33-byte compressed public key as hex (no 0x): the node's transport identity."""
        return self._node_id

    @property
    def private_key(self) -> coincurve.PrivateKey:
        """The coincurve key, for signing and ECDH. Never log it or anything derived from `.secret`."""
        return self._private_key

    def sign_digest(self, digest: bytes) -> bytes:
        """A 65-byte `r || s || v` signature (low-s, v in {27, 28}) over a 32-byte digest."""
        if not isinstance(digest, bytes) or len(digest) != 32:
            raise LocalFault("a digest to sign must be exactly 32 bytes")
        signature = self._private_key.sign_recoverable(digest, hasher=None)
        return signature[:64] + bytes([signature[64] + 27])

    def __repr__(self) -> str:
        return f"NodeKey(address={self._address})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("NodeKey cannot be pickled or copied: the secret stays in this process")


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) != 32:
        raise KeystoreError("a private key must be exactly 32 bytes")
    if not 0 < int.from_bytes(secret, "big") < _SECP256K1_ORDER:
        raise KeystoreError("a private key must be between 1 and the secp256k1 group order")


@dataclass(frozen=True, slots=True)
class DataDirLayout:
    """Where each file of a data directory lives."""

    root: Path

    @property
    def keystore(self) -> Path:
        return self.root / KEYSTORE_FILE

    @property
    def api_token(self) -> Path:
        return self.root / API_TOKEN_FILE


def create_datadir(path: Path, password: str, import_key: NodeKey | None = None, *,
                   scrypt_n: int = DEFAULT_SCRYPT_N) -> NodeKey:
    """Create the data directory with a new (or imported) key and an API token; return the key.

    Refuses a directory that already holds a keystore, so an init can never overwrite a funded key.
    The keystore is written last: if anything fails before it, running init again simply retries.
    """
    _check_password(password)
    layout = DataDirLayout(Path(path))
    _make_private_dir(layout.root)
    if layout.keystore.exists() and layout.keystore.stat().st_size > 0:
        raise KeystoreError(f"{layout.keystore} already holds a key; refusing to overwrite it")
    key = import_key if import_key is not None else NodeKey.generate()
    write_api_token(layout.root)
    keystore = Account.encrypt(key.private_key.secret, password, kdf="scrypt", iterations=scrypt_n)
    _write_private(layout.keystore, json.dumps(keystore, indent=2).encode())
    log.info("created data directory %s for node %s", layout.root, key.address)
    return key


def load_key(datadir: Path, password: str) -> NodeKey:
    """Decrypt the data directory's keystore; a wrong password raises `KeystoreError`."""
    path = DataDirLayout(Path(datadir)).keystore
    if not path.is_file():
        raise KeystoreError(f"no keystore at {path}: run `channeld init` first")
    _check_private_file(path)
    return _decrypt(_read_keystore_json(path), password, path)


def read_key_file(path: Path, password: str) -> NodeKey:
    """A key to import with `--key-file`: a V3 keystore (same password) or 64 hex digits."""
    path = Path(path)
    raw = _read_secret_file(path)
    text = raw.decode("utf-8", errors="replace").strip()
    if text.startswith("{"):
        return _decrypt(_parse_keystore_json(text, path), password, path)
    digits = text.removeprefix("0x").removeprefix("0X")
    if len(digits) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise KeystoreError(f"{path} is neither a keystore JSON nor a private key of 64 hex digits")
    return NodeKey(bytes.fromhex(digits))


def _decrypt(keystore: dict[str, Any], password: str, path: Path) -> NodeKey:
    try:
        secret = Account.decrypt(keystore, password)
    except ValueError as exc:
        reason = "wrong password" if "MAC mismatch" in str(exc) else f"unreadable keystore ({exc})"
        raise KeystoreError(f"cannot decrypt {path}: {reason}") from None
    except (KeyError, TypeError, NotImplementedError) as exc:
        raise KeystoreError(f"cannot decrypt {path}: malformed keystore ({exc!r})") from None
    return NodeKey(bytes(secret))


def _read_keystore_json(path: Path) -> dict[str, Any]:
    return _parse_keystore_json(_read_secret_file(path).decode("utf-8", errors="replace"), path)


def _parse_keystore_json(text: str, path: Path) -> dict[str, Any]:
    try:
        keystore = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KeystoreError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(keystore, dict) or not isinstance(keystore.get("crypto"), dict):
        raise KeystoreError(f"{path} is not an Ethereum V3 keystore (no 'crypto' object)")
    return keystore


def write_api_token(datadir: Path) -> Path:
    """Write a fresh random API token (32 bytes, hex) and return its path; replaces an old one."""
    path = DataDirLayout(Path(datadir)).api_token
    _write_private(path, (secrets.token_hex(32) + "\n").encode())
    return path


def read_api_token(datadir: Path) -> str:
    """The API token as written by `write_api_token`."""
    path = DataDirLayout(Path(datadir)).api_token
    if not path.is_file():
        raise KeystoreError(f"no API token at {path}: run `channeld init` first")
    token = _read_secret_file(path).decode("ascii", errors="replace").strip()
    if len(token) != 64 or any(c not in "0123456789abcdef" for c in token):
        raise KeystoreError(f"{path} does not hold a 64-digit hex API token")
    return token


def resolve_password(password_file: Path | None = None, environ: Mapping[str, str] | None = None, *,
                     confirm: bool = False, prompt: Callable[[str], str] = getpass.getpass,
                     is_tty: Callable[[], bool] | None = None) -> str:
    """The operator's password from `--password-file`, else `CHANNELD_PASSWORD`, else a TTY prompt.

    `confirm` asks twice (for init). Without a file, the variable or a terminal, it raises rather than
    block on a prompt nobody can answer.
    """
    if password_file is not None:
        return _check_password(_read_password_file(Path(password_file)), f"password file {password_file}")
    env = os.environ if environ is None else environ
    if PASSWORD_ENV in env:
        return _check_password(env[PASSWORD_ENV], PASSWORD_ENV)
    if not (is_tty or _stdin_is_tty)():
        raise KeystoreError(f"no password: use --password-file, set {PASSWORD_ENV}, or run in a terminal")
    password = _check_password(prompt("Keystore password: "), "prompt")
    if confirm and prompt("Repeat password: ") != password:
        raise KeystoreError("the two passwords differ")
    return password


def _stdin_is_tty() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def _read_password_file(path: Path) -> str:
    raw = _read_secret_file(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise KeystoreError(f"password file {path} is not UTF-8 text") from None
    # Editors add one final newline; anything else is part of the password.
    return text.removesuffix("\n").removesuffix("\r")


def _check_password(password: str, source: str = "password") -> str:
    if not isinstance(password, str) or not password:
        raise KeystoreError(f"empty password from {source}")
    return password


def _read_secret_file(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > _MAX_SECRET_FILE:
            raise KeystoreError(f"{path} is too large ({size} bytes) to be a key, password or token")
        return path.read_bytes()
    except OSError as exc:
        raise KeystoreError(f"cannot read {path}: {exc.strerror}") from None


def _check_private_file(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeystoreError(f"{path} is readable by other users (mode {mode:04o}); run chmod 600 on it")


def _make_private_dir(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise KeystoreError(f"{root} exists and is not a directory")
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkdir's mode is masked by the umask and ignored for an existing directory: set it outright.
    root.chmod(0o700)


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (temp file, fsync, rename), mode 0600 from the first byte."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        os.fchmod(fd, 0o600)
        file.write(data)
        file.flush()
        os.fsync(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
