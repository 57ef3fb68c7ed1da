"""Every `channeld` command against real daemons: what it prints when it works, and its one-line refusal.

One anvil and two node daemons (separate processes over loopback TCP) are shared by the whole module;
each test that changes channel state opens the channel it needs, so the tests do not depend on order.
Commands run in-process through `channeld.cli.main`, as a user's shell would run them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from channeld.chain import connect_rpc
from channeld.cli import main
from channeld.keys import NodeKey
from tests.node.helpers import Daemon, Zygote, deploy_hub, make_daemon, wait_until
from tests.tools import Anvil, free_port

ETH = 10**18
PERIOD = 30


@dataclass
class Pair:
    anvil: Anvil
    alice: Daemon
    bob: Daemon
    root: Path


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("cli")
    anvil = Anvil()
    zygote = Zygote()
    try:
        contract = deploy_hub(anvil)
        alice = make_daemon(root, "alice", anvil, contract, zygote)
        bob = make_daemon(root, "bob", anvil, contract, zygote)
        alice.start()
        bob.start()
        yield Pair(anvil, alice, bob, root)
    finally:
        zygote.stop()
        anvil.stop()


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Any:
    def run(datadir: Path, *argv: str) -> Ran:
        capsys.readouterr()
        code = main(["--datadir", str(datadir), *argv])
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return run


def refused(ran: Ran, command: str, *words: str) -> None:
    """Exit status 1 and exactly one line on stderr naming the command and the reason."""
    lines = ran.err.strip().splitlines()
    assert ran.code == 1 and len(lines) == 1, ran
    assert lines[0].startswith(f"channeld {command}: error:"), lines
    for word in words:
        assert word in lines[0], lines[0]


def new_channel(pair: Pair, cli: Any) -> str:
    """Alice opens a fresh 1 ETH channel to Bob through the CLI; its id once both nodes have it."""
    before = {c["channel_id"] for c in pair.alice.call("GET", "/channels")}
    ran = cli(pair.alice.datadir, "open", pair.bob.uri, "--deposit", "1eth",
              "--challenge-period", str(PERIOD), "--json")
    assert ran.code == 0 and ran.json()["kind"] == "open", ran

    def fresh() -> str | None:
        ids = {c["channel_id"] for c in pair.alice.call("GET", "/channels")} - before
        known = {c["channel_id"] for c in pair.bob.call("GET", "/channels")}
        return next(iter(ids & known), None)

    cid: str = wait_until(fresh, what="the new channel on both nodes")
    return cid


def channel(daemon: Daemon, cid: str) -> dict[str, Any]:
    found: dict[str, Any] = daemon.call("GET", f"/channels/{cid}")
    return found


# --- reading -------------------------------------------------------------------------------------------


def test_info(pair: Pair, cli: Any) -> None:
    ran = cli(pair.alice.datadir, "info", "--json")
    assert ran.code == 0 and ran.json()["node_id"] == pair.alice.node_id
    text = cli(pair.alice.datadir, "info")
    assert text.code == 0 and f"node id   {pair.alice.node_id}" in text.out
    refused(cli(pair.root / "nowhere", "info"), "info", "no running node")


def test_connect(pair: Pair, cli: Any) -> None:
    ran = cli(pair.alice.datadir, "connect", pair.bob.uri)
    assert ran.code == 0 and ran.out.strip() == f"connected to {pair.bob.node_id}"
    refused(cli(pair.alice.datadir, "connect", "not-a-uri"), "connect", "uri")
    stranger = NodeKey.generate().node_id  # nobody listens for it there
    refused(cli(pair.alice.datadir, "connect", f"{stranger}@127.0.0.1:{free_port()}"), "connect")


def test_open(pair: Pair, cli: Any) -> None:
    cid = new_channel(pair, cli)
    assert channel(pair.alice, cid)["our_deposit"] == str(ETH)
    refused(cli(pair.alice.datadir, "open", pair.bob.uri, "--deposit", "lots"), "open", "not a number")
    refused(cli(pair.alice.datadir, "open", pair.bob.uri, "--deposit", "1000eth"), "open",
            "max_channel_deposit")
    refused(cli(pair.alice.datadir, "open", pair.alice.uri, "--deposit", "1eth"), "open", "another node")


def test_deposit(pair: Pair, cli: Any) -> None:
    cid = new_channel(pair, cli)
    ran = cli(pair.alice.datadir, "deposit", cid, "0.5eth")
    assert ran.code == 0 and "(deposit)" in ran.out, ran
    wait_until(lambda: channel(pair.bob, cid)["partner_deposit"] == str(3 * ETH // 2), what="deposit seen")
    refused(cli(pair.alice.datadir, "deposit", "0x" + "ab" * 32, "1"), "deposit", "no channel")
    refused(cli(pair.alice.datadir, "deposit", cid, "0"), "deposit", "positive")


def test_pay_and_payments(pair: Pair, cli: Any) -> None:
    new_channel(pair, cli)
    ran = cli(pair.alice.datadir, "pay", pair.bob.node_id, "0.01eth")
    assert ran.code == 0 and ran.out.strip().endswith(": accepted"), ran
    payment_id = int(ran.out.split()[1])
    listed = cli(pair.bob.datadir, "payments", "--json")
    assert listed.code == 0
    assert any(p["payment_id"] == payment_id and p["kind"] == "payment_received" for p in listed.json())
    table = cli(pair.bob.datadir, "payments", "--limit", "5")
    assert table.code == 0 and "payment_received" in table.out
    refused(cli(pair.alice.datadir, "pay", pair.bob.node_id, "0.5eth"), "pay", "max_payment")
    refused(cli(pair.alice.datadir, "pay", pair.bob.node_id, "100eth"), "pay", "balance on our side")
    refused(cli(pair.alice.datadir, "pay", "02" + "11" * 32, "1"), "pay", "no open channel")
    refused(cli(pair.root / "nowhere", "payments"), "payments", "no running node")


def test_channels(pair: Pair, cli: Any) -> None:
    cid = new_channel(pair, cli)
    listed = cli(pair.bob.datadir, "channels", "--json")
    assert listed.code == 0 and cid in {c["channel_id"] for c in listed.json()}
    table = cli(pair.bob.datadir, "channels")
    assert table.code == 0 and cid[:18] in table.out and "open" in table.out
    refused(cli(pair.root / "nowhere", "channels"), "channels", "no running node")


def test_withdraw(pair: Pair, cli: Any) -> None:
    cid = new_channel(pair, cli)
    ran = cli(pair.alice.datadir, "withdraw", cid, "0.25eth", "--json")
    assert ran.code == 0 and ran.json()["kind"] == "withdraw", ran
    wait_until(lambda: channel(pair.bob, cid)["partner_withdrawn"] == str(ETH // 4), what="withdraw mined")
    refused(cli(pair.alice.datadir, "withdraw", cid, "5eth"), "withdraw")
    refused(cli(pair.alice.datadir, "withdraw", cid, "1", "--to", "0x1234"), "withdraw", "to")


def test_cooperative_close(pair: Pair, cli: Any) -> None:
    cid = new_channel(pair, cli)
    ran = cli(pair.alice.datadir, "close", cid, "--json")
    assert ran.code == 0 and ran.json()["kind"] == "coop", ran
    wait_until(lambda: channel(pair.alice, cid)["status"] == "settled", what="cooperative settle")
    refused(cli(pair.alice.datadir, "close", cid), "close", "not open")


def test_force_close_and_settle(pair: Pair, cli: Any) -> None:
    cid = new_channel(pair, cli)
    ran = cli(pair.alice.datadir, "close", cid, "--force", "--json")
    assert ran.code == 0 and ran.json()["kind"] == "close", ran
    wait_until(lambda: channel(pair.alice, cid)["status"] == "closed", what="close mined")
    refused(cli(pair.alice.datadir, "settle", cid), "settle", "challenge period ends")
    backend = connect_rpc(pair.anvil.url)
    backend.rpc("evm_increaseTime", [PERIOD + 1])
    backend.rpc("evm_mine", [])
    wait_until(lambda: channel(pair.bob, cid)["settle_deadline"] < backend.timestamp(), what="deadline")

    def settle_once_the_node_sees_the_deadline_pass() -> Any:
        # the chain is past the deadline; the node's watcher learns it at its next poll, and until then a
        # settle is refused (changing nothing). The nodes also settle by themselves after the deadline, so a
        # CLI settle either queues or finds it done.
        ran = cli(pair.bob.datadir, "settle", cid)
        return None if "challenge period ends" in ran.err else ran

    settled = wait_until(settle_once_the_node_sees_the_deadline_pass, what="the node to see the deadline")
    assert settled.code == 0 or "not closed" in settled.err, settled
    wait_until(lambda: channel(pair.alice, cid)["status"] == "settled", what="settled")
    refused(cli(pair.alice.datadir, "settle", "0x" + "cd" * 32), "settle", "no channel")


# --- store ---------------------------------------------------------------------------------------------


def test_backup_and_restore(pair: Pair, cli: Any, tmp_path: Path) -> None:
    target = tmp_path / "alice.backup"
    ran = cli(pair.alice.datadir, "backup", str(target), "--json")
    assert ran.code == 0 and ran.json()["records"] > 0 and target.stat().st_size > 0
    refused(cli(pair.alice.datadir, "backup", str(target)), "backup", "exists")
    fresh = tmp_path / "restored"  # not there yet: a restore onto a fresh machine creates it
    restored = cli(fresh, "restore", str(target), "--json")
    assert restored.code == 0 and restored.json()["records"] == ran.json()["records"]
    assert (fresh / "db").is_dir()
    refused(cli(fresh, "restore", str(target)), "restore", "not an empty directory")
    (tmp_path / "junk").write_bytes(b"not a backup")
    refused(cli(tmp_path / "other", "restore", str(tmp_path / "junk")), "restore")


def test_audit_verify_and_export(pair: Pair, cli: Any, tmp_path: Path) -> None:
    verified = cli(pair.alice.datadir, "audit", "verify", "--json")
    assert verified.code == 0 and verified.json()["ok"] and verified.json()["entries"] > 0
    assert cli(pair.alice.datadir, "audit", "verify").out.startswith("audit log verifies:")
    target = tmp_path / "audit.jsonl"
    exported = cli(pair.alice.datadir, "audit", "export", str(target), "--json")
    assert exported.code == 0
    lines = target.read_text().splitlines()
    assert len(lines) == 1 + exported.json()["entries"] > 1  # a header line, then one line per entry
    assert all(json.loads(line) for line in lines)
    refused(cli(pair.root / "nowhere", "audit", "verify"), "audit", "no running node")
    refused(cli(pair.alice.datadir, "audit", "export"), "audit", "needs a FILE")
    refused(cli(pair.alice.datadir, "audit", "export", str(target)), "audit", "exists")


# --- watchtowers ---------------------------------------------------------------------------------------


def test_watchtower_add_and_list(pair: Pair, cli: Any) -> None:
    empty = cli(pair.bob.datadir, "watchtower", "list")
    assert empty.code == 0 and "no watchtowers" in empty.out
    tower = f"{NodeKey.generate().node_id}@127.0.0.1:{free_port()}"  # not running: the node keeps redialling
    added = cli(pair.bob.datadir, "watchtower", "add", tower, "--json")
    assert added.code == 0 and added.json()["uri"] == tower, added
    listed = cli(pair.bob.datadir, "watchtower", "list", "--json")
    assert [t["uri"] for t in listed.json()["watchtowers"]] == [tower]
    assert listed.json()["watchtowers"][0]["connected"] is False
    assert "not connected" in cli(pair.bob.datadir, "watchtower", "list").out
    refused(cli(pair.bob.datadir, "watchtower", "add", tower), "watchtower", "already added")
    refused(cli(pair.bob.datadir, "watchtower", "add", pair.bob.uri), "watchtower", "own watchtower")
    refused(cli(pair.bob.datadir, "watchtower", "add", "nonsense"), "watchtower", "uri")


@pytest.mark.parametrize("argv", [["watchtower", "list"], ["watchtower", "add", "x@127.0.0.1:1"]])
def test_watchtower_commands_need_a_running_node(cli: Any, tmp_path: Path, argv: list[str]) -> None:
    refused(cli(tmp_path, *argv), "watchtower", "no running node")


# --- devnet --------------------------------------------------------------------------------------------


def test_devnet(cli: Any, tmp_path: Path) -> None:
    ran = cli(tmp_path, "devnet", "--nodes", "2", "--dir", str(tmp_path / "net"), "--port", str(free_port()),
              "--no-wait", "--json")
    assert ran.code == 0, ran
    document = ran.json()
    assert len(document["nodes"]) == 2 and document["contract"].startswith("0x")
    assert all(Path(node["datadir"], "keystore.json").exists() for node in document["nodes"])
    refused(cli(tmp_path, "devnet", "--nodes", "0"), "devnet", "--nodes")
    refused(cli(tmp_path, "devnet", "--dir", str(tmp_path / "net")), "devnet", "not empty")
