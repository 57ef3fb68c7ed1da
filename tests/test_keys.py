"""Keystore, node key, password sources and API token: real files in temporary directories."""

from __future__ import annotations

import copy
import json
import logging
import os
import pickle
import stat
from pathlib import Path

import coincurve
import pytest
from eth_account import Account

from channeld.errors import LocalFault
from channeld.keys import (
    PASSWORD_ENV,
    DataDirLayout,
    KeystoreError,
    NodeKey,
    create_datadir,
    load_key,
    read_api_token,
    read_key_file,
    resolve_password,
    write_api_token,
)

# Cheap scrypt for tests; the production default is Ethereum's standard 2**18.
FAST = 2**10
SECRET = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
SECRET_ADDRESS = Account.from_key(SECRET).address
PASSWORD = "correct horse battery staple"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_creates_private_files_and_load_returns_the_same_key(tmp_path: Path) -> None:
    datadir = tmp_path / "node"
    created = create_datadir(datadir, PASSWORD, scrypt_n=FAST)
    layout = DataDirLayout(datadir)
    assert mode(datadir) == 0o700
    assert mode(layout.keystore) == 0o600
    assert mode(layout.api_token) == 0o600
    loaded = load_key(datadir, PASSWORD)
    assert (loaded.address, loaded.node_id) == (created.address, created.node_id)
    assert not [p.name for p in datadir.iterdir() if p.name.endswith(".tmp")]


def test_keystore_is_a_standard_scrypt_v3_file(tmp_path: Path) -> None:
    create_datadir(tmp_path, PASSWORD, NodeKey(SECRET), scrypt_n=FAST)
    keystore = json.loads(DataDirLayout(tmp_path).keystore.read_text())
    assert keystore["version"] == 3
    assert keystore["crypto"]["kdf"] == "scrypt"
    assert keystore["crypto"]["kdfparams"]["n"] == FAST
    assert Account.decrypt(keystore, PASSWORD) == SECRET
    assert SECRET.hex() not in DataDirLayout(tmp_path).keystore.read_text()


def test_permissions_hold_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        create_datadir(tmp_path / "node", PASSWORD, scrypt_n=FAST)
    finally:
        os.umask(old)
    assert mode(tmp_path / "node") == 0o700
    assert mode(DataDirLayout(tmp_path / "node").keystore) == 0o600


def test_an_existing_open_directory_is_tightened(tmp_path: Path) -> None:
    datadir = tmp_path / "node"
    datadir.mkdir(mode=0o755)
    datadir.chmod(0o755)
    create_datadir(datadir, PASSWORD, scrypt_n=FAST)
    assert mode(datadir) == 0o700


def test_init_refuses_to_overwrite_an_existing_keystore(tmp_path: Path) -> None:
    first = create_datadir(tmp_path, PASSWORD, scrypt_n=FAST)
    before = DataDirLayout(tmp_path).keystore.read_bytes()
    with pytest.raises(KeystoreError, match="already holds a key"):
        create_datadir(tmp_path, PASSWORD, scrypt_n=FAST)
    assert DataDirLayout(tmp_path).keystore.read_bytes() == before
    assert load_key(tmp_path, PASSWORD).address == first.address


def test_init_over_an_empty_keystore_file_is_allowed(tmp_path: Path) -> None:
    DataDirLayout(tmp_path).keystore.touch()
    key = create_datadir(tmp_path, PASSWORD, scrypt_n=FAST)
    assert load_key(tmp_path, PASSWORD).address == key.address


def test_init_refuses_a_file_in_place_of_the_directory(tmp_path: Path) -> None:
    (tmp_path / "node").write_text("not a directory")
    with pytest.raises(KeystoreError, match="not a directory"):
        create_datadir(tmp_path / "node", PASSWORD, scrypt_n=FAST)


def test_init_refuses_an_empty_password(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="empty password"):
        create_datadir(tmp_path / "node", "", scrypt_n=FAST)
    assert not (tmp_path / "node").exists()


