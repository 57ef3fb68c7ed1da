from __future__ import annotations

import logging
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


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """`channeld node` run in-process installs its log handler; later tests must not write to it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
