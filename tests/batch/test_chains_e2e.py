"""Batches on every chain: two anvils, a hub and a partner serving both.

The hub opens a channel on each chain in one batch transaction per chain (`open --batch --chain`), tops up
one chain's channels only, withdraws from every channel with one batch per chain (each mined on its own
chain, naming it), and closes one chain's channels with a batch while the other chain's stay open. A
funding batch that names no chain on a two-chain node is refused with the chains listed, nothing sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from channeld import cli
from channeld.api._client import ApiClient, ApiError
from channeld.chain import connect_rpc
from tests.batch.hub import deploy_with_batch
from tests.multichain.helpers import ChainEntry, MultiChainDaemon, make_multichain_daemon
from tests.node.helpers import Zygote, wait_until
from tests.tools import Anvil

ALPHA_ID, BETA_ID = 6161, 6262
DEPOSIT = 10**15
TOP_UP = 3 * 10**14
PAID = 10**14


@dataclass
class Network:
    anvils: dict[str, Anvil]
    hub: MultiChainDaemon
    partner: MultiChainDaemon


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    root = tmp_path_factory.mktemp("batch-chains")
    anvils = {"alpha": Anvil(chain_id=ALPHA_ID), "beta": Anvil(chain_id=BETA_ID)}
    zygote = Zygote()
    try:
        chains = [ChainEntry(name, anvil, deploy_with_batch(anvil)) for name, anvil in anvils.items()]
        hub = make_multichain_daemon(root, "hub", chains, zygote)
        partner = make_multichain_daemon(root, "partner", chains, zygote)
        hub.start(timeout=60)
        partner.start(timeout=60)
        yield Network(anvils, hub, partner)
    finally:
        zygote.stop()
        for anvil in anvils.values():
            anvil.stop()


def post(daemon: MultiChainDaemon, path: str, body: dict[str, Any]) -> Any:
    return ApiClient(daemon.datadir, timeout=120.0).call("POST", path, body)


def channels_on(daemon: MultiChainDaemon, chain: str) -> list[dict[str, Any]]:
    return [c for c in daemon.call("GET", "/channels") if c["chain"] == chain]


def on_chain(daemon: MultiChainDaemon, chain: str) -> dict[str, Any]:
    found = channels_on(daemon, chain)
    assert len(found) == 1, found
    return dict(found[0])


def status_on(daemon: MultiChainDaemon, chain: str) -> str | None:
    """The status of the one channel on `chain` (None while the daemon has not seen it yet)."""
    found = channels_on(daemon, chain)
    return str(found[0]["status"]) if len(found) == 1 else None


def sent_count(anvil: Anvil, daemon: MultiChainDaemon) -> int:
    return int(connect_rpc(anvil.url).rpc("eth_getTransactionCount", [daemon.address, "latest"]), 16)


def test_batches_run_on_each_chain(network: Network, capsys: pytest.CaptureFixture[str]) -> None:
    hub, partner, anvils = network.hub, network.partner, network.anvils
    with pytest.raises(ApiError, match="serves several chains; name one of: alpha"):
        post(hub, "/batch/open", {"uris": [partner.uri], "deposit": str(DEPOSIT)})
    assert [sent_count(anvil, hub) for anvil in anvils.values()] == [0, 0]

    for name in ("alpha", "beta"):
        argv = ["--datadir", str(hub.datadir), "open", "--batch", partner.uri, "--deposit", str(DEPOSIT),
                "--challenge-period", "30", "--chain", name]
        assert cli.main(argv) == 0, capsys.readouterr()
        assert sent_count(anvils[name], hub) == 1
        wait_until(lambda n=name: status_on(partner, n) == status_on(hub, n) == "open", timeout=60,
                   what=f"the partner's channel on {name}")
    for name in ("alpha", "beta"):
        paid = post(hub, "/payments", {"node_id": partner.node_id, "amount": str(PAID), "chain": name})
        assert paid["status"] == "accepted"

    topped = post(hub, "/batch/deposit", {"amount": str(TOP_UP), "chain": "beta"})
    assert topped["chain"] == "beta" and topped["operation"]["status"] == "mined"
    assert on_chain(hub, "beta")["our_deposit"] == str(DEPOSIT + TOP_UP)
    assert on_chain(hub, "alpha")["our_deposit"] == str(DEPOSIT)

    batches = post(hub, "/batch/withdraw", {"scheme": "ecdsa"})["batches"]
    assert sorted(b["chain"] for b in batches) == ["alpha", "beta"]
    assert all(b["operation"]["status"] == "mined" and len(b["included"]) == 1 for b in batches)
    expected = {"alpha": DEPOSIT - PAID, "beta": DEPOSIT + TOP_UP - PAID}
    for name, amount in expected.items():
        assert next(b for b in batches if b["chain"] == name)["amount"] == str(amount)
        wait_until(lambda n=name, a=amount: on_chain(hub, n)["our_withdrawn"] == str(a),
                   what=f"the withdraw on {name}")
        assert sent_count(anvils[name], hub) == (3 if name == "beta" else 2)  # open, (top-up,) batch

    argv = ["--datadir", str(hub.datadir), "close", "--all", "--cooperative", "--chain", "alpha"]
    assert cli.main(argv) == 0, capsys.readouterr()
    assert "alpha" in capsys.readouterr().out
    wait_until(lambda: status_on(partner, "alpha") == "settled", timeout=60,
               what="the alpha channel settled by the batch close")
    assert on_chain(hub, "beta")["status"] == "open"


def test_a_batch_on_a_chain_the_node_does_not_serve_is_refused(network: Network) -> None:
    with pytest.raises(ApiError, match="no chain 'gamma'"):
        post(network.hub, "/batch/close", {"chain": "gamma"})
    with pytest.raises(ApiError, match="no chain 'gamma'"):
        post(network.hub, "/batch/deposit", {"amount": "1", "chain": "gamma"})
