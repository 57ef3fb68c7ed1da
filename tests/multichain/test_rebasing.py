"""A token whose balances move without transfers is refused at open and deposit, with the reason.

One real anvil and two daemons. A RebasingToken channel opens while its multiplier is 1; after a rebase
the hub holds more than the token's Transfer events account for, the node's regular watch lists the drift
for the chain, and the next open, deposit and batch open in the token are refused naming the token, the
drift and "rebasing", with nothing stored or queued. A plain token with channels, deposits and tokens
sent to the hub directly by `transfer` is never refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from eth_account import Account

from channeld.api._client import ApiError
from channeld.chain import connect_rpc
from channeld.cli import main
from channeld.node._records import addr_bytes
from channeld.node._tokens import HubHoldings
from tests.multichain.helpers import (
    ChainEntry,
    MultiChainDaemon,
    deploy_token,
    funded_sender,
    make_multichain_daemon,
    metrics,
    send_call,
)
from tests.node.helpers import Zygote, deploy_hub, wait_until
from tests.tools import Anvil

DEPOSIT = 10**18
MINTED = 10**21


@dataclass
class Setup:
    anvil: Anvil
    hub: str
    a: MultiChainDaemon
    b: MultiChainDaemon


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("rebasing")
    anvil = Anvil(chain_id=4545)
    zygote = Zygote()
    try:
        alpha = ChainEntry("alpha", anvil, deploy_hub(anvil))
        a = make_multichain_daemon(root, "a", [alpha], zygote)
        b = make_multichain_daemon(root, "b", [alpha], zygote)
        a.start(timeout=60)
        b.start(timeout=60)
        a.call("POST", "/peers", {"uri": b.uri})
        yield Setup(anvil, alpha.contract, a, b)
    finally:
        zygote.stop()
        anvil.stop()


def in_token(daemon: MultiChainDaemon, token: str) -> list[dict[str, Any]]:
    return [c for c in daemon.call("GET", "/channels") if c["token"].lower() == token.lower()]


def open_in(setup: Setup, token: str, count: int) -> dict[str, Any]:
    """Open a channel from a to b in `token` and wait until a holds `count` channels in it."""
    body = {"uri": setup.b.uri, "deposit": str(DEPOSIT), "challenge_period": 30, "token": token}
    setup.a.call("POST", "/channels", body)
    return wait_until(lambda: len(in_token(setup.a, token)) == count and in_token(setup.a, token),
                      timeout=60, what=f"channel {count} in {token}")[-1]


def alpha(daemon: MultiChainDaemon) -> dict[str, Any]:
    return dict(next(c for c in daemon.call("GET", "/chains") if c["name"] == "alpha"))


def post_raw(daemon: MultiChainDaemon, path: str, body: dict[str, Any]) -> httpx.Response:
    client = daemon.client()
    return httpx.post(f"{client.base}{path}", json=body, timeout=30.0,
                      headers={"Authorization": f"Bearer {client.token}"})


def journaled(daemon: MultiChainDaemon, kind: str) -> list[dict[str, Any]]:
    """Every event of `kind` in the daemon's journal so far (read from its event stream)."""
    client = daemon.client()
    last = daemon.call("GET", "/health")["last_event"]
    found: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {client.token}"}
    with httpx.stream("GET", f"{client.base}/events?after=0", headers=headers, timeout=30.0) as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                found += [event] if event["kind"] == kind else []
                if event["seq"] >= last:
                    break
    return found


