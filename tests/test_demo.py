"""`channeld demo` as a subprocess: exits 0, fast, and the balances it prints add up."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from decimal import Decimal

AMOUNT = r"([0-9.]+) ETH"


def run_demo(*extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "channeld.cli", "demo", *extra], capture_output=True,
                          text=True, timeout=60)
    return done, time.monotonic() - started


def amounts(line: str) -> list[Decimal]:
    return [Decimal(value) for value in re.findall(AMOUNT, line)]


def test_demo_runs_the_lifecycle_and_balances_add_up() -> None:
    done, elapsed = run_demo()
    assert done.returncode == 0, done.stderr
    assert elapsed < 30
    lines = done.stdout.splitlines()
    assert "PragueVM" in lines[0]
    for needed in ("opens channel", "sets his total deposit", "withdraws", "closes with", "submits Alice's",
                   "ChallengePeriodNotOver", "settles the channel", "cooperative close"):
        assert any(needed in line for line in lines), needed
    unilateral = next(line for line in lines if "withdrawn" in line and "deposited" in line)
    deposited, withdrawn, alice, bob = amounts(unilateral)
    assert (deposited, withdrawn, alice, bob) == (8, 1, Decimal("3.7"), Decimal("3.3"))
    cooperative = next(line for line in lines if "deposited" in line and "withdrawn" not in line)
    deposited, alice, bob = amounts(cooperative)
    assert deposited == alice + bob == 3
    assert lines[-1] == "the contract now holds 0 ETH"


def test_demo_json_reports_gas_of_every_transaction() -> None:
    done, _ = run_demo("--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    on_chain = [step for step in report["steps"] if step["gas"]]
    assert len(on_chain) == 10
    assert all(21_000 < step["gas"] < 3_000_000 for step in on_chain)
    assert report["balances"][-1] == "the contract now holds 0 ETH"
