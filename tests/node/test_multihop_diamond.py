"""Route choice and fail-over between separate daemons: A reaches D through B, C or E.

B does not forward (`routing.forward = no`), C is cheap and E dear. A payment must not be sent through B
at all, and when C cannot forward what A locked, A's lock to C expires and A fails over to E, all within
one call of the API.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.node.helpers import Daemon, Zygote, wait_until
from tests.node.multihop import DEPOSIT, ETH, advance_chain, balance, open_to, pay_request, start
from tests.tools import Anvil

C_FEE, E_FEE = 5, 50
C_SIDE = ETH // 10  # C's deposit toward D


class Diamond:
    def __init__(self, root: Path, chain: tuple[Anvil, str], zygote: Zygote) -> None:
        self.anvil = chain[0]
        self.a = start(root, "a", chain, zygote)
        self.b = start(root, "b", chain, zygote, "routing.forward=no")
        self.c = start(root, "c", chain, zygote, f"routing.fee_base={C_FEE}")
        self.e = start(root, "e", chain, zygote, f"routing.fee_base={E_FEE}")
        self.d = start(root, "d", chain, zygote)
        self.ab, self.bd = open_to(self.a, self.b), open_to(self.b, self.d)
        self.ac, self.cd = open_to(self.a, self.c), open_to(self.c, self.d, C_SIDE)
        self.ae, self.ed = open_to(self.a, self.e), open_to(self.e, self.d)

    def daemons(self) -> tuple[Daemon, ...]:
        return self.a, self.b, self.c, self.e, self.d


@pytest.fixture(scope="module")
def diamond(tmp_path_factory: pytest.TempPathFactory, chain: tuple[Anvil, str],
            zygote: Zygote) -> Iterator[Diamond]:
    net = Diamond(tmp_path_factory.mktemp("diamond"), chain, zygote)
    yield net
    for daemon in net.daemons():
        daemon.kill(signal.SIGTERM)


def test_a_node_that_does_not_forward_is_never_routed_through(diamond: Diamond) -> None:
    net = diamond
    amount = ETH // 1000
    started = time.monotonic()
    result = pay_request(net.a, net.d, amount)
    elapsed = time.monotonic() - started
    assert result["status"] == "accepted", result
    assert int(result["fees"]) == C_FEE  # through C, the cheapest route that forwards
    assert elapsed < 10, f"took {elapsed:.1f} s: a lock waited on B"
    wait_until(lambda: balance(net.c, net.ac) == amount + C_FEE, what="A's lock to C unlocked")
    assert balance(net.a, net.ab) == DEPOSIT  # B never received a lock
    assert balance(net.b, net.bd) == DEPOSIT


def test_a_mediator_short_of_balance_fails_over_to_the_next_route(diamond: Diamond) -> None:
    net = diamond
    # C spends most of its side of C-D directly: A's graph still believes C can forward the deposit
    spent = C_SIDE // 2
    direct = net.c.call("POST", "/payments", {"node_id": net.d.node_id, "amount": str(spent)})
    assert direct["status"] == "accepted", direct
    c_left = balance(net.c, net.cd)
    amount = c_left + ETH // 100  # more than C holds toward D, less than the channel's capacity
    a_on_ac, a_on_ae = balance(net.a, net.ac), balance(net.a, net.ae)
    outcome: dict[str, Any] = {}

    def pay() -> None:
        try:
            outcome.update(pay_request(net.a, net.d, amount))
        except Exception as exc:  # the main thread reports it
            outcome["error"] = repr(exc)

    payer = threading.Thread(target=pay)
    payer.start()
    wait_until(lambda: balance(net.a, net.ac) == a_on_ac - amount - C_FEE, what="A's lock toward C")
    # the lock sits at C until it expires: the chain's clock moves past it (a 2-hop lock: 3 reveal timeouts)
    advance_chain(net.anvil, 3 * 600 + 60)
    deadline = time.monotonic() + 25
    while payer.is_alive() and time.monotonic() < deadline:
        advance_chain(net.anvil, 1)  # a live chain: blocks keep coming
        payer.join(timeout=0.4)
    assert not payer.is_alive(), "the payer's API call never returned"
    assert outcome.get("status") == "accepted", (outcome, net.a.log()[-3000:])
    assert int(outcome["fees"]) == E_FEE
    assert outcome["preimage"] is not None
    wait_until(lambda: balance(net.a, net.ac) == a_on_ac, what="A's expired lock to C back with A")
    wait_until(lambda: balance(net.c, net.cd) == c_left, what="C kept its balance toward D")
    wait_until(lambda: balance(net.e, net.ae) == amount + E_FEE, what="A's lock to E unlocked")
    assert balance(net.a, net.ae) == a_on_ae - amount - E_FEE
