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
from collections.abc import Sequence
from pathlib import Path

import trio

from channeld.chain import contract as hub
from channeld.chain.sender import FeePolicy
from channeld.config import Config
from channeld.errors import ConfigError
from channeld.keys import NodeKey
from channeld.node._channels import ChannelService
from channeld.node._events import EventBus
from channeld.node._invoices import PaymentRequestBook
from channeld.node._journal import Journal
from channeld.node._ledger import LedgerBook
from channeld.node._metrics import NodeMetrics
from channeld.node._ops import NodeOperations
from channeld.node._peers import PeerService
from channeld.node._records import Operation, addr_bytes
from channeld.node._refusals import RefusalBook
from channeld.node._rooms import (
    ChainRoom,
    ChainSetup,
    RoomContext,
    check_distinct,
    connect_chain,
)
from channeld.node._towers import TowerSet
from channeld.protocol import Signer
from channeld.store import Namespace, Store
from channeld.transport import TransportLimits
from channeld.wire import PROTOCOL_VERSION, Init, pack_chains

log = logging.getLogger("channeld.node")

STORE_DIR = "db"
RUNTIME_FILE = "node.json"


def transport_limits(config: Config) -> TransportLimits:
    t = config.transport
    return TransportLimits(handshake_timeout=t.handshake_timeout, max_message_size=t.max_message_size,
                           max_messages_per_second=float(t.max_messages_per_second),
                           max_connections=t.max_connections, ping_interval=t.ping_interval,
                           idle_timeout=t.peer_timeout, max_pending_channels=t.max_pending_channels)