def test_wrong_password_is_a_clear_keystore_error(tmp_path: Path) -> None:
    create_datadir(tmp_path, PASSWORD, scrypt_n=FAST)
    with pytest.raises(KeystoreError, match="wrong password"):
        load_key(tmp_path, "not the password")


def test_missing_keystore(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="channeld init"):
        load_key(tmp_path, PASSWORD)


@pytest.mark.parametrize(("content", "reason"), [
    ("{not json", "not valid JSON"),
    ("[]", "not an Ethereum V3 keystore"),
    ('{"crypto": {"kdf": "scrypt"}}', "malformed keystore"),
    ('{"crypto": {"kdf": "bcrypt", "kdfparams": {}, "ciphertext": "00", "mac": "00"}}', "cannot decrypt"),
])
def test_corrupt_keystore(tmp_path: Path, content: str, reason: str) -> None:
    path = DataDirLayout(tmp_path).keystore
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(KeystoreError, match=reason):
        load_key(tmp_path, PASSWORD)


def test_load_refuses_a_keystore_other_users_can_read(tmp_path: Path) -> None:
    create_datadir(tmp_path, PASSWORD, scrypt_n=FAST)
    DataDirLayout(tmp_path).keystore.chmod(0o644)
    with pytest.raises(KeystoreError, match="chmod 600"):
        load_key(tmp_path, PASSWORD)


def test_import_hex_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key.hex"
    key_file.write_text("0x" + SECRET.hex() + "\n")
    imported = read_key_file(key_file, PASSWORD)
    assert imported.address == SECRET_ADDRESS
    create_datadir(tmp_path / "node", PASSWORD, imported, scrypt_n=FAST)
    assert load_key(tmp_path / "node", PASSWORD).address == SECRET_ADDRESS


def test_import_keystore_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "wallet.json"
    key_file.write_text(json.dumps(Account.encrypt(SECRET, PASSWORD, kdf="scrypt", iterations=FAST)))
    assert read_key_file(key_file, PASSWORD).address == SECRET_ADDRESS
    with pytest.raises(KeystoreError, match="wrong password"):
        read_key_file(key_file, "other")


@pytest.mark.parametrize(("content", "reason"), [
    ("abc", "64 hex digits"),
    ("zz" * 32, "64 hex digits"),
    ("00" * 32, "group order"),
    ("ff" * 32, "group order"),
])
def test_import_refuses_bad_key_files(tmp_path: Path, content: str, reason: str) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(content)
    with pytest.raises(KeystoreError, match=reason):
        read_key_file(key_file, PASSWORD)


def test_import_refuses_missing_and_huge_files(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="cannot read"):
        read_key_file(tmp_path / "absent", PASSWORD)
    (tmp_path / "huge").write_bytes(b"0" * 100_000)
    with pytest.raises(KeystoreError, match="too large"):
        read_key_file(tmp_path / "huge", PASSWORD)


def test_node_key_identities() -> None:
    key = NodeKey(SECRET)
    assert key.address == SECRET_ADDRESS
    public = coincurve.PrivateKey(SECRET).public_key.format(compressed=True)
    assert key.node_id == public.hex()
    assert len(bytes.fromhex(key.node_id)) == 33


def test_node_key_signatures_recover_to_its_address() -> None:
    key = NodeKey(SECRET)
    digest = bytes(range(32))
    signature = key.sign_digest(digest)
    assert len(signature) == 65
    assert signature[64] in (27, 28)
    s_value = int.from_bytes(signature[32:64], "big")
    assert s_value <= 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
    assert Account._recover_hash(digest, signature=signature) == SECRET_ADDRESS
    with pytest.raises(LocalFault):
        key.sign_digest(b"short")


def test_secret_never_shows_in_repr_str_or_format() -> None:
    key = NodeKey(SECRET)
    for text in (repr(key), str(key), f"{key}", f"{key!r}", repr([key]), repr({"k": key})):
        assert SECRET.hex() not in text.lower()
        assert key.address in text
    assert not hasattr(key, "__dict__")


