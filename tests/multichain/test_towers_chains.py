"""A watchtower guards channels on a node's second (non-primary) chain.

Alice and Bob serve two anvils, alpha (primary) and beta, with a channel on each. Bob adds a tower that
watches beta (`watchtower add URI --chain beta`): it gets the proofs of his beta channel only. Bob's
tower counters survive his restart. Then Bob's node goes away for good, Alice closes the beta channel
with a stale proof, and the tower disputes it with Bob's newest; after settlement Bob's beta account
grew by exactly what Alice paid him there.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from channeld.chain import connect_rpc
from channeld.cli import main
from tests.multichain.helpers import ChainEntry, MultiChainDaemon, make_multichain_daemon
from tests.multichain.test_two_chains import open_on, pay
from tests.node.helpers import Zygote, deploy_hub, wait_until
from tests.node.test_towers import cli_json, disputed_nonce, start_tower, tower_of, wait_tower_synced
from tests.tools import Anvil

ALPHA_ID, BETA_ID = 5151, 5252
PAYMENTS = 10
UNIT = 10**14


@dataclass
class World:
    root: Path
    alpha: ChainEntry
    beta: ChainEntry
    alice: MultiChainDaemon
    bob: MultiChainDaemon
    zygote: Zygote


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    anvils = [Anvil(chain_id=ALPHA_ID), Anvil(chain_id=BETA_ID)]
    zygote = Zygote()
    try:
        alpha = ChainEntry("alpha", anvils[0], deploy_hub(anvils[0]))
        beta = ChainEntry("beta", anvils[1], deploy_hub(anvils[1]))
        alice = make_multichain_daemon(tmp_path, "alice", [alpha, beta], zygote)
        bob = make_multichain_daemon(tmp_path, "bob", [alpha, beta], zygote)
        alice.start(timeout=60)
        bob.start(timeout=60)
        alice.call("POST", "/peers", {"uri": bob.uri})
        yield World(tmp_path, alpha, beta, alice, bob, zygote)
    finally:
        zygote.stop()
        for anvil in anvils:
            anvil.stop()


def test_a_tower_disputes_a_stale_close_on_the_second_chain(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    alice, bob, beta = world.alice, world.bob, world.beta
    tower_uri = start_tower(world.root, beta.anvil, beta.contract, world.zygote)
    # a tower serves one chain: a node on two must say which
    capsys.readouterr()
    assert main(["--datadir", str(bob.datadir), "watchtower", "add", tower_uri]) == 1
    refusal = capsys.readouterr().err
    assert "this node serves several chains; name one of: alpha (5151), beta (5252)" in refusal
    added = cli_json(bob, "watchtower", "add", tower_uri, "--chain", "beta", capsys=capsys)
    assert isinstance(added, dict) and (added["chain"], added["chain_id"]) == ("beta", BETA_ID)
    channels = {name: open_on(alice, bob, name) for name in ("alpha", "beta")}
    for n in range(PAYMENTS // 2):
        for name in ("alpha", "beta"):
            assert pay(alice, bob, (n + 1) * UNIT, name)["status"] == "accepted"
    synced = wait_tower_synced(bob, capsys)
    assert synced["channels"] == 1  # the beta channel only: alpha's proofs are not this tower's

    bob.kill(signal.SIGTERM)
    bob.start(timeout=60)
    kept = tower_of(bob, capsys)  # before it reconnects: what the earlier run counted
    assert kept["chain"] == "beta"
    assert kept["accepted"] >= synced["accepted"] and kept["pushes_sent"] >= synced["pushes_sent"]
    assert kept["connects"] >= 1

    for n in range(PAYMENTS // 2, PAYMENTS):
        assert pay(alice, bob, (n + 1) * UNIT, "beta")["status"] == "accepted"
    cid = channels["beta"]
    wait_until(lambda: _partner_nonce(bob, cid) == PAYMENTS, what="Bob holding every beta payment")
    again = wait_tower_synced(bob, capsys)
    assert again["accepted"] > synced["accepted"] and again["connects"] >= 2

    bob.kill()  # gone for good
    backend = connect_rpc(beta.anvil.url)
    before = backend.balance(bob.address)
    alice.call("POST", f"/channels/{cid}/close", {"force": True})
    wait_until(lambda: disputed_nonce(beta.anvil, beta.contract, cid) == PAYMENTS, timeout=60,
               what="the tower's dispute on beta with Alice's newest proof")
    backend.rpc("evm_increaseTime", [31])
    backend.rpc("evm_mine", [])
    wait_until(lambda: _status(alice, cid) == "settled", timeout=60, what="Alice's node settling on beta")
    assert backend.balance(bob.address) - before == sum(range(1, PAYMENTS + 1)) * UNIT
    assert _status(alice, channels["alpha"]) == "open"  # the other chain's channel is untouched


def _channel(daemon: MultiChainDaemon, cid: str) -> dict[str, object]:
    return dict(next(c for c in daemon.call("GET", "/channels") if c["channel_id"] == cid))


def _partner_nonce(daemon: MultiChainDaemon, cid: str) -> object:
    return _channel(daemon, cid)["partner_nonce"]


def _status(daemon: MultiChainDaemon, cid: str) -> object:
    return _channel(daemon, cid)["status"]