def test_a_rebased_token_is_refused_with_the_drift_and_nothing_stored(
        setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    a = setup.a
    owner = funded_sender(setup.anvil, "RebasingToken")
    token = deploy_token(setup.anvil, "RebasingToken", [], a.address, MINTED, sender=owner)
    channel = open_in(setup, token, 1)
    assert alpha(a)["drifting_tokens"] == []

    send_call(owner, token, "rebase(uint256,uint256)", ["uint256", "uint256"], [11, 10])
    drifting = wait_until(lambda: alpha(a)["drifting_tokens"], timeout=60, what="the watch to see the drift")
    assert drifting[0]["token"].lower() == token.lower()
    assert drifting[0]["drift"] == str(DEPOSIT // 10)
    assert drifting[0]["balance"] == str(DEPOSIT + DEPOSIT // 10)
    gauge = f'channeld_chain_drifting_tokens{{chain="alpha",chain_id="{setup.anvil.chain_id}"}} '
    wait_until(lambda: gauge + "1.0" in metrics(a), timeout=30, what="the drifting-token gauge")

    channels_before = a.call("GET", "/channels")
    body = {"uri": setup.b.uri, "deposit": str(DEPOSIT), "challenge_period": 30, "token": token}
    refused = post_raw(a, "/channels", body)
    assert refused.status_code == 400
    reason = refused.json()
    assert reason["kind"] == "TokenRebasing"
    assert token.lower() in reason["error"].lower() and "rebasing" in reason["error"]
    assert f"drift +{DEPOSIT // 10}" in reason["error"]

    with pytest.raises(ApiError, match=r"rebasing.*drift \+"):
        a.call("POST", f"/channels/{channel['channel_id']}/deposit", {"amount": "5"})
    with pytest.raises(ApiError, match=r"rebasing.*drift \+"):
        a.call("POST", "/batch/deposit", {"amount": "5", "token": token})
    with pytest.raises(ApiError, match=r"rebasing.*drift \+"):
        a.call("POST", "/batch/open", {"uris": [setup.b.uri], "deposit": str(DEPOSIT), "token": token})
    datadir = ["--datadir", str(a.datadir)]
    assert main([*datadir, "open", setup.b.uri, "--deposit", str(DEPOSIT), "--token", token]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "rebasing" in err[0] and f"drift +{DEPOSIT // 10}" in err[0], err
    assert main([*datadir, "info"]) == 0
    assert f"token {drifting[0]['token']} rebasing (drift +{DEPOSIT // 10})" in capsys.readouterr().out
    assert a.call("GET", "/channels") == channels_before
    assert alpha(a)["pending_transactions"] == 0
    drifts = journaled(a, "token_drift")
    assert drifts and {e["token"].lower() for e in drifts} == {token.lower()}
    assert {e["chain"] for e in drifts} == {"alpha"} and drifts[-1]["drift"] == str(DEPOSIT // 10)


def test_a_plain_token_with_channels_and_direct_transfers_is_not_refused(setup: Setup) -> None:
    a = setup.a
    token = deploy_token(setup.anvil, "TestToken", ["Plain Token", "PLN"], a.address, MINTED)
    first = open_in(setup, token, 1)
    stranger = funded_sender(setup.anvil)
    send_call(stranger, token, "mint(address,uint256)", ["address", "uint256"], [stranger.address, 7])
    send_call(stranger, token, "transfer(address,uint256)", ["address", "uint256"], [setup.hub, 7])

    open_in(setup, token, 2)
    status = a.call("POST", f"/channels/{first['channel_id']}/deposit", {"amount": "5"})
    wait_until(lambda: a.call("GET", f"/operations/{status['operation_id']}")["status"] == "mined",
               timeout=60, what="the deposit to be mined")
    assert all(c["token"].lower() != token.lower() for c in alpha(a)["drifting_tokens"])
    assert all(e["token"].lower() != token.lower() for e in journaled(a, "token_drift"))


def test_a_reorg_that_drops_a_counted_transfer_is_rescanned_not_refused(fresh_anvil: Anvil) -> None:
    hub = Account.create().address
    backend = connect_rpc(fresh_anvil.url)
    stranger = funded_sender(fresh_anvil)
    token = deploy_token(fresh_anvil, "TestToken", ["Plain Token", "PLN"], stranger.address, MINTED)
    holdings = HubHoldings(hub, deploy_block=0)
    snapshot = backend.rpc("evm_snapshot")
    send_call(stranger, token, "transfer(address,uint256)", ["address", "uint256"], [hub, 7])
    counted = holdings.measure(backend, addr_bytes(token))
    assert (counted.balance, counted.transferred, counted.drift) == (7, 7, 0)

    backend.rpc("evm_revert", [snapshot])  # the block holding the counted transfer is gone
    backend.mine(3)
    after = holdings.measure(backend, addr_bytes(token))
    assert after.block > counted.block
    assert (after.balance, after.transferred, after.drift) == (0, 0, 0)
    assert holdings.drifting_json() == []
