"""A node delegates to a standalone tower (`channeld watchtower run`, a separate process) and is saved by it.

Bob's node registers the tower with `channeld watchtower add` (kept across his restarts), Alice pays him
many times, Bob's node goes away for good, Alice closes unilaterally (her close carries none of her
payments to Bob) and only the tower is left to answer with her newest proof. After settlement Bob's
account grew by exactly what Alice paid him: he sent no transaction himself.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from channeld.chain import connect_rpc
from channeld.chain.contract import BalanceProofUpdated, decode_event
from channeld.cli import main
from channeld.keys import create_datadir
from tests.node.helpers import PASSWORD, Daemon, Zygote, make_daemon, open_channel, wait_until
from tests.tools import Anvil, free_port

ETH = 10**18
PAYMENTS = 40


def start_tower(root: Path, anvil: Anvil, contract: str, zygote: Zygote) -> str:
    """`channeld watchtower run` forked by the zygote; returns the URI it prints once ready."""
    key = create_datadir(root / "tower" / "watchtower", PASSWORD, scrypt_n=2)
    connect_rpc(anvil.url).rpc("anvil_setBalance", [key.address, hex(10**21)])
    log = root / "tower.log"
    zygote.spawn(["--datadir", str(root / "tower"), "watchtower", "run", "--rpc-url", anvil.url,
                  "--contract", contract, "--listen", f"127.0.0.1:{free_port()}", "--confirmations", "0",
                  "--poll-interval", "0.1"], log, {"CHANNELD_PASSWORD": PASSWORD})

    def ready_line() -> str | None:
        lines = [line for line in (log.read_text() if log.exists() else "").splitlines()
                 if line.startswith("watchtower ")]
        return lines[0].split()[1] if lines else None

    uri: str = wait_until(ready_line, what="the tower's ready line")
    return uri


def cli_json(daemon: Daemon, *argv: str, capsys: pytest.CaptureFixture[str]) -> object:
    capsys.readouterr()
    assert main(["--datadir", str(daemon.datadir), *argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def tower_of(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    listed = cli_json(daemon, "watchtower", "list", capsys=capsys)
    assert isinstance(listed, dict)
    towers = listed["watchtowers"]
    assert len(towers) == 1, towers
    return dict(towers[0])


def wait_tower_synced(daemon: Daemon, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    # Alice's payment returned only after Bob's node accepted it, so the proof is marked by now; `pending`
    # counts it until the feeder handed it over and the tower confirmed it
    found: dict[str, object] = wait_until(
        lambda: (t := tower_of(daemon, capsys))["connected"] and t["pending"] == 0 and t["accepted"] and t,
        what="the tower to hold Bob's newest proof")
    return found


def pay(payer: Daemon, payee: Daemon, amount: int) -> None:
    result = payer.call("POST", "/payments", {"node_id": payee.node_id, "amount": str(amount)})
    assert result["status"] == "accepted", result


def disputed_nonce(anvil: Anvil, contract: str, cid: str) -> int:
    backend = connect_rpc(anvil.url)
    for log in backend.get_logs(contract, 0, backend.head()):
        event = decode_event({"topics": log.topics, "data": log.data})
        if isinstance(event, BalanceProofUpdated) and "0x" + event.channel_id.hex() == cid:
            return event.nonce
    return 0


def test_the_tower_disputes_for_an_offline_node_and_bob_gets_exactly_what_he_was_paid(
        tmp_path: Path, chain: tuple[Anvil, str], zygote: Zygote, capsys: pytest.CaptureFixture[str]) -> None:
    anvil, contract = chain
    alice = make_daemon(tmp_path, "alice", anvil, contract, zygote)
    bob = make_daemon(tmp_path, "bob", anvil, contract, zygote)
    alice.start()
    bob.start()
    tower_uri = start_tower(tmp_path, anvil, contract, zygote)
    added = cli_json(bob, "watchtower", "add", tower_uri, capsys=capsys)
    assert isinstance(added, dict) and added["uri"] == tower_uri
    cid = open_channel(alice, bob, ETH)
    for n in range(PAYMENTS // 2):
        pay(alice, bob, (n + 1) * ETH // 10_000)
    wait_tower_synced(bob, capsys)
    bob.kill(signal.SIGTERM)
    bob.start()  # the tower comes from Bob's store, not from the command line
    assert tower_of(bob, capsys)["uri"] == tower_uri
    for n in range(PAYMENTS // 2, PAYMENTS):
        pay(alice, bob, (n + 1) * ETH // 10_000)
    paid = sum(range(1, PAYMENTS + 1)) * ETH // 10_000
    wait_until(lambda: bob.channel()["partner_nonce"] == PAYMENTS, what="Bob holding every payment")
    wait_tower_synced(bob, capsys)
    bob.kill()  # gone for good, and his node never comes back
    before = connect_rpc(anvil.url).balance(bob.address)
    alice.call("POST", f"/channels/{cid}/close", {"force": True})
    wait_until(lambda: disputed_nonce(anvil, contract, cid) == PAYMENTS, timeout=30,
               what="the tower's dispute with Alice's newest proof")
    backend = connect_rpc(anvil.url)
    backend.rpc("evm_increaseTime", [31])
    backend.rpc("evm_mine", [])
    wait_until(lambda: alice.channel()["status"] == "settled", timeout=30, what="Alice's node settling")
    assert backend.balance(bob.address) - before == paid
    alice.kill(signal.SIGTERM)
