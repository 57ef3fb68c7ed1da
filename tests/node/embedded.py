"""Nodes in-process on one embedded chain (py-evm): fast integration tests with real stores and sockets."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import trio
from eth_account import Account

from channeld.chain import AsyncSender, TransactionSender, TxRequest, deploy, load_artifact, start_embedded
from channeld.chain import contract as hub
from channeld.chain.follower import EventFollower
from channeld.config import ChainConfig, Config, HostPort, NodeConfig
from channeld.keys import NodeKey
from channeld.limits import RiskLimits
from channeld.node import ChainSetup, Node
from channeld.store import Namespace
from channeld.watchtower import TowerDB, TowerSettings, Watchtower

ETH = 10**18


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def node_config() -> Config:
    limits = RiskLimits(max_payment=ETH, max_per_peer_per_hour=100 * ETH, max_total_per_hour=100 * ETH)
    return Config(node=NodeConfig(listen=HostPort("127.0.0.1", _port()), api=HostPort("127.0.0.1", _port()),
                                  log_level="warning"), chain=ChainConfig(poll_interval=0.05), limits=limits)


class World:
    """One embedded chain with the hub deployed, and funded keys for `names` (plus a tower's)."""

    def __init__(self, root: Path, names: tuple[str, ...] = ("alice", "bob")) -> None:
        self.root = root
        self.backend, funded = start_embedded(accounts=1)
        self.artifact = load_artifact("ChannelHub")
        self.payer = TransactionSender(self.backend, Account.from_key(funded[0]), self.artifact.abi)
        deployment = deploy(self.payer, self.artifact, [60, 10**7])
        self.setup = ChainSetup(self.backend, deployment.address, deployment.block, trio.CapacityLimiter(1))
        self.keys = {name: NodeKey.generate() for name in (*names, "tower")}
        self.configs = {name: node_config() for name in names}
        for key in self.keys.values():
            self.payer.transact(TxRequest(to=key.address, value=10 * ETH, gas=21000))

    @asynccontextmanager
    async def node(self, name: str) -> AsyncIterator[Node]:
        (self.root / name).mkdir(exist_ok=True)
        node = Node(self.root / name, self.configs[name], self.keys[name], self.setup, api=False)
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            yield node
            node.stop()

    @asynccontextmanager
    async def tower(self) -> AsyncIterator[tuple[Watchtower, str]]:
        """A standalone tower in-process: its own key, LevelDB and chain account; yields it and its URI."""
        key, contract = self.keys["tower"], self.setup.contract
        db = TowerDB(self.root / "tower-db", Namespace(self.backend.chain_id(), bytes.fromhex(contract[2:])))
        try:
            sender = AsyncSender(TransactionSender(self.backend, Account.from_key(key.private_key.secret),
                                                   self.artifact.abi))
            tower = Watchtower(db, key.private_key, TowerSettings(poll_interval=0.05), self.backend, sender,
                               self.setup.deploy_block)
            follower = EventFollower(self.backend, contract, db, self.setup.deploy_block)
            async with trio.open_nursery() as nursery:
                port = await nursery.start(tower.run, follower, "127.0.0.1", 0)
                yield tower, f"{key.node_id}@127.0.0.1:{port}"
                nursery.cancel_scope.cancel()
        finally:
            db.close()

    def opens(self) -> list[hub.ChannelOpened]:
        found = []
        for log in self.backend.get_logs(self.setup.contract, 0, self.backend.head()):
            event = hub.decode_event({"topics": log.topics, "data": log.data})
            if isinstance(event, hub.ChannelOpened):
                found.append(event)
        return found


async def until(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.02)
