"""Payments across chains through real daemons: a pays on alpha, c receives on beta (and back), b converts.

b's config converts alpha's coin into beta's at 2/1 (fee 7 + 1000 ppm) and beta's into alpha's at 1/2
(fee 5). Each payer states the most it spends in its own asset; the recipient must receive exactly its
request's amount in its own asset, and b's channels on both chains show it earned its fee at its rate.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from channeld.api._client import ApiError
from channeld.protocol import FeePolicy
from channeld.protocol._crosschain import ConversionTerms
from tests.multichain.crosschain import (
    World,
    balance,
    deposit_from,
    open_between,
    pay_when_routable,
    request,
    three_nodes,
    view,
    write_config,
)
from tests.multichain.helpers import ChainEntry, MultiChainDaemon
from tests.node.helpers import wait_until
from tests.node.multihop import advance_chain, mine_until, pause, resume
from tests.tools import REPO

ALPHA_TO_BETA = ConversionTerms(2, 1, FeePolicy(7, 1000))
BETA_TO_ALPHA = ConversionTerms(1, 2, FeePolicy(5, 0))
CONVERTER = """
[[conversions]]
from = "alpha:native"
to = "beta:native"
rate = "2/1"
fee_base = 7
fee_ppm = 1000

[[conversions]]
from = "beta:native"
to = "alpha:native"
rate = "1/2"
fee_base = 5
"""


@dataclass
class Across:
    world: World
    ab: str  # a - b on alpha
    bc: str  # b - c on beta


@pytest.fixture(scope="module")
def across(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Across]:
    with three_nodes(tmp_path_factory.mktemp("crosschain"), converter=CONVERTER) as world:
        ab, bc = open_between(world.a, world.b, "alpha"), open_between(world.b, world.c, "beta")
        deposit_from(world.b, ab)  # b can pay a back on alpha
        deposit_from(world.c, bc)  # c can pay b on beta
        yield Across(world, ab, bc)


class Paying:
    """A request paid from alpha in a thread: the call answers "pending" (or times out) while a route is
    stuck, and the test meanwhile acts on the daemons."""

    def __init__(self, payer: MultiChainDaemon, text: str, max_spend: int) -> None:
        self.answers: list[object] = []
        body = {"request": text, "chain": "alpha", "max_spend": str(max_spend)}

        def pay() -> None:
            try:
                self.answers.append(payer.call("POST", "/payments", body))
            except Exception as exc:  # the answer is not what is tested: the balances afterwards are
                self.answers.append(exc)

        self.thread = threading.Thread(target=pay, daemon=True)
        self.thread.start()

    def accepted(self) -> bool:
        self.thread.join(timeout=60)
        answer = self.answers[0] if self.answers else None
        return isinstance(answer, dict) and answer["status"] == "accepted"


def mine_back(x: Across, chain: ChainEntry, before: dict[str, int]) -> None:
    """Mine blocks on `chain` until every balance is back to `before` (each lock expired back)."""
    try:
        mine_until(chain.anvil, lambda: balances(x) == before, what=f"the locks on {chain.name} expired",
                   timeout=120)  # a busy machine: redials and refused expiries back off
    except AssertionError as exc:
        w = x.world
        sides = (("a", w.a, x.ab), ("b_alpha", w.b, x.ab), ("b_beta", w.b, x.bc), ("c", w.c, x.bc))
        views = {name: view(d, cid) for name, d, cid in sides}
        raise AssertionError(f"{exc}: balances {balances(x)}, before {before}, channels {views}") from None


def balances(x: Across) -> dict[str, int]:
    w = x.world
    return {"a": balance(w.a, x.ab), "b_alpha": balance(w.b, x.ab), "b_beta": balance(w.b, x.bc),
            "c": balance(w.c, x.bc)}


def settled(x: Across, before: dict[str, int], change: dict[str, int]) -> dict[str, int]:
    """Wait until every channel shows `change` from `before` (locks unlocked on both chains)."""
    def arrived() -> dict[str, int] | None:
        now = balances(x)
        return now if all(now[k] - before[k] == change.get(k, 0) for k in before) else None

    found: dict[str, int] = wait_until(arrived, timeout=40, what=f"balances to move by {change}")
    return found


def test_alpha_to_beta_arrives_exactly_and_the_converter_earns_its_fee(across: Across) -> None:
    a, c = across.world.a, across.world.c
    amount = 100_000
    spend = ALPHA_TO_BETA.amount_in(amount)  # 50,054: (100,000 + 107 fee) / 2, rounded up
    before = balances(across)
    result = pay_when_routable(a, {"request": request(c, amount, "beta"), "chain": "alpha",
                                   "max_spend": str(spend + 1000)})
    assert result["status"] == "accepted", result
    assert (int(result["spent"]), result["preimage"] is not None) == (spend, True)
    settled(across, before, {"a": -spend, "b_alpha": spend, "b_beta": -amount, "c": amount})
    # what b took in on alpha is worth, at its own rate, what it paid out on beta plus at least its fee
    assert ALPHA_TO_BETA.value_of(spend) - amount >= ALPHA_TO_BETA.fees.fee(amount)


def test_beta_to_alpha_arrives_exactly(across: Across) -> None:
    a, c = across.world.a, across.world.c
    amount = 40_000
    spend = BETA_TO_ALPHA.amount_in(amount)  # 80,010: (40,000 + 5) x 2
    before = balances(across)
    result = pay_when_routable(c, {"request": request(a, amount, "alpha"), "chain": "beta",
                                   "max_spend": str(spend)})
    assert result["status"] == "accepted" and int(result["spent"]) == spend, result
    settled(across, before, {"c": -spend, "b_beta": spend, "b_alpha": -amount, "a": amount})


def test_a_rate_beyond_the_cap_fails_before_anything_is_locked(across: Across) -> None:
    a, c = across.world.a, across.world.c
    amount = 100_000
    text = request(c, amount, "beta")
    spend = ALPHA_TO_BETA.amount_in(amount)
    # a small payment first: the routes are known (a cap is checked against routes, not their absence)
    pay_when_routable(a, {"request": request(c, 10, "beta"), "chain": "alpha", "max_spend": "100"})
    before, nonce = balances(across), view(a, across.ab)["our_nonce"]
    with pytest.raises(ApiError, match=rf"SpendCapExceeded: receiving {amount} costs at least {spend}"):
        a.call("POST", "/payments", {"request": text, "chain": "alpha", "max_spend": str(spend - 1)})
    assert balances(across) == before and view(a, across.ab)["our_nonce"] == nonce  # nothing locked
    with pytest.raises(ApiError, match="needs max_spend"):
        a.call("POST", "/payments", {"request": text, "chain": "alpha"})
    cli = subprocess.run([sys.executable, "-m", "channeld.cli", "--datadir", str(a.datadir), "pay", text,
                          "--chain", "alpha", "--max-spend", str(spend - 1)],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert cli.returncode != 0 and len(cli.stderr.strip().splitlines()) == 1, cli.stderr
    assert "SpendCapExceeded" in cli.stderr
    assert balances(across) == before and view(a, across.ab)["our_nonce"] == nonce
    # nothing was stored either: the same request is still payable, once the cap covers the rate
    result = a.call("POST", "/payments", {"request": text, "chain": "alpha", "max_spend": str(spend)})
    assert result["status"] == "accepted", result


def test_a_converter_killed_mid_payment_leaves_everyone_whole_once_the_locks_expire(across: Across) -> None:
    """b forwards the lock to c (frozen, so the secret never comes back) and is SIGKILLed; once both
    chains pass every expiry and b is back, each lock has expired back to its sender on its own chain."""
    w = across.world
    amount = 30_000
    text = request(w.c, amount, "beta")
    before = balances(across)
    pause(w.c)
    paying = Paying(w.a, text, ALPHA_TO_BETA.amount_in(amount))
    try:
        wait_until(lambda: balance(w.b, across.bc) == before["b_beta"] - amount, timeout=40,
                   what="b's lock toward c")
        w.b.kill(signal.SIGKILL)
        for chain in (w.alpha, w.beta):
            advance_chain(chain.anvil, 4 * 3600)  # past every lock of the route, on both chains
    finally:
        resume(w.c)
    w.b.start(timeout=60)
    wait_until(lambda: len(w.b.call("GET", "/info")["peers"]) == 2, timeout=60, what="b reconnected")
    for chain in (w.alpha, w.beta):
        mine_back(across, chain, before)
    assert not paying.accepted()
    assert [view(d, cid)["in_flight"] for d, cid in ((w.a, across.ab), (w.c, across.bc))] == [0, 0]


def test_a_converter_that_withdrew_its_offer_forwards_nothing_and_the_lock_expires_back(
        across: Across) -> None:
    """b restarts without `[[conversions]]`; a still holds its signed rate (live for hours) and routes
    through it: b finds beta's marker after itself, does not convert into it, forwards nothing."""
    w = across.world
    write_config(w.b, [w.alpha, w.beta])
    w.b.kill(signal.SIGTERM)
    w.b.start(timeout=60)
    wait_until(lambda: len(w.b.call("GET", "/info")["peers"]) == 2, timeout=30, what="b reconnected")
    amount = 20_000
    before = balances(across)
    spend = ALPHA_TO_BETA.amount_in(amount)
    paying = Paying(w.a, request(w.c, amount, "beta"), spend)
    wait_until(lambda: "not converting payment" in w.b.log(), timeout=40, what="b's refusal")
    assert balance(w.a, across.ab) == before["a"] - spend  # locked toward b, and nothing forwarded
    assert balances(across)["b_beta"] == before["b_beta"]
    advance_chain(w.alpha.anvil, 4 * 3600)
    mine_back(across, w.alpha, before)
    assert not paying.accepted()
