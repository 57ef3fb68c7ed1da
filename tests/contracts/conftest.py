"""Contract fixtures: one anvil for this folder, one deployed hub and token, a snapshot per test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_account.signers.local import LocalAccount

from tests.contracts.hub import Chain, Hub, Token, account
from tests.tools import Anvil

PERIOD = 100  # challenge period of the channels the tests open (seconds)
FUNDS = 10**24


@dataclass
class World:
    chain: Chain
    hub: Hub
    token: Token
    alice: LocalAccount
    bob: LocalAccount
    carol: LocalAccount  # a third party: a watchtower, or a thief

    def first_second(self) -> tuple[LocalAccount, LocalAccount]:
        """(participant1, participant2) of an alice-bob channel."""
        if int(self.alice.address, 16) < int(self.bob.address, 16):
            return self.alice, self.bob
        return self.bob, self.alice


@pytest.fixture(scope="session")
def contracts_anvil() -> Iterator[Anvil]:
    node = Anvil()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def base_world(contracts_anvil: Anvil) -> World:
    chain = Chain(contracts_anvil.url)
    alice, bob, carol = account("alice"), account("bob"), account("carol")
    deployer = account("deployer").address
    for address in (alice.address, bob.address, carol.address, deployer):
        chain.fund(address, FUNDS)
    hub = Hub.deploy(chain, deployer, min_period=10, max_period=10**6)
    hub.attach_batch(deployer)
    token = Token.plain(chain, deployer)
    for party in (alice, bob, carol):
        token.mint(party.address, FUNDS)
        token.approve(party.address, hub.address, 2**256 - 1)
    return World(chain, hub, token, alice, bob, carol)


@pytest.fixture
def world(base_world: World) -> Iterator[World]:
    """The deployed world, reverted to its pristine state after the test (and its channel views)."""
    snapshot = base_world.chain.snapshot()
    hub = base_world.hub
    channels, events, secrets = dict(hub.channels), list(hub.events), list(hub.secrets)
    yield base_world
    base_world.chain.revert(snapshot)
    hub.channels, hub.events, hub.secrets = channels, events, secrets
