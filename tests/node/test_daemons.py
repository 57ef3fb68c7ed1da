"""Two real daemons as separate processes over loopback TCP on a real anvil: a channel's whole life."""

from __future__ import annotations

import signal
from pathlib import Path

from channeld.chain import connect_rpc
from tests.node.helpers import Daemon, Zygote, make_daemon, open_channel, wait_until
from tests.tools import Anvil

ETH = 10**18


def _pay(payer: Daemon, payee: Daemon, amount: int) -> dict[str, object]:
    result = payer.call("POST", "/payments", {"node_id": payee.node_id, "amount": str(amount)})
    assert result["status"] == "accepted", result
    return dict(result)


def _agree(a: Daemon, b: Daemon) -> tuple[dict[str, object], dict[str, object]]:
    def agreed() -> tuple[dict[str, object], dict[str, object]] | None:
        ca, cb = a.channel(), b.channel()
        same = (ca["our_balance"] == cb["partner_balance"] and ca["partner_balance"] == cb["our_balance"]
                and ca["our_nonce"] == cb["partner_nonce"] and ca["partner_nonce"] == cb["our_nonce"]
                and ca["in_flight"] == cb["in_flight"] == 0)
        return (ca, cb) if same else None

    found: tuple[dict[str, object], dict[str, object]] = wait_until(agreed, what="both sides to agree")
    return found


def _advance(anvil: Anvil, seconds: int) -> None:
    backend = connect_rpc(anvil.url)
    backend.rpc("evm_increaseTime", [seconds])
    backend.rpc("evm_mine", [])


def test_open_pay_both_ways_restart_pay_again_and_close_cooperatively(
        tmp_path: Path, chain: tuple[Anvil, str], zygote: Zygote) -> None:
    anvil, contract = chain
    a = make_daemon(tmp_path, "a", anvil, contract, zygote)
    b = make_daemon(tmp_path, "b", anvil, contract, zygote)
    a.start()
    b.start()
    cid = open_channel(a, b, ETH)
    b.call("POST", f"/channels/{cid}/deposit", {"amount": str(ETH // 2)})
    wait_until(lambda: a.channel()["partner_deposit"] == b.channel()["our_deposit"] == str(ETH // 2),
               what="B's deposit seen by both")
    _pay(a, b, 3 * ETH // 100)
    _pay(b, a, ETH // 100)
    ca, _ = _agree(a, b)
    assert ca["our_balance"] == str(ETH - 2 * ETH // 100)
    for daemon in (a, b):
        daemon.kill(signal.SIGTERM)  # a clean shutdown
    a.start()
    b.start()
    _pay(a, b, ETH // 100)
    _pay(b, a, 2 * ETH // 100)
    ca, cb = _agree(a, b)
    assert ca["our_balance"] == str(ETH - ETH // 100) and cb["our_balance"] == str(ETH // 2 + ETH // 100)
    before = connect_rpc(anvil.url).balance(b.address)
    closed = a.call("POST", f"/channels/{cid}/close", {"force": False})
    assert closed["kind"] == "coop"
    wait_until(lambda: a.channel()["status"] == b.channel()["status"] == "settled", what="cooperative settle")
    assert connect_rpc(anvil.url).balance(b.address) - before == ETH // 2 + ETH // 100
    assert a.call("GET", "/audit/verify")["ok"]
    for daemon in (a, b):
        daemon.kill(signal.SIGTERM)


def test_partner_offline_at_unilateral_close_disputes_when_back_and_settles(
        tmp_path: Path, chain: tuple[Anvil, str], zygote: Zygote) -> None:
    anvil, contract = chain
    a = make_daemon(tmp_path, "a", anvil, contract, zygote)
    b = make_daemon(tmp_path, "b", anvil, contract, zygote)
    a.start()
    b.start()
    cid = open_channel(a, b, ETH)
    _pay(a, b, 5 * ETH // 100)
    _agree(a, b)
    b.kill()
    backend = connect_rpc(anvil.url)
    before = backend.balance(b.address)
    closing = a.call("POST", f"/channels/{cid}/close", {"force": True})
    assert closing["kind"] == "close"
    wait_until(lambda: a.channel()["status"] == "closed", what="A's close mined")
    b.start()  # back before the deadline: B's node sees the close and submits A's latest proof
    wait_until(lambda: b.channel()["status"] == "closed", what="B sees the close")
    _advance(anvil, 31)
    wait_until(lambda: b.channel()["status"] == "settled" and a.channel()["status"] == "settled",
               timeout=30, what="settlement")
    gained = backend.balance(b.address) - before
    assert 4 * ETH // 100 < gained <= 5 * ETH // 100  # what A paid, less B's gas for dispute and settle
    for daemon in (a, b):
        daemon.kill(signal.SIGTERM)
