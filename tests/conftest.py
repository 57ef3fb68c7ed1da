from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.tools import Anvil


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    """One real anvil for the session. Tests that need a pristine chain use `fresh_anvil`."""
    node = Anvil()
    yield node
    node.stop()


@pytest.fixture
def fresh_anvil() -> Iterator[Anvil]:
    node = Anvil()
    yield node
    node.stop()
