"""Multi-hop payments between four separate daemons on anvil: gossip, routing, locks, reveal, unlock.

One line A-B-C-D for the whole module (each channel funded by its left end), and E with no channel; the
tests run in order, each from the balances the previous one left (the last one stops B).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest

from channeld.cli import main
from tests.node.helpers import Daemon, Zygote, wait_until
from tests.node.multihop import DEPOSIT, ETH, balance, open_to, pay_request, request, start
from tests.tools import Anvil

B_FEE_BASE, C_FEE_PPM = 7, 1000
AMOUNT = ETH // 100


class Line:
    def __init__(self, a: Daemon, b: Daemon, c: Daemon, d: Daemon, e: Daemon) -> None:
        self.a, self.b, self.c, self.d, self.e = a, b, c, d, e
        self.ab, self.bc, self.cd = open_to(a, b), open_to(b, c), open_to(c, d)


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory, chain: tuple[Anvil, str],
         zygote: Zygote) -> Iterator[Line]:
    root = tmp_path_factory.mktemp("line")
    # A's risk limits sit above the channels' capacity, so a routed payment too large for the route
    # meets the route's error, and one above the limit meets the limit first
    daemons = (start(root, "a", chain, zygote, "limits.max_payment=5eth",
                     "limits.max_per_peer_per_hour=50eth", "limits.max_total_per_hour=50eth"),
               start(root, "b", chain, zygote, f"routing.fee_base={B_FEE_BASE}"),
               start(root, "c", chain, zygote, f"routing.fee_ppm={C_FEE_PPM}"),
               start(root, "d", chain, zygote),
               start(root, "e", chain, zygote))  # E has no channel: nothing routes to it
    yield Line(*daemons)
    for daemon in daemons:
        if daemon.pid is not None:
            daemon.kill(signal.SIGTERM)


def c_fee(forwarded: int) -> int:
    return -(-forwarded * C_FEE_PPM // 1_000_000)


def test_line_of_four_pays_across_three_hops_with_fees(line: Line) -> None:
    a, b, c, d = line.a, line.b, line.c, line.d
    started = time.monotonic()
    result = pay_request(a, d, AMOUNT)
    elapsed = time.monotonic() - started
    assert result["status"] == "accepted", result
    assert result["preimage"] is not None  # the secret came back: the receipt
    fee_c, fee_b = c_fee(AMOUNT), B_FEE_BASE
    wait_until(lambda: balance(d, line.cd) == AMOUNT, what="D paid")
    wait_until(lambda: balance(c, line.cd) == DEPOSIT - AMOUNT, what="C's lock to D unlocked")
    wait_until(lambda: balance(c, line.bc) == AMOUNT + fee_c, what="B's lock to C unlocked")
    wait_until(lambda: balance(b, line.ab) == AMOUNT + fee_c + fee_b, what="A's lock to B unlocked")
    assert balance(a, line.ab) == DEPOSIT - AMOUNT - fee_c - fee_b
    assert int(result["fees"]) == fee_c + fee_b
    print(f"three-hop payment latency {elapsed * 1000:.0f} ms")


def test_the_line_pays_back_from_d_to_a(line: Line) -> None:
    """D pays A under A's request over the same channels: every hop moves value the other way."""
    a, b, c, d = line.a, line.b, line.c, line.d
    before = {name: balance(node, cid) for name, node, cid in
              (("a", a, line.ab), ("b", b, line.bc), ("c", c, line.cd), ("d", d, line.cd))}
    back = AMOUNT // 2
    fee_b = B_FEE_BASE  # B forwards into B-A
    fee_c = c_fee(back + fee_b)  # C forwards into C-B what B must receive
    result = pay_request(d, a, back)
    assert result["status"] == "accepted", result
    assert int(result["fees"]) == fee_b + fee_c
    wait_until(lambda: balance(a, line.ab) == before["a"] + back, what="A paid")
    wait_until(lambda: balance(d, line.cd) == before["d"] - back - fee_b - fee_c, what="D's lock unlocked")
    wait_until(lambda: balance(c, line.cd) == before["c"] + back + fee_b + fee_c, what="C got D's lock")
    wait_until(lambda: balance(b, line.bc) == before["b"] + back + fee_b, what="B got C's lock")


def _cli_pay(payer: Daemon, text: str, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str]:
    code = main(["--datadir", str(payer.datadir), "pay", text, *flags])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_cli_max_fee_caps_the_route_fees(line: Line, capsys: pytest.CaptureFixture[str]) -> None:
    fees = B_FEE_BASE + c_fee(AMOUNT)
    code, out = _cli_pay(line.a, request(line.d, AMOUNT), capsys, "--max-fee", str(fees - 1))
    assert code == 1
    assert out.count("\n") == 1 and "FeeCapExceeded" in out and f"over the cap {fees - 1}" in out, out
    code, out = _cli_pay(line.a, request(line.d, AMOUNT), capsys, "--max-fee", str(fees))
    assert code == 0, out
    assert ": accepted" in out


def test_cli_says_why_there_is_no_route(line: Line, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _cli_pay(line.a, request(line.e, AMOUNT), capsys)
    assert code == 1 and out.count("\n") == 1 and "NoRoute: no path" in out, out
    code, out = _cli_pay(line.a, request(line.d, 2 * DEPOSIT), capsys)
    assert code == 1 and out.count("\n") == 1 and "NoCapacity" in out, out
    code, out = _cli_pay(line.a, request(line.d, 6 * DEPOSIT), capsys)  # routed payments meet the limits too
    assert code == 1 and out.count("\n") == 1 and "limits.max_payment" in out, out


def test_cli_says_when_the_route_goes_through_an_offline_peer(line: Line,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    text = request(line.d, AMOUNT)
    line.b.kill(signal.SIGTERM)
    wait_until(lambda: not any(p.get("connected", True) for p in line.a.call("GET", "/peers")),
               what="A sees B gone")
    code, out = _cli_pay(line.a, text, capsys)
    assert code == 1 and out.count("\n") == 1 and "RouteOffline" in out, out
