"""Multi-hop payments between four separate daemons on anvil: gossip, routing, locks, reveal, unlock."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from tests.node.helpers import Daemon, Zygote, make_daemon, wait_until
from tests.tools import Anvil

ETH = 10**18
DEPOSIT = ETH


def _start(root: Path, name: str, chain: tuple[Anvil, str], zygote: Zygote, *settings: str) -> Daemon:
    daemon = make_daemon(root, name, chain[0], chain[1], zygote)
    base = daemon.argv
    extra = ["--set", "routing.gossip_interval=300ms"]
    for setting in settings:
        extra += ["--set", setting]
    daemon.argv = lambda: [*base(), *extra]  # type: ignore[method-assign]
    daemon.start()
    return daemon


def _channels(d: Daemon) -> list[dict[str, Any]]:
    return list(d.call("GET", "/channels"))


def _open(a: Daemon, b: Daemon) -> str:
    before = {c["channel_id"] for c in _channels(a)}
    a.call("POST", "/channels", {"uri": b.uri, "deposit": str(DEPOSIT), "challenge_period": 30})

    def opened() -> str | None:
        new = [c for c in _channels(a) if c["channel_id"] not in before and c["status"] == "open"]
        if not new or new[0]["channel_id"] not in {c["channel_id"] for c in _channels(b)}:
            return None
        return str(new[0]["channel_id"])

    found: str = wait_until(opened, what="channel open on both sides")
    return found


def _balance(d: Daemon, cid: str) -> int:
    return int(d.call("GET", f"/channels/{cid}")["our_balance"])


def _pay_request(payer: Daemon, payee: Daemon, amount: int) -> dict[str, Any]:
    request = payee.call("POST", "/requests", {"amount": str(amount), "description": "multihop"})

    def routed() -> dict[str, Any] | None:
        try:
            result = payer.call("POST", "/payments", {"request": request["request"]})
        except Exception as exc:  # the graph is still filling: retry until gossip arrived
            if "NoRoute" in str(exc) or "no path" in str(exc):
                return None
            raise
        return dict(result)

    result: dict[str, Any] = wait_until(routed, what="a route to the payee")
    return result


def test_line_of_four_pays_across_three_hops_with_fees(tmp_path: Path, chain: tuple[Anvil, str],
                                                       zygote: Zygote) -> None:
    a = _start(tmp_path, "a", chain, zygote)
    b = _start(tmp_path, "b", chain, zygote, "routing.fee_base=7")
    c = _start(tmp_path, "c", chain, zygote, "routing.fee_ppm=1000")
    d = _start(tmp_path, "d", chain, zygote)
    ab, bc, cd = _open(a, b), _open(b, c), _open(c, d)
    amount = ETH // 100
    started = time.monotonic()
    result = _pay_request(a, d, amount)
    elapsed = time.monotonic() - started
    assert result["status"] == "accepted", result
    assert result["preimage"] is not None  # the secret came back: the receipt
    c_fee = amount * 1000 // 1_000_000
    b_fee = 7
    wait_until(lambda: _balance(d, cd) == amount, what="D paid")
    wait_until(lambda: _balance(c, cd) == DEPOSIT - amount, what="C's lock to D unlocked")
    wait_until(lambda: _balance(c, bc) == amount + c_fee, what="B's lock to C unlocked")
    wait_until(lambda: _balance(b, ab) == amount + c_fee + b_fee, what="A's lock to B unlocked")
    assert _balance(a, ab) == DEPOSIT - amount - c_fee - b_fee
    assert int(result["fees"]) == c_fee + b_fee
    print(f"three-hop payment latency {elapsed * 1000:.0f} ms")
    for daemon in (a, b, c, d):
        daemon.kill(signal.SIGTERM)

