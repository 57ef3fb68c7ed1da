from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.node.helpers import Zygote, deploy_hub
from tests.tools import Anvil


@pytest.fixture(scope="module")
def chain() -> Iterator[tuple[Anvil, str]]:
    """A private anvil per module (tests move its clock) with the channel contract deployed."""
    anvil = Anvil()
    try:
        yield anvil, deploy_hub(anvil)
    finally:
        anvil.stop()


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    launcher = Zygote()
    yield launcher
    launcher.stop()
