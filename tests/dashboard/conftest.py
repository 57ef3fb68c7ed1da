"""Real daemons on a real anvil and headless Debian chromium driven by Playwright, for the dashboard.

Node A is the one whose dashboard the browser opens; B has a channel with A and pays it; C has no
channel yet (the page opens and closes one to it, a test closes another and watches its countdown); D
gets a channel whose balance history a test builds step by step. A delegates to a standalone
watchtower. Session-scoped: daemons and the browser take seconds to start, so every test shares them and
uses its own page.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from channeld.cli import main as cli_main
from tests.node.helpers import Daemon, Zygote, deploy_hub, make_daemon, open_channel, wait_until
from tests.node.test_towers import start_tower
from tests.tools import REPO, Anvil

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = REPO / "docs" / "screenshots"
ETH = 10**18


@dataclass
class Nodes:
    anvil: Anvil
    a: Daemon
    b: Daemon
    c: Daemon
    d: Daemon
    channel_id: str
    tower_uri: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.a.api}/"

    def login_link(self, scope: str) -> str:
        """What `channeld dashboard --scope SCOPE` prints for node A."""
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            assert cli_main(["--datadir", str(self.a.datadir), "dashboard", "--scope", scope]) == 0
        return out.getvalue().strip()


@pytest.fixture(scope="session")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    root: Path = tmp_path_factory.mktemp("dashnet")
    anvil = Anvil()
    zygote = Zygote()
    try:
        contract = deploy_hub(anvil)
        a, b, c, d = (make_daemon(root, name, anvil, contract, zygote) for name in "abcd")
        for daemon in (a, b, c, d):
            daemon.start()
        tower_uri = start_tower(root, anvil, contract, zygote)
        a.call("POST", "/watchtowers", {"uri": tower_uri})
        cid = open_channel(a, b, 10 * ETH)
        b.call("POST", f"/channels/{cid}/deposit", {"amount": str(5 * ETH)})
        # each node learns the deposit from its own follower: B pays only once it has seen it too
        wait_until(lambda: a.channel()["partner_deposit"] == b.channel()["our_deposit"] == str(5 * ETH),
                   what="B's deposit, seen by both")
        for amount in (ETH // 100, ETH // 50, ETH // 40):
            b.call("POST", "/payments", {"node_id": a.node_id, "amount": str(amount)})
        yield Nodes(anvil, a, b, c, d, cid, tower_uri)
    finally:
        zygote.stop()
        anvil.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium: run scripts/setup-browser.sh")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Console:
    """Every console error and uncaught page error of one page."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    opened.console = Console(opened)
    yield opened
    context.close()


def screenshot(page: Any, name: str, full_page: bool = True) -> None:
    if os.environ.get("CHANNELD_SCREENSHOTS", "1") != "0":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def sign_in(page: Any, nodes: Nodes, scope: str) -> None:
    page.goto(nodes.login_link(scope))
    page.wait_for_selector("#overview .stat")
    assert page.locator("#scope").inner_text() == f"{scope} access"
    assert "#login" not in page.url  # the spent code does not stay in the address bar or history


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
