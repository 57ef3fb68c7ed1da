"""`channeld demo` as a subprocess: four nodes on two embedded chains, and balances that add up on each."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from channeld.demo import Report, _config
from channeld.demo_chains import DemoChain, launch
from channeld.errors import ConfigError
from channeld.keys import NodeKey
from channeld.node import Node
from channeld.protocol import FeePolicy
from channeld.protocol._crosschain import ConversionTerms

KEY_STEPS = ("four nodes and a watchtower started", "opens channels to Bob", "payments/s",
             "pays it through Carol", "opens a channel to Dave's shop on the side chain",
             "on the side chain; Alice pays it from the main chain", "withdraws", "cooperatively",
             "Dave's shop closes its channels with Carol cooperatively, on both chains", "Bob's node stops",
             "closes unilaterally while Bob is away",
             "submits Alice's latest proof", "delegates to a watchtower",
             "the tower submits her latest proof", "settle both closed channels")


def run_demo(*extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "channeld.cli", "demo", *extra], capture_output=True,
                          text=True, timeout=90)
    return done, time.monotonic() - started


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    done, elapsed = run_demo("--json")
    assert done.returncode == 0, done.stderr[-3000:]
    assert elapsed < 60
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def rows_on(report: dict[str, Any], chain: str) -> dict[str, dict[str, Any]]:
    return {row["account"].split()[0]: row for row in report["balances"] if row["chain"] == chain}


def test_every_account_adds_up_to_the_wei_on_each_chain(report: dict[str, Any]) -> None:
    assert [row["chain"] for row in report["balances"]] == ["main"] * 5 + ["side"] * 2
    accounts = {"main": ["alice", "bob", "carol", "dave", "tower"], "side": ["carol", "dave"]}
    for chain, total in (("main", 9 * 10**18), ("side", 10**18)):
        rows = rows_on(report, chain)
        assert list(rows) == accounts[chain]
        for row in rows.values():
            start, end, gas = int(row["start"]), int(row["end"]), int(row["gas"])
            assert gas > 0  # every node, and the tower, sent transactions of its own on each of its chains
            assert start - int(row["deposited"]) + int(row["withdrawn"]) + int(row["paid_out"]) - gas == end
        deposited = sum(int(row["deposited"]) for row in rows.values())
        returned = sum(int(row["withdrawn"]) + int(row["paid_out"]) for row in rows.values())
        assert deposited == returned == total


def test_the_shop_paid_from_the_other_chain_gets_its_price_alice_pays_the_rate_carol_earns_her_fee(
        report: dict[str, Any]) -> None:
    figures = report["figures"]
    price = 3 * 10**16
    carol = ConversionTerms(3, 2, FeePolicy(10**12, 1000))  # 1.5 SIDE per ETH, as her config says
    spent = -(-(price + 10**12 + price // 1000) * 2 // 3)  # the rate's least payment, rounded up
    assert int(figures["crosschain_price_wei"]) == price
    assert int(figures["crosschain_spent_wei"]) == spent == carol.amount_in(price)
    assert spent <= int(figures["crosschain_max_spend_wei"])
    assert int(figures["crosschain_refused_cap_wei"]) == spent - 1  # refused before anything was locked
    earned = int(figures["crosschain_carol_earned_wei"])
    assert earned == spent * 3 // 2 - price >= 10**12 + price // 1000
    dave, carol_side = rows_on(report, "side")["dave"], rows_on(report, "side")["carol"]
    assert (int(dave["deposited"]), int(dave["paid_out"])) == (0, price)  # closed cooperatively
    assert int(carol_side["paid_out"]) == int(carol_side["deposited"]) - price
    assert figures["crosschain_lock_gap_seconds"] >= figures["crosschain_margin_seconds"] > 0
    assert any("received on the side chain exactly its price" in check for check in report["checks"])


def test_the_shop_two_hops_away_is_paid_its_price_and_carol_her_fee(report: dict[str, Any]) -> None:
    dave = rows_on(report, "main")["dave"]
    assert int(dave["deposited"]) == 0 and int(dave["paid_out"]) == 10**16
    assert int(report["figures"]["routed_fee_wei"]) == 10**12  # Carol's announced base fee
    assert any("Dave's shop received on chain exactly its price" in check for check in report["checks"])


def test_bob_is_paid_exactly_what_he_received_despite_both_stale_closes(report: dict[str, Any]) -> None:
    bob = rows_on(report, "main")["bob"]
    received = int(bob["withdrawn"]) + int(bob["paid_out"])
    assert received == int(report["figures"]["paid_to_bob_wei"]) > 0
    assert int(bob["deposited"]) == 0
    assert any("Bob received on chain exactly what he was paid" in check for check in report["checks"])


def test_pushes_to_the_tower_coalesce(report: dict[str, Any]) -> None:
    assert 1 <= report["figures"]["tower_pushes"] < 100  # for hundreds of payments


def test_the_key_steps_are_reported_in_order_with_a_reason(report: dict[str, Any]) -> None:
    whats = [step["what"] for step in report["steps"]]
    positions = [next(i for i, what in enumerate(whats) if needed in what) for needed in KEY_STEPS]
    assert positions == sorted(positions)
    assert all(step["why"] for step in report["steps"])
    assert report["figures"]["payments_per_second"] > 0


def test_text_output_prints_numbered_steps_the_table_and_the_checks(
        report: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    text = Report(json_output=False, balances=report["balances"])
    for step in report["steps"][:2]:
        text.step(step["what"], step["why"])
    text.finish(report["checks"])
    out = capsys.readouterr().out
    assert out.startswith(" 1. ChannelHub deployed") and "PragueVM" in out and "\n 2. four nodes" in out
    assert "on-chain balances (main chain in ETH, side chain in SIDE)" in out and "tower" in out
    assert "each contract now holds 0" in out and "to the wei" in out


@pytest.fixture(scope="module")
def main_chain() -> DemoChain:
    return launch("main", None, {}, 0)


def test_a_node_takes_one_handed_in_chain_per_configured_chain(main_chain: DemoChain, tmp_path: Path) -> None:
    both = _config("carol")  # the main chain and the side chain
    with pytest.raises(ConfigError, match="1 chain setups handed in for 2 configured chains"):
        Node(tmp_path, both, NodeKey.generate(), main_chain.setup, api=False)
    assert not (tmp_path / "db").exists()  # refused before anything was opened


async def test_a_handed_in_chain_must_have_the_configured_chain_id(main_chain: DemoChain,
                                                                  tmp_path: Path) -> None:
    twice = [main_chain.setup, main_chain.setup]  # the main chain again where the side chain is configured
    node = Node(tmp_path, _config("carol"), NodeKey.generate(), twice, api=False)
    with pytest.raises(ConfigError, match=f"is chain {main_chain.chain_id}, not chain_id 4242"):
        await node.run()
    assert not node.ready.is_set()
