"""End to end on anvil: a hub daemon batch-withdraws its earnings from its channels with several partner
daemons (ECDSA, then BLS), one partner offline and left out, then closes them all cooperatively in one
transaction. Real processes, real sockets, real chain; everything through the hub's control API."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account

from channeld.api._client import ApiClient
from channeld.chain import connect_rpc
from channeld.errors import ChanneldError
from tests.batch.hub import hub_network
from tests.node.helpers import Daemon, open_channel, wait_until
from tests.tools import Anvil

DEPOSIT = 10**6
EARNINGS = [300, 500, 700, 900]  # what each partner pays the hub; the last partner goes offline


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Anvil, Daemon, list[Daemon]]]:
    with hub_network(tmp_path_factory.mktemp("batch"), ("hub", "w0", "w1", "w2", "w3")) as started:
        yield started


def balance(anvil: Anvil, address: str) -> int:
    return connect_rpc(anvil.url).balance(address)


def our(daemon: Daemon, cid: str) -> dict[str, Any]:
    return dict(daemon.call("GET", f"/channels/{cid}"))


def batch_call(hub: Daemon, path: str, body: dict[str, Any]) -> Any:
    """A batch answers once mined; gathering BLS consents on a loaded machine may outlast the usual 30 s."""
    return ApiClient(hub.datadir, timeout=240.0).call("POST", path, body)


def pay(payer: Daemon, hub: Daemon, amount: int) -> None:
    result = payer.call("POST", "/payments", {"node_id": hub.node_id, "amount": str(amount)})
    assert result["status"] == "accepted", result


def test_batch_withdraw_close_end_to_end(network: tuple[Anvil, Daemon, list[Daemon]]) -> None:
    anvil, hub, partners = network
    channels = [open_channel(p, hub, DEPOSIT) for p in partners]
    wait_until(lambda: len(hub.call("GET", "/channels")) == len(partners), what="hub sees every channel")
    for partner, amount in zip(partners, EARNINGS, strict=True):
        pay(partner, hub, amount)
    offline = partners[-1]
    offline.kill(signal.SIGKILL)
    wait_until(lambda: offline.node_id not in hub.call("GET", "/info")["peers"], what="hub sees w3 offline")

    # ECDSA: the offline partner is left out, the receiver gets exactly the others' earnings
    cold = Account.create().address
    started = time.monotonic()
    result = batch_call(hub, "/batch/withdraw", {"to": cold, "scheme": "ecdsa", "timeout": 5})
    print(f"ECDSA batch withdraw, 3 of 4 partners (one offline), mined: {time.monotonic() - started:.1f} s")
    (batch,) = result["batches"]
    assert batch["operation"]["status"] == "mined", repr(batch)
    assert sorted(batch["included"]) == sorted(channels[:3]), repr(batch)
    assert list(batch["left_out"]) == [channels[3]]
    assert balance(anvil, cold) == sum(EARNINGS[:3]) == int(batch["amount"])
    wait_until(lambda: all(our(hub, c)["our_withdrawn"] == str(e)
                           for c, e in zip(channels[:3], EARNINGS, strict=False)), what="withdrawals seen")
    assert our(hub, channels[3])["our_withdrawn"] == "0"

    # the channels stay open and keep working; a second batch, BLS, takes the new earnings
    for partner in partners[:3]:
        pay(partner, hub, 11)
    cold2 = Account.create().address
    started = time.monotonic()
    result = batch_call(hub, "/batch/withdraw", {"to": cold2, "scheme": "bls", "timeout": 120,
                                                  "min_amount": "10"})
    print(f"first BLS batch withdraw (keys and signer list registered on the way), 3 signers, mined: "
          f"{time.monotonic() - started:.1f} s")
    (batch,) = result["batches"]
    assert batch["scheme"] == "bls" and (batch["operation"] or {}).get("status") == "mined", repr(batch)
    assert sorted(batch["included"]) == sorted(channels[:3]), repr(batch)
    assert balance(anvil, cold2) == 33

    # batch cooperative close: each online partner is paid exactly its balance, in one transaction
    online = zip(partners[:3], channels, strict=False)
    expected = {p.address: int(our(p, c)["our_balance"]) for p, c in online}
    wait_until(lambda: all(our(hub, c)["our_balance"] == "0" for c in channels[:3]), what="hub balances 0")
    before = {address: balance(anvil, address) for address in expected}
    started = time.monotonic()
    result = batch_call(hub, "/batch/close", {"scheme": "bls", "timeout": 120})
    assert result["batches"][0]["closed_singly"] == []
    print(f"BLS batch close (keys and signer list registered), 3 signers, mined: "
          f"{time.monotonic() - started:.1f} s")
    (batch,) = result["batches"]
    assert batch["operation"]["status"] == "mined", repr(batch)
    for address, amount in expected.items():
        assert balance(anvil, address) - before[address] == amount
    wait_until(lambda: all(our(hub, c)["status"] == "settled" for c in channels[:3]), what="settled")
    assert our(hub, channels[3])["status"] == "open"


def test_refusals_are_one_line_errors(network: tuple[Anvil, Daemon, list[Daemon]]) -> None:
    _, hub, _ = network
    with pytest.raises(ChanneldError, match="scheme"):
        batch_call(hub, "/batch/withdraw", {"scheme": "schnorr"})
