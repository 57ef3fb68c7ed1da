"""End to end on anvil: a hub daemon opens channels with three partner daemons in one transaction (through
the CLI), each partner sees its channel with the hub's deposit and is paid over it; then the hub tops
every channel up in one transaction. The refusals (over a limit, a partner URI that is malformed or does
not answer, a zero amount, a partner named twice) send nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from channeld import cli
from channeld.api._client import ApiClient
from channeld.chain import connect_rpc
from channeld.errors import ChanneldError
from channeld.keys import NodeKey
from tests.batch.hub import hub_network
from tests.node.helpers import Daemon, wait_until
from tests.tools import Anvil, free_port

DEPOSIT = 10**15
TOP_UP = 7 * 10**14
LIMIT = 10 * 10**18  # limits.max_channel_deposit's default


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Anvil, Daemon, list[Daemon]]]:
    with hub_network(tmp_path_factory.mktemp("funding"), ("hub", "p0", "p1", "p2")) as started:
        yield started


def sent_count(anvil: Anvil, daemon: Daemon) -> int:
    return int(connect_rpc(anvil.url).rpc("eth_getTransactionCount", [daemon.address, "latest"]), 16)


def post(hub: Daemon, path: str, body: dict[str, Any]) -> Any:
    return ApiClient(hub.datadir, timeout=120.0).call("POST", path, body)


def test_batch_open_pay_and_top_up(network: tuple[Anvil, Daemon, list[Daemon]], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    anvil, hub, partners = network
    uris = tmp_path / "partners.txt"
    uris.write_text("# the hub's partners\n" + "\n".join(p.uri for p in partners) + "\n")
    before = sent_count(anvil, hub)
    argv = ["--datadir", str(hub.datadir), "open", "--batch", str(uris), "--deposit", str(DEPOSIT),
            "--challenge-period", "30"]
    assert cli.main(argv) == 0, capsys.readouterr()
    assert "3 channels" in capsys.readouterr().out
    assert sent_count(anvil, hub) == before + 1  # one transaction for all three

    wait_until(lambda: len(hub.call("GET", "/channels")) == 3, what="hub sees three channels")
    for partner in partners:
        wait_until(lambda p=partner: len(p.call("GET", "/channels")) == 1, what="partner sees its channel")
        theirs = partner.channel()
        assert theirs["status"] == "open"
        assert theirs["partner_deposit"] == str(DEPOSIT) and theirs["our_deposit"] == "0"
    for i, partner in enumerate(partners):
        paid = hub.call("POST", "/payments", {"node_id": partner.node_id, "amount": str(100 + i)})
        assert paid["status"] == "accepted", paid
        wait_until(lambda p=partner, a=100 + i: p.channel()["our_balance"] == str(a), what="partner paid")

    # top every channel up by TOP_UP in one transaction
    before = sent_count(anvil, hub)
    result = post(hub, "/batch/deposit", {"amount": str(TOP_UP)})
    assert result["operation"]["status"] == "mined", result
    assert len(result["channels"]) == 3 and result["total"] == str(3 * TOP_UP)
    assert sent_count(anvil, hub) == before + 1
    for partner in partners:
        wait_until(lambda p=partner: p.channel()["partner_deposit"] == str(DEPOSIT + TOP_UP),
                   what="partner sees the top-up")
    wait_until(lambda: all(c["our_deposit"] == str(DEPOSIT + TOP_UP) for c in hub.call("GET", "/channels")),
               what="hub sees its top-ups")


def unreachable_uri() -> str:
    return f"{NodeKey.generate().node_id}@127.0.0.1:{free_port()}"


@pytest.mark.parametrize(("path", "body", "match"), [
    ("/batch/open", {"deposit": str(LIMIT + 1)}, "max_channel_deposit"),
    ("/batch/open", {"deposit": "0"}, "positive"),
    ("/batch/open", {"deposit": "1", "uris": ["not-a-uri"]}, "not valid"),
    ("/batch/open", {"deposit": "1", "uris": "unreachable"}, "cannot be reached"),
    ("/batch/open", {"deposit": "1", "uris": "twice"}, "twice"),
    ("/batch/deposit", {"amount": "0"}, "positive"),
    ("/batch/deposit", {"amount": str(LIMIT)}, "max_channel_deposit"),
])
def test_refusals_send_nothing(network: tuple[Anvil, Daemon, list[Daemon]], path: str, body: dict[str, Any],
                               match: str) -> None:
    anvil, hub, partners = network
    uris: Any = body.get("uris", [p.uri for p in partners])
    if uris == "unreachable":
        uris = [partners[0].uri, unreachable_uri()]
    elif uris == "twice":
        uris = [partners[0].uri, partners[0].uri]
    request = {**body, "uris": uris} if path == "/batch/open" else body
    before, channels = sent_count(anvil, hub), hub.call("GET", "/channels")
    with pytest.raises(ChanneldError, match=match):
        post(hub, path, request)
    assert sent_count(anvil, hub) == before
    assert hub.call("GET", "/channels") == channels


def test_a_total_below_the_reserve_sends_nothing(network: tuple[Anvil, Daemon, list[Daemon]]) -> None:
    anvil, hub, partners = network
    rpc = connect_rpc(anvil.url)
    funds = rpc.balance(hub.address)
    rpc.rpc("anvil_setBalance", [hub.address, hex(10**16)])  # exactly limits.min_onchain_reserve's default
    try:
        before = sent_count(anvil, hub)
        with pytest.raises(ChanneldError, match="min_onchain_reserve"):
            post(hub, "/batch/open", {"uris": [p.uri for p in partners], "deposit": "1"})
        with pytest.raises(ChanneldError, match="min_onchain_reserve"):
            post(hub, "/batch/deposit", {"amount": "1"})
        assert sent_count(anvil, hub) == before
    finally:
        rpc.rpc("anvil_setBalance", [hub.address, hex(funds)])
