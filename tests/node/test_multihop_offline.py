"""A mediator that goes offline mid-payment, between four separate daemons on anvil (line A-B-C-D).

B is frozen (SIGSTOP: its sockets stay open, it reads nothing) or killed while a payment crosses it. The
payer's lock expires, every lock-expired message is accepted once the hop is back (a hop that comes back
with a stale clock refuses the first one as premature: the sender retries), and each channel's two views
agree again with exactly the balances they had before the payment and nothing locked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.node.helpers import Daemon, Zygote, wait_until
from tests.node.multihop import (
    ETH,
    advance_chain,
    balance,
    mine_until,
    open_to,
    pause,
    pay_request,
    request,
    resume,
    settled_off_chain,
    start,
    stop_all,
    view,
)
from tests.tools import Anvil

AMOUNT = ETH // 100
PAST_EVERY_LOCK = 3 * 600 + 600 + 60  # a three-hop lock: four reveal timeouts, and a minute more
FROZEN_AT_LEAST = 3.0  # seconds: well past the node's staleness threshold (1 s, or 3 chain polls)


def _brief(channel: dict[str, Any]) -> str:
    return (f"ours {channel['our_balance']} theirs {channel['partner_balance']} "
            f"nonces {channel['our_nonce']}/{channel['partner_nonce']}")


class Line:
    def __init__(self, daemons: tuple[Daemon, ...], anvil: Anvil) -> None:
        self.a, self.b, self.c, self.d = daemons
        self.anvil = anvil
        self.ab, self.bc, self.cd = open_to(self.a, self.b), open_to(self.b, self.c), open_to(self.c, self.d)
        self.links = ((self.a, self.b, self.ab), (self.b, self.c, self.bc), (self.c, self.d, self.cd))

    def report(self) -> str:
        """What each side holds, and the logs' last lines: the message of a failed wait."""
        rows = [f"{cid[:10]}: {_brief(view(left, cid))} / {_brief(view(right, cid))}"
                for left, right, cid in self.links]
        logs = [f"--- {name}\n{d.log()[-2500:]}" for name, d in zip("abcd", (self.a, self.b, self.c, self.d),
                                                                  strict=True)]
        return "\n".join(rows + logs)

    def views(self) -> list[tuple[int, int]] | None:
        """Each channel's (left, right) balances, once both sides agree and nothing is locked."""
        found = [settled_off_chain(left, right, cid) for left, right, cid in self.links]
        return None if None in found else [pair for pair in found if pair is not None]


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory, chain: tuple[Anvil, str],
         zygote: Zygote) -> Iterator[Line]:
    root = tmp_path_factory.mktemp("offline")
    daemons = tuple(start(root, name, chain, zygote) for name in "abcd")
    net = Line(daemons, chain[0])
    warm = pay_request(net.a, net.d, ETH // 1000)  # gossip has reached A, and the line works
    assert warm["status"] == "accepted", warm
    yield net
    stop_all(daemons)


def _pay_in_background(payer: Daemon, text: str, outcome: dict[str, Any]) -> threading.Thread:
    def pay() -> None:
        try:
            outcome.update(payer.call("POST", "/payments", {"request": text}))
        except Exception as exc:  # the main thread reports it
            outcome["error"] = repr(exc)

    thread = threading.Thread(target=pay)
    thread.start()
    return thread


def _wait_refused(net: Line, thread: threading.Thread, outcome: dict[str, Any]) -> None:
    """Move the chain past every lock, then keep it going until the payer gives up on its route."""
    advance_chain(net.anvil, PAST_EVERY_LOCK)
    mine_until(net.anvil, lambda: not thread.is_alive(), "the payer's API call to return")
    assert outcome.get("status") == "refused", outcome
    assert "no secret came back" in str(outcome.get("reason")), outcome


def _wait_back_to(net: Line, before: list[tuple[int, int]]) -> None:
    try:
        mine_until(net.anvil, lambda: net.views() == before, "every lock gone, every balance as before")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{net.report()}") from None


def test_a_mediator_frozen_before_it_reads_the_lock(line: Line) -> None:
    """The lock sits unread in B's socket while it expires; B reads it, and the expiry, when it wakes."""
    net = line
    before = mine_until(net.anvil, net.views, "the line at rest")
    text = request(net.d, AMOUNT)
    pause(net.b)
    outcome: dict[str, Any] = {}
    payer = _pay_in_background(net.a, text, outcome)
    try:
        wait_until(lambda: balance(net.a, net.ab) < before[0][0], what="A's lock toward B")
        _wait_refused(net, payer, outcome)
    finally:
        resume(net.b)
    _wait_back_to(net, before)


def test_a_mediator_frozen_after_forwarding(line: Line) -> None:
    """B forwards to C, then freezes; D is frozen too (the secret never comes back). C expires its lock to
    D, A its lock to B; B, woken with a stale clock, expires its lock to C and takes A's expiry."""
    net = line
    before = mine_until(net.anvil, net.views, "the line at rest")
    text = request(net.d, AMOUNT)
    pause(net.d)
    outcome: dict[str, Any] = {}
    payer = _pay_in_background(net.a, text, outcome)
    try:
        wait_until(lambda: balance(net.c, net.cd) < before[2][0], what="C's lock toward D")
        pause(net.b)
        frozen_at = time.monotonic()
        _wait_refused(net, payer, outcome)
        # the test moves the chain's clock by an hour within a second; B must have been away long enough
        # by its own clock, too, to know that its chain view is stale when it wakes
        time.sleep(max(0.0, FROZEN_AT_LEAST - (time.monotonic() - frozen_at)))
    finally:
        resume(net.b)
        resume(net.d)
    _wait_back_to(net, before)


def test_a_mediator_killed_after_forwarding_and_restarted(line: Line) -> None:
    """B is killed with a lock pending each way and restarts after they expired: it reloads the payment,
    expires its lock to C and accepts A's expiry."""
    net = line
    before = mine_until(net.anvil, net.views, "the line at rest")
    text = request(net.d, AMOUNT)
    pause(net.d)
    outcome: dict[str, Any] = {}
    payer = _pay_in_background(net.a, text, outcome)
    try:
        wait_until(lambda: balance(net.c, net.cd) < before[2][0], what="C's lock toward D")
        net.b.kill()
        _wait_refused(net, payer, outcome)
    finally:
        resume(net.d)
    net.b.start()
    _wait_back_to(net, before)
