"""Chain rooms: one per chain the node serves, each with its own RPC access, watcher and transaction worker.

All rooms share the node's one `ChannelService` (so every round stays one atomic store batch) and run in
the node's one nursery. A room owns its chain's blocking calls through its own `ChainAccess` limiter, so
an RPC that hangs or fails holds up only that room: its watcher reports the chain stalled (`info`, the
API, the `channeld_chain_stalled` metric) and payments on its channels are refused until it recovers,
while every other chain's channels go on paying.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio
from eth_account import Account

from channeld.chain import (
    ChainBackend,
    TransactionSender,
    TxRequest,
    connect_rpc,
    deploy,
    find_deploy_block,
    load_artifact,
    start_embedded,
    verify_deployment,
)
from channeld.chain.sender import FeePolicy
from channeld.config import ChainConfig
from channeld.errors import ChainError, ConfigError, LocalFault
from channeld.keys import NodeKey
from channeld.node._channels import ChannelService
from channeld.node._events import EventBus
from channeld.node._onchain import ChainAccess, ChainWatcher, TransactionWorker
from channeld.node._records import addr_bytes
from channeld.node._tokens import Asset, HubHoldings
from channeld.store import Namespace

EMBEDDED_FUNDING = 1000 * 10**18
CHALLENGE_BOUNDS = (1, 30 * 24 * 3600)


class UnknownChain(LocalFault):
    """A request names a chain the node does not serve (or names none while it serves several)."""


class ChainStalled(LocalFault):
    """The chain's RPC is failing: its channels take no new payments until the node reaches it again."""


@dataclass(frozen=True, slots=True)
class ChainSetup:
    """A chain handed to the node (the demo's shared embedded EVM) instead of one named in the config."""

    backend: ChainBackend
    contract: str
    deploy_block: int
    limiter: trio.CapacityLimiter | None = None


def payer_request(to: str, value: int) -> TxRequest:
    return TxRequest(to=to, value=value, gas=21000)


def connect_chain(config: ChainConfig, key: NodeKey) -> ChainSetup:
    """Blocking: reach one configured chain and its contract (deploying one on the embedded chain)."""
    artifact = load_artifact("ChannelHub")
    if config.rpc_url == "embedded":
        backend, funded = start_embedded(accounts=1, chain_id=config.chain_id)
        payer = TransactionSender(backend, Account.from_key(funded[0]), artifact.abi)
        payer.transact(payer_request(key.address, EMBEDDED_FUNDING))
        deployment = deploy(payer, artifact, list(CHALLENGE_BOUNDS))
        return ChainSetup(backend, deployment.address, deployment.block)
    backend = connect_rpc(config.rpc_url)
    if config.chain_id is not None and backend.chain_id() != config.chain_id:
        raise ConfigError(f"the RPC {config.rpc_url} serves chain {backend.chain_id()}, not chain_id "
                          f"{config.chain_id}")
    if config.contract is None:
        raise ConfigError("chain.contract (or --contract) is required with an RPC chain")
    verify_deployment(backend, artifact, config.contract)
    return ChainSetup(backend, config.contract, find_deploy_block(backend, config.contract))


@dataclass(frozen=True, slots=True)
class RoomContext:
    """What every room takes from the node."""

    service: ChannelService
    bus: EventBus
    key: NodeKey
    peer_of: Callable[[bytes], bytes | None]
    on_new_channel: Callable[[bytes, bytes], None]
    safety_margin: float
    fees: FeePolicy


class ChainRoom:
    """One chain: its configuration, RPC access, namespace, watcher and transaction worker."""

    def __init__(self, config: ChainConfig, setup: ChainSetup, chain_id: int, context: RoomContext) -> None:
        self.config = config
        self.setup = setup
        self.chain_id = chain_id
        self.contract = setup.contract
        self.name = config.name or str(chain_id)
        self.chain = ChainAccess(setup.backend, setup.limiter)
        self.ns = Namespace(chain_id, addr_bytes(setup.contract))
        our_address = addr_bytes(context.key.address)
        self.watcher = ChainWatcher(
            self.chain, context.service, self.ns, setup.contract, setup.deploy_block, our_address,
            context.peer_of, context.on_new_channel, context.bus,
            # the embedded chain mines a block per transaction only: a confirmation might never come
            confirmations=0 if setup.backend.is_embedded else config.confirmations,
            poll_interval=config.poll_interval)
        artifact = load_artifact("ChannelHub")
        account = Account.from_key(context.key.private_key.secret)
        sender = TransactionSender(setup.backend, account, artifact.abi, fee_policy=context.fees)
        self.worker = TransactionWorker(self.chain, sender, context.service, self.ns, setup.contract,
                                        context.bus, safety_margin=context.safety_margin)
        self.worker.chain_time = lambda: self.watcher.chain_time
        self.assets: dict[bytes, Asset] = {}  # token -> symbol and decimals (node/_tokens.py)
        self.holdings = HubHoldings(setup.contract, setup.deploy_block)  # rebasing check (node/_tokens.py)

    def status(self) -> str:
        return "stalled" if self.watcher.stalled_since() is not None else "ok"

    def check_usable(self) -> None:
        """Raise `ChainStalled` while the chain cannot be watched (a payment could not be defended)."""
        stalled = self.watcher.stalled_since()
        if stalled is not None:
            since = time.strftime("%H:%M:%S", time.gmtime(stalled))
            why = self.watcher.last_error or "its RPC does not answer"
            raise ChainStalled(f"chain {self.name} ({self.chain_id}) is unreachable since {since} UTC "
                               f"({why}); its channels are stalled")

    def as_json(self) -> dict[str, Any]:
        watcher = self.watcher
        return {"name": self.name, "chain_id": self.chain_id, "contract": self.contract,
                "status": self.status(), "block": watcher.head,
                "follower_block": watcher.follower.cursor.position.number,
                "stalled_since": watcher.stalled_since(), "error": watcher.last_error,
                "pending_transactions": self.worker.pending_count(),
                "tokens": None if self.config.tokens is None else list(self.config.tokens),
                "drifting_tokens": self.holdings.drifting_json()}

    async def learn_assets(self, tokens: set[bytes]) -> None:
        """Read the symbol and decimals of tokens not yet known (a token that does not answer is skipped)."""
        from channeld.node._tokens import TokenRefused, asset_of, watch_holdings

        for token in tokens - self.assets.keys():
            try:
                await asset_of(self, token)
            except (TokenRefused, ChainError):
                continue
        await watch_holdings(self, tokens)

    def matches(self, name_or_id: str) -> bool:
        return name_or_id in (self.name, str(self.chain_id))


def check_distinct(rooms: list[ChainRoom]) -> None:
    """Two entries reaching the same chain would share a namespace: refuse to start."""
    seen: dict[int, str] = {}
    for room in rooms:
        if room.chain_id in seen:
            raise ConfigError(f"chains {seen[room.chain_id]} and {room.name} both report chain id "
                              f"{room.chain_id}; each chain is listed once")
        seen[room.chain_id] = room.name


def pick_room(rooms: list[ChainRoom], name_or_id: str | None) -> ChainRoom:
    """The room a request names (by name or chain id); with none named, the only one there is."""
    listed = ", ".join(f"{room.name} ({room.chain_id})" for room in rooms)
    if name_or_id is None:
        if len(rooms) == 1:
            return rooms[0]
        raise UnknownChain(f"this node serves several chains; name one of: {listed}")
    for room in rooms:
        if room.matches(str(name_or_id)):
            return room
    raise UnknownChain(f"no chain {str(name_or_id)[:60]!r}; this node serves: {listed}")
