"""Multi-hop on a chain other than the primary: three daemons, two anvils, a routed payment on beta.

Each chain has its own graph (gossip verifies a channel against its own chain's logs), its own clock for
the payment machines and its own secret registry; a payment request names its chain and is routed on
that chain's graph only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from channeld.api._client import ApiError
from tests.multichain.crosschain import (
    FEE_BASE,
    World,
    balance,
    open_between,
    pay_when_routable,
    request,
    three_nodes,
)
from tests.node.helpers import wait_until


@dataclass
class Routed:
    world: World
    ab: str  # a -> b on beta
    bc: str  # b -> c on beta


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Routed]:
    with three_nodes(tmp_path_factory.mktemp("multihop-beta")) as world:
        yield Routed(world, open_between(world.a, world.b, "beta"), open_between(world.b, world.c, "beta"))


def test_a_two_hop_payment_on_the_second_chain_arrives_and_pays_the_mediator_its_fee(routed: Routed) -> None:
    a, b, c = routed.world.a, routed.world.b, routed.world.c
    before = {"a": balance(a, routed.ab), "b_in": balance(b, routed.ab), "b_out": balance(b, routed.bc),
              "c": balance(c, routed.bc)}
    amount = 50_000
    result = pay_when_routable(a, {"request": request(c, amount, "beta")})
    assert result["status"] == "accepted" and result["routed"] is True, result
    assert (result["chain"], result["preimage"] is not None) == ("beta", True)
    wait_until(lambda: balance(c, routed.bc) == before["c"] + amount, timeout=30, what="c paid on beta")
    wait_until(lambda: balance(b, routed.ab) == before["b_in"] + amount + FEE_BASE, timeout=30,
               what="b's incoming lock unlocked")
    assert balance(a, routed.ab) == before["a"] - amount - FEE_BASE
    assert balance(b, routed.bc) == before["b_out"] - amount
    assert not [ch for ch in a.call("GET", "/channels") if ch["chain"] == "alpha"]  # the primary is unused


def test_a_request_on_the_primary_chain_finds_no_route_over_the_second(routed: Routed) -> None:
    a, c = routed.world.a, routed.world.c
    wait_until(lambda: a.call("GET", "/info")["peers"], timeout=30, what="a connected")
    with pytest.raises(ApiError, match="NoRoute"):
        a.call("POST", "/payments", {"request": request(c, 1000, "alpha")})
    assert not [p for p in c.call("GET", "/payments") if p["chain"] == "alpha"]
