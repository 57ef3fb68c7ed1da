"""The contracts folder's anvil world (one deployed hub and token, a snapshot per test), reused here."""

from tests.contracts.conftest import base_world, contracts_anvil, world

__all__ = ["base_world", "contracts_anvil", "world"]
