"""Locks that are never claimed: the target is gone before the lock reaches it, so the secret never comes
back; the chain's clock moves past every lock's expiration and each hop takes its amount back."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.node.helpers import Daemon, Zygote, wait_until
from tests.node.multihop import DEPOSIT, ETH, advance_chain, balance, open_to, pay_request, request, start
from tests.tools import Anvil


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory, chain: tuple[Anvil, str],
         zygote: Zygote) -> Iterator[tuple[Daemon, ...]]:
    root = tmp_path_factory.mktemp("expiry")
    daemons = tuple(start(root, name, chain, zygote) for name in "abcd")
    yield daemons
    for daemon in daemons:
        if daemon.pid is not None:
            daemon.kill(signal.SIGTERM)


def _pay_in_background(payer: Daemon, payee: Daemon, text: str, outcome: dict[str, Any]) -> threading.Thread:
    def pay() -> None:
        try:
            outcome.update(payer.call("POST", "/payments", {"request": text}))
        except Exception as exc:  # the main thread reports it
            outcome["error"] = repr(exc)

    thread = threading.Thread(target=pay)
    thread.start()
    return thread


def _run_chain_until_done(anvil: Anvil, jump: int, thread: threading.Thread, limit: float = 25) -> None:
    """Jump the chain's clock by `jump`, then keep producing blocks until `thread` ends."""
    advance_chain(anvil, jump)
    deadline = time.monotonic() + limit
    while thread.is_alive() and time.monotonic() < deadline:
        advance_chain(anvil, 1)
        thread.join(timeout=0.4)


def test_a_target_that_never_reveals_lets_every_lock_expire(line: tuple[Daemon, ...],
                                                             chain: tuple[Anvil, str]) -> None:
    a, b, c, d = line
    ab, bc, cd = open_to(a, b), open_to(b, c), open_to(c, d)
    warm = pay_request(a, d, ETH // 1000)  # gossip has reached A, and the line works
    assert warm["status"] == "accepted", warm
    wait_until(lambda: balance(d, cd) == ETH // 1000, what="D paid")
    before = {"a": balance(a, ab), "b_ab": balance(b, ab), "b": balance(b, bc), "c_bc": balance(c, bc),
              "c": balance(c, cd)}
    amount = ETH // 100
    text = request(d, amount)
    d.kill(signal.SIGKILL)  # the target and its secret are gone
    outcome: dict[str, Any] = {}
    payer = _pay_in_background(a, d, text, outcome)
    wait_until(lambda: balance(c, cd) == before["c"] - amount, what="C's lock toward D")
    _run_chain_until_done(chain[0], 3 * 600 + 600 + 60, payer)  # past A's lock: 3 hops, 4 reveal timeouts
    assert not payer.is_alive(), "the payer's API call never returned"
    assert outcome.get("status") == "refused", outcome
    assert "no secret came back" in str(outcome.get("reason")), outcome
    wait_until(lambda: balance(a, ab) == before["a"], what="A's lock back with A")
    wait_until(lambda: balance(b, ab) == before["b_ab"], what="B saw A's lock expire")
    wait_until(lambda: balance(b, bc) == before["b"], what="B's lock back with B")
    wait_until(lambda: balance(c, bc) == before["c_bc"], what="C saw B's lock expire")
    wait_until(lambda: balance(c, cd) == before["c"], what="C's lock to D back with C")
    assert balance(a, ab) == DEPOSIT - ETH // 1000 - int(warm["fees"])
