"""Helpers of the multi-hop tests: daemons with fast gossip, channels between them, paying requests."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from channeld.chain import connect_rpc
from tests.node.helpers import Daemon, Zygote, make_daemon, wait_until
from tests.tools import Anvil

ETH = 10**18
DEPOSIT = ETH


def start(root: Path, name: str, chain: tuple[Anvil, str], zygote: Zygote, *settings: str) -> Daemon:
    daemon = make_daemon(root, name, chain[0], chain[1], zygote)
    base = daemon.argv
    extra = ["--set", "routing.gossip_interval=300ms"]
    for setting in settings:
        extra += ["--set", setting]
    daemon.argv = lambda: [*base(), *extra]  # type: ignore[method-assign]
    daemon.start()
    return daemon


def channels(d: Daemon) -> list[dict[str, Any]]:
    return list(d.call("GET", "/channels"))


def open_to(a: Daemon, b: Daemon, deposit: int = DEPOSIT) -> str:
    """Open a channel from `a` (which deposits) to `b`; its id once both sides hold it open."""
    before = {c["channel_id"] for c in channels(a)}
    a.call("POST", "/channels", {"uri": b.uri, "deposit": str(deposit), "challenge_period": 30})

    def opened() -> str | None:
        new = [c for c in channels(a) if c["channel_id"] not in before and c["status"] == "open"]
        if not new or new[0]["channel_id"] not in {c["channel_id"] for c in channels(b)}:
            return None
        return str(new[0]["channel_id"])

    found: str = wait_until(opened, what="channel open on both sides")
    return found


def balance(d: Daemon, cid: str) -> int:
    return int(d.call("GET", f"/channels/{cid}")["our_balance"])


def request(payee: Daemon, amount: int) -> str:
    return str(payee.call("POST", "/requests", {"amount": str(amount), "description": "multihop"})["request"])


def pay_request(payer: Daemon, payee: Daemon, amount: int, **extra: Any) -> dict[str, Any]:
    """Pay a new request of `payee`, retrying while gossip has not yet brought a route."""
    text = request(payee, amount)

    def routed() -> dict[str, Any] | None:
        try:
            result = payer.call("POST", "/payments", {"request": text, **extra})
        except Exception as exc:  # the graph is still filling: retry until gossip arrived
            if "NoRoute" in str(exc) or "no path" in str(exc):
                return None
            raise
        return dict(result)

    result: dict[str, Any] = wait_until(routed, what="a route to the payee")
    return result


def advance_chain(anvil: Anvil, seconds: int) -> None:
    """Move the chain's clock: the next block is `seconds` later."""
    backend = connect_rpc(anvil.url)
    backend.rpc("evm_increaseTime", [seconds])
    backend.rpc("evm_mine", [])


def pause(d: Daemon) -> None:
    """Freeze the daemon (SIGSTOP): its sockets stay open, it reads and answers nothing."""
    assert d.pid is not None
    os.kill(d.pid, signal.SIGSTOP)


def resume(d: Daemon) -> None:
    assert d.pid is not None
    os.kill(d.pid, signal.SIGCONT)


def stop_all(daemons: Iterable[Daemon]) -> None:
    """Teardown: a frozen daemon must be woken before it can act on SIGTERM."""
    for daemon in daemons:
        if daemon.pid is not None:
            resume(daemon)
            daemon.kill(signal.SIGTERM)


def mine_until(anvil: Anvil, predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Keep the chain producing blocks (a second apart) until `predicate()` is truthy."""
    backend = connect_rpc(anvil.url)

    def mine_one() -> None:
        backend.rpc("evm_increaseTime", [1])
        backend.rpc("evm_mine", [])
        time.sleep(0.3)

    return wait_until(predicate, timeout, what, between=mine_one)


def view(d: Daemon, cid: str) -> dict[str, Any]:
    return dict(d.call("GET", f"/channels/{cid}"))


def settled_off_chain(payer: Daemon, payee: Daemon, cid: str) -> tuple[int, int] | None:
    """Both sides' balances once they agree on every proof and nothing is locked (else None)."""
    mine, theirs = view(payer, cid), view(payee, cid)
    held = int(mine["our_deposit"]) + int(mine["partner_deposit"])
    agree = (mine["our_nonce"] == theirs["partner_nonce"] and mine["partner_nonce"] == theirs["our_nonce"]
             and mine["our_balance"] == theirs["partner_balance"]
             and mine["partner_balance"] == theirs["our_balance"])
    unlocked = int(mine["our_balance"]) + int(mine["partner_balance"]) == held
    return (int(mine["our_balance"]), int(theirs["our_balance"])) if agree and unlocked else None
