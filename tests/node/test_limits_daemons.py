"""Risk limits end to end: two real daemons (separate processes) on a real anvil, driven by API and CLI.

A payment over a limit is refused with the limit named (API error, and one line on the CLI's stderr
with a non-zero exit), and nothing stored changes on either node: channel balances and nonces, the
payment list, the audit log. The on-chain reserve refuses a deposit that would eat into it, and never a
close.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from channeld.api._client import ApiError
from tests.node.helpers import Daemon, Zygote, make_daemon, open_channel, wait_until
from tests.tools import REPO, Anvil

ETH = 10**18
MILLI = ETH // 1000
FUNDS = 10**22  # what make_daemon gives each key: 10,000 ETH


@pytest.fixture(scope="module")
def daemons(tmp_path_factory: pytest.TempPathFactory, chain: tuple[Anvil, str],
            zygote: Zygote) -> Iterator[tuple[Daemon, Daemon, str]]:
    anvil, contract = chain
    root: Path = tmp_path_factory.mktemp("limits")
    a = make_daemon(root, "a", anvil, contract, zygote)
    (a.datadir / "channeld.toml").write_text(
        '[limits]\nmax_payment = "0.001eth"\nmax_per_peer_per_hour = "0.003eth"\n')
    b = make_daemon(root, "b", anvil, contract, zygote)
    (b.datadir / "channeld.toml").write_text('[limits]\nmin_onchain_reserve = "9995eth"\n')
    a.start()
    b.start()
    cid = open_channel(a, b, ETH)
    wait_until(lambda: b.channel()["partner_deposit"] == str(ETH), what="the open seen by B")
    yield a, b, cid


def pay(daemon: Daemon, to: Daemon, amount: int) -> Any:
    return daemon.call("POST", "/payments", {"node_id": to.node_id, "amount": str(amount)})


def stored(a: Daemon, b: Daemon) -> tuple[Any, ...]:
    """Everything a payment would change on either node."""
    ours, theirs = a.channel(), b.channel()
    return (ours["our_nonce"], ours["our_balance"], ours["in_flight"], theirs["partner_nonce"],
            theirs["our_balance"], a.call("GET", "/payments"), b.call("GET", "/payments"),
            a.call("GET", "/audit/verify")["entries"], b.call("GET", "/audit/verify")["entries"])


def refused_with(daemon: Daemon, to: Daemon, amount: int, limit: str) -> None:
    with pytest.raises(ApiError, match=rf"limits\.{limit}"):
        pay(daemon, to, amount)


def test_a_payment_over_max_payment_is_refused_by_api_and_cli_and_nothing_changes(
        daemons: tuple[Daemon, Daemon, str]) -> None:
    a, b, _ = daemons
    assert pay(a, b, MILLI)["status"] == "accepted"
    wait_until(lambda: b.channel()["partner_nonce"] == a.channel()["our_nonce"], what="B's view")
    before = stored(a, b)
    refused_with(a, b, MILLI + 1, "max_payment")
    cli = subprocess.run([sys.executable, "-m", "channeld.cli", "--datadir", str(a.datadir), "pay", b.node_id,
                          "0.002eth"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert cli.returncode != 0
    assert "limits.max_payment" in cli.stderr and len(cli.stderr.strip().splitlines()) == 1, cli.stderr
    assert stored(a, b) == before


def test_the_per_peer_hourly_budget_is_enforced_across_payments(daemons: tuple[Daemon, Daemon, str]) -> None:
    a, b, _ = daemons
    sent = int(a.channel()["our_nonce"])  # each payment so far was MILLI
    for _ in range(3 - sent):
        assert pay(a, b, MILLI)["status"] == "accepted"
    wait_until(lambda: b.channel()["partner_nonce"] == 3, what="B's view")
    before = stored(a, b)
    refused_with(a, b, 1, "max_per_peer_per_hour")
    assert stored(a, b) == before


def test_a_deposit_into_the_onchain_reserve_is_refused_but_a_close_is_not(
        daemons: tuple[Daemon, Daemon, str]) -> None:
    a, b, cid = daemons
    with pytest.raises(ApiError, match=r"limits\.min_onchain_reserve"):
        b.call("POST", f"/channels/{cid}/deposit", {"amount": str(10 * ETH)})
    assert b.channel()["our_deposit"] == "0" and a.channel()["partner_deposit"] == "0"
    closing = b.call("POST", f"/channels/{cid}/close", {"force": True})
    assert closing is not None
    wait_until(lambda: a.channel()["status"] == "closed", what="B's close on chain")
