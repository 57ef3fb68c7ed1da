"""Helpers for the contract tests: expected reverts and a ready alice-bob channel."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count

import pytest

from channeld.chain.contract import ETHER, ContractRevert
from tests.contracts.conftest import PERIOD, World

_salts = count(1)


@contextmanager
def reverts(name: str) -> Iterator[None]:
    """The block must revert with the contract's custom error `name`."""
    with pytest.raises(ContractRevert) as caught:
        yield
    assert caught.value.name == name, f"reverted with {caught.value}, expected {name}"


def open_channel(world: World, deposit_alice: int = 0, deposit_bob: int = 0, *, ether: bool = False) -> bytes:
    """An alice-bob channel opened by alice (with her deposit), then bob's deposit; slot checked."""
    asset = ETHER if ether else world.token.address
    alice, bob = world.alice.address, world.bob.address
    cid, _ = world.hub.open(alice, bob, asset, PERIOD, next(_salts), deposit_alice)
    if deposit_bob:
        world.hub.deposit(bob, cid, bob, deposit_bob)
    assert_synced(world, cid)
    return cid


def assert_synced(world: World, cid: bytes) -> None:
    """The state rebuilt from events commits to exactly what the contract stores."""
    assert world.hub.slot(cid) == world.hub.view(cid).commitment()