class Node(NodeOperations):
    def __init__(self, datadir: Path, config: Config, key: NodeKey,
                 chain: ChainSetup | Sequence[ChainSetup] | None = None, *, api: bool = True) -> None:
        self.datadir = Path(datadir)
        self.config = config
        self.key = key
        # chains handed in (the demo's embedded EVMs) instead of reached from the config: one per configured
        # chain, in `config.chain_list()` order
        self.chain_setups = (chain,) if isinstance(chain, ChainSetup) else tuple(chain or ())
        configured = len(config.chain_list())
        if self.chain_setups and len(self.chain_setups) != configured:
            raise ConfigError(f"{len(self.chain_setups)} chain setups handed in for {configured} configured "
                              "chains")
        self.api_enabled = api
        self.bus = EventBus()
        self.metrics = NodeMetrics()
        self.listen_port = 0
        self.api_port = 0
        self.ready = trio.Event()
        self._cancel = trio.CancelScope()
        self._slots = {}

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

    async def _connect(self) -> list[tuple[ChainSetup, int]]:
        """Each configured chain's setup and the chain id its RPC reports (the demo hands them in)."""
        configs = self.config.chain_list()
        setups = list(self.chain_setups) or [
            await trio.to_thread.run_sync(connect_chain, chain, self.key) for chain in configs]
        found = []
        for config, setup in zip(configs, setups, strict=True):
            log.info("store open; chain contract %s", setup.contract)
            chain_id = await trio.to_thread.run_sync(setup.backend.chain_id, limiter=setup.limiter)
            if config.chain_id is not None and chain_id != config.chain_id:
                raise ConfigError(f"the chain handed in for {config.name or config.chain_id} is chain "
                                  f"{chain_id}, not chain_id {config.chain_id}")
            found.append((setup, chain_id))
        return found

    async def _run_open(self, task_status: trio.TaskStatus[Node]) -> None:
        connected = await self._connect()
        primary, self.chain_id = connected[0]
        self.contract = primary.contract
        self.ns = Namespace(self.chain_id, bytes.fromhex(primary.contract[2:]))
        self._build(primary, connected)
        async with trio.open_nursery() as nursery:
            await nursery.start(self.channels.run_flusher)
            # caught up with each chain (and its clock) before any peer is served: decisions about expiries
            # never rest on the time stored before a restart; a room whose RPC fails later stalls alone
            for room in self.rooms:
                await nursery.start(room.watcher.run)
            self.listen_port = await nursery.start(self.peers.run, self.config.node.listen.host,
                                                   self.config.node.listen.port)
            for room in self.rooms:
                nursery.start_soon(room.worker.run)
            await nursery.start(self.towers.run)
            await nursery.start(self.gossip.run)  # multi-hop: the graph, then the payment machines' clock
            nursery.start_soon(self.transfers.run)
            nursery.start_soon(self.refusals.run)
            nursery.start_soon(self._refresh_metrics)
            nursery.start_soon(self.journal.run_pruning, self.config.journal.retention)
            await nursery.start(self.batch.run)
            if self.api_enabled:
                from channeld.api import serve_api  # FastAPI loads only for nodes that serve it

                self.api_port = await nursery.start(serve_api, self, self.config.node.api.host,
                                                    self.config.node.api.port)
            self._write_runtime_file()
            self.ready.set()
            log.info("node %s ready: peers on %s, chains %s, %d channels", self.key.address, self.uri,
                     ", ".join(f"{r.name} ({r.chain_id}, {r.contract})" for r in self.rooms),
                     len(self.channels.channels))
            task_status.started(self)

    def _build(self, setup: ChainSetup, connected: list[tuple[ChainSetup, int]]) -> None:
        signer = Signer(self.key.private_key.secret)
        self.channels = ChannelService(self.store, self.ns, signer, self.bus,
                                       lambda peer, message: self.peers.send(peer, message))
        self.peers = PeerService(self.store, self.channels, self.bus, self._init(connected),
                                 self.key.private_key, transport_limits(self.config))
        self.peers.load()
        fees = FeePolicy(self.config.watchtower.bump_after, self.config.watchtower.max_fee_per_gas)
        context = RoomContext(self.channels, self.bus, self.key, self.peers.addresses.get,
                              self._on_new_channel, self.config.watchtower.safety_margin, fees)
        configs = self.config.chain_list()
        self.rooms = [ChainRoom(chain, room_setup, chain_id, context)
                      for chain, (room_setup, chain_id) in zip(configs, connected, strict=True)]
        check_distinct(self.rooms)
        self.channels.load([room.ns for room in self.rooms])
        self.risk = LedgerBook(self.channels)
        self.risk.load(self.store, time.time())
        # the primary chain's parts keep their single-chain names: multi-hop, gossip and towers use them
        primary = self.rooms[0]
        self.chain, self.watcher, self.worker = primary.chain, primary.watcher, primary.worker
        self.channels.on_queued = self._on_queued
        self.channels.limits = self.config.limits
        self.refusals = RefusalBook(self.channels, self.bus, self.peers.send)
        self.channels.payment_listeners.append(self.note_refusal)
        self.requests = PaymentRequestBook(self)
        self.towers = TowerSet(self)
        self.bus.sinks += [self.requests.on_event, self.towers.on_event]
        self._build_multihop(setup)

    def _build_multihop(self, setup: ChainSetup) -> None:
        from channeld.node._conversions import ConversionService
        from channeld.node._gossip import Gossip
        from channeld.node._transfers import TransferService

        self.gossip = Gossip(self)
        self.conversions = ConversionService(self)
        self.transfers = TransferService(self)
        self.transfers.load()
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

    def _init(self, connected: list[tuple[ChainSetup, int]]) -> Init:
        """Our `Init`: the primary chain, and every further chain in `chains`."""
        chains = [(chain_id, bytes.fromhex(setup.contract[2:])) for setup, chain_id in connected]
        from channeld.node._gossip import GOSSIP_FEATURES  # a node keeps a graph: it wants announcements

        return Init(PROTOCOL_VERSION, GOSSIP_FEATURES, chains[0][0], chains[0][1], pack_chains(chains[1:]))

    def room_of(self, ns: Namespace) -> ChainRoom:
        return next(room for room in self.rooms if room.ns == ns)

    def _on_queued(self, ns: Namespace, seq: int, raw: bytes) -> None:
        from channeld.node._onchain import OperationStatus

        op = Operation.decode(raw)
        self.room_of(ns).worker.operations.setdefault(seq, OperationStatus(seq, op.kind, op.channel_id))

    def _on_new_channel(self, peer_id: bytes, channel_id: bytes) -> None:
        if self.peers.is_connected(peer_id):
            self.peers.reestablish(peer_id, only=channel_id)

    async def _refresh_metrics(self) -> None:
        while True:
            self.metrics.refresh(lambda: [e.state.status for e in self.channels.channels.values()],
                                 len(self.peers.manager.sessions),
                                 self.watcher.head - self.watcher.follower.cursor.position.number,
                                 sum(room.worker.pending_count() for room in self.rooms),
                                 self.channels.flush_rounds)
            for room in self.rooms:
                self.metrics.refresh_chain(room.name, room.chain_id, room.status() == "stalled",
                                           room.watcher.head - room.watcher.follower.cursor.position.number,
                                           len(room.holdings.drifting))
                if room.status() == "ok":
                    tokens = {addr_bytes(e.onchain.state.token) for _, e in self.channels.on_chain(room.ns)}
                    await room.learn_assets(tokens)
            await trio.sleep(1.0)

    def _write_runtime_file(self) -> None:
        """Where this run listens, for the CLI (ports may have been chosen by the OS)."""
        scheme = "http" if self.config.node.api_tls_cert is None else "https"
        document = {"pid": os.getpid(), "node_id": self.key.node_id, "address": self.key.address,
                    "uri": self.uri, "api": f"{scheme}://{self.config.node.api.host}:{self.api_port}",
                    "tls_cert": self.config.node.api_tls_cert,
                    "chain_id": self.chain_id, "contract": self.contract, "started": time.time(),
                    "chains": [{"name": r.name, "chain_id": r.chain_id, "contract": r.contract}
                               for r in self.rooms]}
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