def test_node_key_cannot_be_pickled_or_copied() -> None:
    key = NodeKey(SECRET)
    with pytest.raises(TypeError):
        pickle.dumps(key)
    with pytest.raises(TypeError):
        copy.deepcopy(key)


def test_secret_never_reaches_the_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key_file = tmp_path / "key.hex"
    key_file.write_text(SECRET.hex())
    key = read_key_file(key_file, PASSWORD)
    create_datadir(tmp_path / "node", PASSWORD, key, scrypt_n=FAST)
    loaded = load_key(tmp_path / "node", PASSWORD)
    logging.getLogger("test").info("loaded %s / %r", loaded, loaded)
    assert caplog.records, "expected channeld to log the init"
    assert SECRET.hex() not in caplog.text.lower()
    assert PASSWORD not in caplog.text
    assert loaded.address in caplog.text


def test_errors_do_not_carry_the_password(tmp_path: Path) -> None:
    create_datadir(tmp_path, PASSWORD, scrypt_n=FAST)
    with pytest.raises(KeystoreError) as info:
        load_key(tmp_path, "hunter2-guess")
    assert "hunter2-guess" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_api_token(tmp_path: Path) -> None:
    create_datadir(tmp_path, PASSWORD, scrypt_n=FAST)
    token = read_api_token(tmp_path)
    assert len(bytes.fromhex(token)) == 32
    path = write_api_token(tmp_path)
    assert path == DataDirLayout(tmp_path).api_token
    assert mode(path) == 0o600
    assert read_api_token(tmp_path) != token


def test_api_token_missing_or_malformed(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="channeld init"):
        read_api_token(tmp_path)
    DataDirLayout(tmp_path).api_token.write_text("short\n")
    with pytest.raises(KeystoreError, match="64-digit"):
        read_api_token(tmp_path)


class Prompt:
    """A scripted operator at a terminal: answers prompts in order and records them."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def __call__(self, question: str) -> str:
        self.asked.append(question)
        return self.answers.pop(0)


def test_password_from_file_drops_one_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_bytes(b" spaced pw \r\n")
    assert resolve_password(path, {}) == " spaced pw "
    path.write_bytes(b"pw\n\n")
    assert resolve_password(path, {}) == "pw\n"


def test_password_file_beats_env_which_beats_prompt(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("from-file")
    prompt = Prompt("from-prompt")
    env = {PASSWORD_ENV: "from-env"}
    assert resolve_password(path, env, prompt=prompt, is_tty=lambda: True) == "from-file"
    assert resolve_password(None, env, prompt=prompt, is_tty=lambda: True) == "from-env"
    assert prompt.asked == []
    assert resolve_password(None, {}, prompt=prompt, is_tty=lambda: True) == "from-prompt"


def test_no_prompt_without_a_terminal() -> None:
    prompt = Prompt("never used")
    with pytest.raises(KeystoreError, match="--password-file"):
        resolve_password(None, {}, prompt=prompt, is_tty=lambda: False)
    assert prompt.asked == []


def test_confirmation_prompt() -> None:
    assert resolve_password(None, {}, confirm=True, prompt=Prompt("a", "a"), is_tty=lambda: True) == "a"
    with pytest.raises(KeystoreError, match="differ"):
        resolve_password(None, {}, confirm=True, prompt=Prompt("a", "b"), is_tty=lambda: True)


@pytest.mark.parametrize("source", ["file", "env", "prompt"])
def test_empty_password_is_refused_from_every_source(tmp_path: Path, source: str) -> None:
    path = tmp_path / "pw"
    path.write_text("\n")
    with pytest.raises(KeystoreError, match="empty password"):
        resolve_password(path if source == "file" else None,
                         {PASSWORD_ENV: ""} if source == "env" else {},
                         prompt=Prompt(""), is_tty=lambda: True)


def test_unreadable_password_file(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="cannot read"):
        resolve_password(tmp_path / "absent", {})
    (tmp_path / "bin").write_bytes(b"\xff\xfe")
    with pytest.raises(KeystoreError, match="UTF-8"):
        resolve_password(tmp_path / "bin", {})
