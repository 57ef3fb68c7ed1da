"""The hourly budgets survive a crash: two real daemons on a real anvil, the payer SIGKILLed and restarted.

The payer spends most of its per-peer hourly budget, is killed with SIGKILL (no shutdown code runs), and
is started again on the same data directory: a payment over what is left of the budget is refused by
the API with a 4xx naming `limits.max_per_peer_per_hour`, and one inside it is accepted. Before the
ledger was stored with the payments' rounds, the restart began a fresh hour and the first payment passed.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from channeld.keys import read_api_token
from tests.node.helpers import Daemon, Zygote, make_daemon, open_channel, wait_until
from tests.tools import Anvil

ETH = 10**18
MILLI = ETH // 1000


@pytest.fixture
def pair(tmp_path: Path, chain: tuple[Anvil, str], zygote: Zygote) -> Iterator[tuple[Daemon, Daemon]]:
    anvil, contract = chain
    a = make_daemon(tmp_path, "a", anvil, contract, zygote)
    (a.datadir / "channeld.toml").write_text(
        '[limits]\nmax_payment = "0.003eth"\nmax_per_peer_per_hour = "0.007eth"\n')
    b = make_daemon(tmp_path, "b", anvil, contract, zygote)
    a.start()
    b.start()
    open_channel(a, b, ETH)
    wait_until(lambda: b.channel()["partner_deposit"] == str(ETH), what="the open seen by B")
    yield a, b
    for daemon in (a, b):
        if daemon.pid is not None:
            daemon.kill(signal.SIGTERM)


def post_payment(payer: Daemon, payee: Daemon, amount: int) -> httpx.Response:
    """The raw API answer (status code included) to a payment request."""
    headers = {"Authorization": f"Bearer {read_api_token(payer.datadir)}"}
    body = {"node_id": payee.node_id, "amount": str(amount)}
    return httpx.post(f"http://127.0.0.1:{payer.api}/api/v1/payments", json=body, headers=headers,
                      timeout=60.0)


def test_the_hourly_budget_spent_before_a_sigkill_still_counts_after_the_restart(
        pair: tuple[Daemon, Daemon]) -> None:
    a, b = pair
    for _ in range(2):  # 6 of the 7 milli-ether of the budget
        answer = post_payment(a, b, 3 * MILLI)
        assert answer.status_code == 200 and answer.json()["status"] == "accepted", answer.text
    a.kill(signal.SIGKILL)
    a.start()
    wait_until(lambda: b.node_id in a.call("GET", "/info")["peers"], what="A reconnected to B")
    over = post_payment(a, b, 2 * MILLI)
    assert 400 <= over.status_code < 500, over.text
    assert over.json()["kind"] == "RiskLimitExceeded"
    assert "limits.max_per_peer_per_hour" in over.json()["error"]
    assert "already sent 0.006" in over.json()["error"]  # the whole spend before the kill, no more
    inside = post_payment(a, b, MILLI)
    assert inside.status_code == 200 and inside.json()["status"] == "accepted", inside.text
    wait_until(lambda: int(b.channel()["our_balance"]) == 7 * MILLI, what="B holding all three payments")
    assert post_payment(a, b, 1).json()["kind"] == "RiskLimitExceeded"  # the budget is spent to the wei
