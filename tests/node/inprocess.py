"""Helpers of the tests that run `Node`s inside the test process against a real anvil."""

from __future__ import annotations

from collections.abc import Callable

import trio

from channeld.config import ChainConfig, Config, HostPort, NodeConfig, RoutingConfig
from channeld.limits import RiskLimits
from tests.tools import free_port


def anvil_node_config(limits: RiskLimits) -> Config:
    """Loopback ports of its own, a fast chain poll and no confirmations (anvil mines on demand)."""
    return Config(node=NodeConfig(listen=HostPort("127.0.0.1", free_port()),
                                  api=HostPort("127.0.0.1", free_port()), log_level="warning"),
                  chain=ChainConfig(poll_interval=0.05, confirmations=0), limits=limits,
                  routing=RoutingConfig(gossip_interval=0.2))


async def until(predicate: Callable[[], object], what: str, timeout: float) -> None:
    with trio.move_on_after(timeout):
        while not predicate():
            await trio.sleep(0.01)
        return
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
