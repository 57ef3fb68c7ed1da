"""One-time login links, without a node or a browser: a data directory and the token book."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from channeld.api._dashboard import LINKS_DIR, LoginRefused, create_login_link, redeem_login_code
from channeld.api._tokens import Scope, TokenBook
from channeld.errors import ConfigError
from channeld.keys import create_datadir


@pytest.fixture
def datadir(tmp_path: Path) -> Path:
    create_datadir(tmp_path / "node", "pw", scrypt_n=2)
    return tmp_path / "node"


def test_a_link_gives_a_token_of_its_scope_that_the_node_accepts(datadir: Path) -> None:
    code = create_login_link(datadir, Scope.INVOICE, session=60)
    granted = redeem_login_code(datadir, code)
    assert granted["scope"] == "invoice"
    record = TokenBook(datadir).check(f"Bearer {granted['token']}", Scope.INVOICE)
    assert record.scope is Scope.INVOICE and record.expires is not None
    assert 50 < record.expires - time.time() <= 60
    with pytest.raises(Exception, match="does not cover pay"):
        TokenBook(datadir).check(f"Bearer {granted['token']}", Scope.PAY)


def test_a_link_works_once(datadir: Path) -> None:
    code = create_login_link(datadir, Scope.READ)
    redeem_login_code(datadir, code)
    with pytest.raises(LoginRefused):
        redeem_login_code(datadir, code)
    assert len(TokenBook(datadir).list()) == 1


def test_an_expired_link_is_refused_and_mints_nothing(datadir: Path) -> None:
    code = create_login_link(datadir, Scope.ADMIN, lifetime=5)
    with pytest.raises(LoginRefused):
        redeem_login_code(datadir, code, now=time.time() + 6)
    assert TokenBook(datadir).list() == []


@pytest.mark.parametrize("code", ["", "short", "../../api-token", "x" * 43 + "/", "a" * 43])
def test_a_malformed_or_unknown_code_is_refused(datadir: Path, code: str) -> None:
    create_login_link(datadir, Scope.ADMIN)
    with pytest.raises(LoginRefused):
        redeem_login_code(datadir, code)
    assert TokenBook(datadir).list() == []


def test_the_code_is_stored_only_hashed_and_private(datadir: Path) -> None:
    code = create_login_link(datadir, Scope.READ)
    [stored] = (datadir / LINKS_DIR).iterdir()
    assert code not in stored.name and code not in stored.read_text()
    assert stored.stat().st_mode & 0o077 == 0


def test_expired_links_are_swept_when_a_new_one_is_made(datadir: Path) -> None:
    create_login_link(datadir, Scope.READ, lifetime=0.01)
    time.sleep(0.02)
    create_login_link(datadir, Scope.READ)
    assert len(list((datadir / LINKS_DIR).iterdir())) == 1


def test_lifetimes_must_be_positive(datadir: Path) -> None:
    with pytest.raises(ConfigError):
        create_login_link(datadir, Scope.READ, lifetime=0)
