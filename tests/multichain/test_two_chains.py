"""Two real anvils with different chain ids, two node daemons with a channel on each chain.

Payments go over each chain's channel; one chain's RPC hanging (its anvil stopped with SIGSTOP) stalls
only its channels (the other keeps paying) and they pay again once it answers; a restart restores the
channels of both chains.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from channeld.api._client import ApiError
from tests.multichain.helpers import (
    ChainEntry,
    MultiChainDaemon,
    deploy_token,
    freeze,
    make_multichain_daemon,
    metrics,
    thaw,
)
from tests.node.helpers import Zygote, deploy_hub, wait_until
from tests.tools import Anvil

ALPHA_ID, BETA_ID = 4242, 4343
DEPOSIT = 10**18
SOME_TOKEN = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


@dataclass
class Setup:
    alpha: ChainEntry
    beta: ChainEntry
    a: MultiChainDaemon
    b: MultiChainDaemon
    channels: dict[str, str]  # chain name -> channel id


def channels_on(daemon: MultiChainDaemon, chain: str) -> list[dict[str, Any]]:
    return [c for c in daemon.call("GET", "/channels") if c["chain"] == chain]


def open_on(a: MultiChainDaemon, b: MultiChainDaemon, chain: str) -> str:
    body = {"uri": b.uri, "deposit": str(DEPOSIT), "challenge_period": 30, "chain": chain}
    a.call("POST", "/channels", body)
    wait_until(lambda: channels_on(a, chain) and channels_on(b, chain), timeout=60,
               what=f"channel on {chain}")
    return str(channels_on(a, chain)[0]["channel_id"])


def pay(a: MultiChainDaemon, b: MultiChainDaemon, amount: int, chain: str) -> dict[str, Any]:
    return dict(a.call("POST", "/payments", {"node_id": b.node_id, "amount": str(amount), "chain": chain}))


def chain_status(daemon: MultiChainDaemon, name: str) -> str:
    return str(next(c for c in daemon.call("GET", "/chains") if c["name"] == name)["status"])


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("two-chains")
    anvils = [Anvil(chain_id=ALPHA_ID), Anvil(chain_id=BETA_ID)]
    zygote = Zygote()
    try:
        alpha = ChainEntry("alpha", anvils[0], deploy_hub(anvils[0]))
        beta = ChainEntry("beta", anvils[1], deploy_hub(anvils[1]), extra="tokens = []")
        a = make_multichain_daemon(root, "a", [alpha, beta], zygote)
        b = make_multichain_daemon(root, "b", [alpha, beta], zygote)
        a.start(timeout=60)
        b.start(timeout=60)
        a.call("POST", "/peers", {"uri": b.uri})
        channels = {"alpha": open_on(a, b, "alpha"), "beta": open_on(a, b, "beta")}
        yield Setup(alpha, beta, a, b, channels)
    finally:
        zygote.stop()
        for anvil in anvils:
            anvil.stop()


def test_each_channel_carries_its_chain(setup: Setup) -> None:
    for daemon in (setup.a, setup.b):
        shown = {c["chain"]: c for c in daemon.call("GET", "/channels")}
        assert set(shown) == {"alpha", "beta"}
        assert (shown["alpha"]["chain_id"], shown["beta"]["chain_id"]) == (ALPHA_ID, BETA_ID)
        assert shown["alpha"]["contract"] == setup.alpha.contract
        assert shown["beta"]["contract"] == setup.beta.contract
        assert shown["alpha"]["channel_id"] == setup.channels["alpha"]
        info = daemon.call("GET", "/info")
        assert [(c["name"], c["chain_id"], c["status"]) for c in info["chains"]] == [
            ("alpha", ALPHA_ID, "ok"), ("beta", BETA_ID, "ok")]


def test_open_must_name_a_served_chain_and_an_allowed_token(setup: Setup) -> None:
    with pytest.raises(ApiError, match=r"serves several chains; name one of: alpha \(4242\), beta \(4343\)"):
        setup.a.call("POST", "/channels", {"uri": setup.b.uri, "deposit": "1"})
    with pytest.raises(ApiError, match="no chain 'gamma'"):
        setup.a.call("POST", "/channels", {"uri": setup.b.uri, "deposit": "1", "chain": "gamma"})
    with pytest.raises(ApiError, match=r"not in chain beta's allow-list \(none \(native coin only\)\)"):
        setup.a.call("POST", "/channels", {"uri": setup.b.uri, "deposit": "1", "chain": "beta",
                                           "token": SOME_TOKEN})
    assert len(setup.a.call("GET", "/channels")) == 2  # nothing was opened


def test_payments_on_each_chain_move_only_that_chain_s_channel(setup: Setup) -> None:
    before = {c["chain"]: int(c["partner_balance"]) for c in setup.b.call("GET", "/channels")}
    assert pay(setup.a, setup.b, 1000, "alpha")["status"] == "accepted"
    assert pay(setup.a, setup.b, 7, "beta")["status"] == "accepted"
    assert pay(setup.a, setup.b, 5, str(BETA_ID))["status"] == "accepted"  # a chain named by its id
    after = {c["chain"]: int(c["partner_balance"]) for c in setup.b.call("GET", "/channels")}
    assert (before["alpha"] - after["alpha"], before["beta"] - after["beta"]) == (1000, 12)
    received = [p for p in setup.b.call("GET", "/payments") if p["kind"] == "payment_received"]
    assert {(p["chain"], p["chain_id"], p["amount"]) for p in received} >= {
        ("alpha", ALPHA_ID, "1000"), ("beta", BETA_ID, "7"), ("beta", BETA_ID, "5")}


def test_a_stopped_chain_stalls_only_its_own_channels(setup: Setup) -> None:
    freeze(setup.beta.anvil)
    try:
        # a hanging RPC is noticed once no step has been done for 20 s (a refused connection at once)
        wait_until(lambda: chain_status(setup.a, "beta") == "stalled", timeout=90, what="beta stalled")
        stalled = r"chain beta \(4343\) is unreachable since .* its channels are stalled"
        with pytest.raises(ApiError, match=stalled):
            pay(setup.a, setup.b, 1, "beta")
        for _ in range(3):
            assert pay(setup.a, setup.b, 1, "alpha")["status"] == "accepted"
        assert chain_status(setup.a, "alpha") == "ok"
        assert setup.a.call("GET", "/health")["stalled_chains"] == ["beta"]
        wait_until(lambda: 'channeld_chain_stalled{chain="beta",chain_id="4343"} 1.0' in metrics(setup.a),
                   timeout=10, what="the stalled metric")
        assert 'channeld_chain_stalled{chain="alpha",chain_id="4242"} 0.0' in metrics(setup.a)
    finally:
        thaw(setup.beta.anvil)
    wait_until(lambda: chain_status(setup.a, "beta") == "ok", timeout=60, what="beta back")
    assert pay(setup.a, setup.b, 2, "beta")["status"] == "accepted"


def test_restart_restores_the_channels_of_both_chains(setup: Setup) -> None:
    daemons = (setup.a, setup.b)
    shown = [{c["channel_id"]: c for c in d.call("GET", "/channels")} for d in daemons]
    for daemon in daemons:
        daemon.kill(signal.SIGTERM)
    for daemon in daemons:
        daemon.start(timeout=60)
    for daemon, before in zip(daemons, shown, strict=True):
        assert {c["channel_id"]: c for c in daemon.call("GET", "/channels")} == before
    wait_until(lambda: setup.a.call("GET", "/info")["peers"], timeout=30, what="reconnect")
    assert pay(setup.a, setup.b, 3, "alpha")["status"] == "accepted"
    assert pay(setup.a, setup.b, 4, "beta")["status"] == "accepted"


def test_tokens_show_in_their_units_and_a_fee_token_is_refused_with_the_reason(setup: Setup) -> None:
    a, b, anvil = setup.a, setup.b, setup.alpha.anvil
    plain = deploy_token(anvil, "TestToken", ["Test Token", "TST"], a.address, 10**21)
    fee = deploy_token(anvil, "FeeOnTransferToken", [], a.address, 10**21)
    body = {"uri": b.uri, "deposit": str(15 * 10**17), "challenge_period": 30, "chain": "alpha"}
    a.call("POST", "/channels", {**body, "token": plain})
    channel = wait_until(lambda: [c for c in a.call("GET", "/channels") if c["token"] == plain
                                  and "asset" in c], timeout=60, what="token channel with its asset")[0]
    assert channel["asset"]["symbol"] == "TST" and channel["asset"]["decimals"] == 18
    assert channel["asset"]["our_balance"] == "1.5 TST"
    refused = a.call("POST", "/channels", {**body, "token": fee})
    status = wait_until(lambda: a.call("GET", f"/operations/{refused['operation_id']}")["status"] == "failed"
                        and a.call("GET", f"/operations/{refused['operation_id']}"), timeout=60,
                        what="the fee token's open to fail")
    assert "TokenAmountMismatch" in status["error"]
    assert not [c for c in a.call("GET", "/channels") if c["token"] == fee]


def test_log_names_both_chains(setup: Setup) -> None:
    assert Path(setup.a.datadir / "node.json").exists()
    assert "alpha (4242" in setup.a.log() and "beta (4343" in setup.a.log()
