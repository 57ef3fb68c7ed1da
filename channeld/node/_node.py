"""The node: one trio nursery running the store's flusher, peers, chain watcher, transaction worker and API.

`Node.run` opens the data directory's store (LevelDB's lock refuses a second node on it), connects to
the chain, loads every channel, starts the parts and reports readiness; cancelling it (SIGINT/SIGTERM in
`run_node`) stops the parts and lets the flusher commit what is pending before the store closes, so a
payment in flight is either durable or was never acknowledged.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
from eth_account import Account

from channeld.chain import (
    ChainBackend,
    TransactionSender,
    connect_rpc,
    deploy,
    find_deploy_block,
    load_artifact,
    start_embedded,
    verify_deployment,
)
from channeld.chain import contract as hub
from channeld.chain.sender import FeePolicy
from channeld.config import Config
from channeld.errors import ConfigError
from channeld.keys import NodeKey
from channeld.node._channels import ChannelService
from channeld.node._events import EventBus
from channeld.node._invoices import PaymentRequestBook
from channeld.node._journal import Journal
from channeld.node._metrics import NodeMetrics
from channeld.node._onchain import ChainAccess, ChainWatcher, TransactionWorker
from channeld.node._ops import NodeOperations
from channeld.node._peers import PeerService
from channeld.node._records import Operation, addr_bytes
from channeld.node._towers import TowerSet
from channeld.protocol import Signer
from channeld.store import Namespace, Store
from channeld.transport import TransportLimits
from channeld.wire import PROTOCOL_VERSION, Init

log = logging.getLogger("channeld.node")

STORE_DIR = "db"
RUNTIME_FILE = "node.json"
EMBEDDED_FUNDING = 1000 * 10**18
CHALLENGE_BOUNDS = (1, 30 * 24 * 3600)


@dataclass(frozen=True, slots=True)
class ChainSetup:
    """A chain handed to the node (the demo's shared embedded EVM) instead of one named in the config."""

    backend: ChainBackend
    contract: str
    deploy_block: int
    limiter: trio.CapacityLimiter | None = None


def transport_limits(config: Config) -> TransportLimits:
    t = config.transport
    return TransportLimits(handshake_timeout=t.handshake_timeout, max_message_size=t.max_message_size,
                           max_messages_per_second=float(t.max_messages_per_second),
                           max_connections=t.max_connections, ping_interval=t.ping_interval,
                           idle_timeout=t.peer_timeout, max_pending_channels=t.max_pending_channels)


def _connect_chain(config: Config, key: NodeKey) -> ChainSetup:
    """Blocking: reach the configured chain and the contract (deploying one on the embedded chain)."""
    artifact = load_artifact("ChannelHub")
    if config.chain.rpc_url == "embedded":
        backend, funded = start_embedded(accounts=1)
        payer = TransactionSender(backend, Account.from_key(funded[0]), artifact.abi)
        payer.transact(payer_request(key.address, EMBEDDED_FUNDING))
        deployment = deploy(payer, artifact, list(CHALLENGE_BOUNDS))
        return ChainSetup(backend, deployment.address, deployment.block)
    backend = connect_rpc(config.chain.rpc_url)
    if config.chain.chain_id is not None and backend.chain_id() != config.chain.chain_id:
        raise ConfigError(f"the RPC serves chain {backend.chain_id()}, not chain.chain_id "
                          f"{config.chain.chain_id}")
    if config.chain.contract is None:
        raise ConfigError("chain.contract (or --contract) is required with an RPC chain")
    verify_deployment(backend, artifact, config.chain.contract)
    return ChainSetup(backend, config.chain.contract, find_deploy_block(backend, config.chain.contract))


def payer_request(to: str, value: int) -> Any:
    from channeld.chain import TxRequest

    return TxRequest(to=to, value=value, gas=21000)


class Node(NodeOperations):
    def __init__(self, datadir: Path, config: Config, key: NodeKey, chain: ChainSetup | None = None, *,
                 api: bool = True) -> None:
        self.datadir = Path(datadir)
        self.config = config
        self.key = key
        self.chain_setup = chain
        self.api_enabled = api
        self.bus = EventBus()
        self.metrics = NodeMetrics()
        self.listen_port = 0
        self.api_port = 0
        self.ready = trio.Event()
        self._cancel = trio.CancelScope()
        self._slots = {}
        self._refused = {}

    @property
    def node_id(self) -> bytes:
        return bytes.fromhex(self.key.node_id)

    @property
    def uri(self) -> str:
        host = self.config.node.listen.host
        host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        return f"{self.key.node_id}@{host}:{self.listen_port}"

    def stop(self) -> None:
        self._cancel.cancel()

    async def run(self, task_status: trio.TaskStatus[Node] = trio.TASK_STATUS_IGNORED) -> None:
        log.info("opening the store in %s", self.datadir / STORE_DIR)
        self.store = await trio.to_thread.run_sync(Store.open, self.datadir / STORE_DIR)
        try:
            self.journal = Journal.open(self.datadir)
        except BaseException:
            self.store.close()
            raise
        self.journal.attach(self.bus)
        try:
            with self._cancel:
                await self._run_open(task_status)
        finally:
            self.store.close()
            self.journal.close()

    async def _run_open(self, task_status: trio.TaskStatus[Node]) -> None:
        setup = self.chain_setup
        if setup is None:
            setup = await trio.to_thread.run_sync(_connect_chain, self.config, self.key)
        log.info("store open; chain contract %s", setup.contract)
        self.chain = ChainAccess(setup.backend, setup.limiter)
        self.chain_id = await self.chain.run(setup.backend.chain_id)
        self.contract = setup.contract
        self.ns = Namespace(self.chain_id, addr_bytes(setup.contract))
        self._build(setup)
        async with trio.open_nursery() as nursery:
            await nursery.start(self.channels.run_flusher)
            # caught up with the chain (and its clock) before any peer is served: decisions about expiries
            # never rest on the time stored before a restart
            await nursery.start(self.watcher.run)
            self.listen_port = await nursery.start(self.peers.run, self.config.node.listen.host,
                                                   self.config.node.listen.port)
            nursery.start_soon(self.worker.run)
            await nursery.start(self.towers.run)
            await nursery.start(self.gossip.run)  # multi-hop: the graph, then the payment machines' clock
            nursery.start_soon(self.transfers.run)
            nursery.start_soon(self._refresh_metrics)
            nursery.start_soon(self.journal.run_pruning, self.config.journal.retention)
            await nursery.start(self.batch.run)
            if self.api_enabled:
                from channeld.api import serve_api  # FastAPI loads only for nodes that serve it

                self.api_port = await nursery.start(serve_api, self, self.config.node.api.host,
                                                    self.config.node.api.port)
            self._write_runtime_file()
            self.ready.set()
            log.info("node %s ready: peers on %s, chain %d contract %s, %d channels", self.key.address,
                     self.uri, self.chain_id, self.contract, len(self.channels.channels))
            task_status.started(self)

    def _build(self, setup: ChainSetup) -> None:
        signer = Signer(self.key.private_key.secret)
        self.channels = ChannelService(self.store, self.ns, signer, self.bus,
                                       lambda peer, message: self.peers.send(peer, message))
        self.channels.load()
        from channeld.node._gossip import GOSSIP_FEATURES  # a node keeps a graph: it wants announcements

        init = Init(PROTOCOL_VERSION, GOSSIP_FEATURES, self.chain_id, self.ns.contract)
        self.peers = PeerService(self.store, self.channels, self.bus, init, self.key.private_key,
                                 transport_limits(self.config))
        self.peers.load()
        self.watcher = ChainWatcher(
            self.chain, self.channels, self.ns, setup.contract, setup.deploy_block, signer.address,
            self.peers.addresses.get, self._on_new_channel, self.bus,
            # the embedded chain mines a block per transaction only: a confirmation might never come
            confirmations=0 if setup.backend.is_embedded else self.config.chain.confirmations,
            poll_interval=self.config.chain.poll_interval)
        artifact = load_artifact("ChannelHub")
        fees = FeePolicy(self.config.watchtower.bump_after, self.config.watchtower.max_fee_per_gas)
        sender = TransactionSender(setup.backend, Account.from_key(self.key.private_key.secret), artifact.abi,
                                   fee_policy=fees)
        self.worker = TransactionWorker(self.chain, sender, self.channels, self.ns, setup.contract, self.bus,
                                        safety_margin=self.config.watchtower.safety_margin)
        self.worker.chain_time = lambda: self.watcher.chain_time
        self.channels.on_queued = self._on_queued
        self.channels.limits = self.config.limits
        self.channels.payment_listeners.append(self.note_refusal)
        self.requests = PaymentRequestBook(self)
        self.towers = TowerSet(self)
        self.bus.sinks += [self.requests.on_event, self.towers.on_event]
        self._build_multihop(setup)

    def _build_multihop(self, setup: ChainSetup) -> None:
        from channeld.node._gossip import Gossip
        from channeld.node._transfers import TransferService

        self.gossip = Gossip(self, setup.deploy_block)
        self.transfers = TransferService(self)
        self.transfers.load(setup.deploy_block)
        self.channels.on_effects = self.transfers.on_channel_effects
        self.peers.on_gossip = self.gossip.on_message
        requests_secret = self.requests.on_secret

        def on_secret(peer_id: bytes, secret: bytes) -> None:
            self.transfers.on_secret(peer_id, secret)
            requests_secret(peer_id, secret)

        self.peers.on_secret = on_secret
        from channeld.node._batch import BatchService

        self.batch = BatchService(self)
        self.peers.on_batch = self.batch.on_message

    def _on_queued(self, seq: int, raw: bytes) -> None:
        from channeld.node._onchain import OperationStatus

        op = Operation.decode(raw)
        self.worker.operations.setdefault(seq, OperationStatus(seq, op.kind, op.channel_id))

    def _on_new_channel(self, peer_id: bytes, channel_id: bytes) -> None:
        if self.peers.is_connected(peer_id):
            self.peers.reestablish(peer_id, only=channel_id)

    async def _refresh_metrics(self) -> None:
        while True:
            self.metrics.refresh(lambda: [e.state.status for e in self.channels.channels.values()],
                                 len(self.peers.manager.sessions),
                                 self.watcher.head - self.watcher.follower.cursor.position.number,
                                 self.worker.pending_count(), self.channels.flush_rounds)
            await trio.sleep(1.0)

    def _write_runtime_file(self) -> None:
        """Where this run listens, for the CLI (ports may have been chosen by the OS)."""
        scheme = "http" if self.config.node.api_tls_cert is None else "https"
        document = {"pid": os.getpid(), "node_id": self.key.node_id, "address": self.key.address,
                    "uri": self.uri, "api": f"{scheme}://{self.config.node.api.host}:{self.api_port}",
                    "tls_cert": self.config.node.api_tls_cert,
                    "chain_id": self.chain_id, "contract": self.contract, "started": time.time()}
        path = self.datadir / RUNTIME_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(document, indent=2))
        tmp.replace(path)

    def new_salt(self) -> int:
        return secrets.randbits(64)

    def on_chain_token(self, token: str | None) -> str:
        return hub.ETHER if token is None else token


async def run_node(node: Node) -> None:
    """Run `node` until SIGINT or SIGTERM, then shut it down cleanly."""
    async with trio.open_nursery() as nursery:
        async def stop_on_signal() -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    log.info("signal %d: shutting down", signum)
                    node.stop()
                    return

        nursery.start_soon(stop_on_signal)
        await node.run()
        nursery.cancel_scope.cancel()
