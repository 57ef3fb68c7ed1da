"""Helpers of the multi-hop tests: daemons with fast gossip, channels between them, paying requests."""

from __future__ import annotations

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
