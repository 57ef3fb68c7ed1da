"""The load generator: a fleet of wallets, each a real channel peer of the node under test.

A wallet here is what `channeld.wire`'s spec lets any third party build: its own secp256k1 key, a BOLT 8
session to the node (channeld.transport), the pure channel machine (channeld.protocol) and a LevelDB
store (channeld.store). It obeys the durability rule as the node does: every new state is committed
(fsync, group commit) before the message that depends on it is sent. All wallets of a fleet share one
store and one flusher, the way a wallet service hosting many users would.

Channels are opened on chain by the wallet itself (openChannel with its deposit); the node learns of
them from the contract's events, as it would in production.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import coincurve
import trio
from eth_account import Account
from eth_utils import to_checksum_address

from channeld.chain import ChainBackend, TransactionSender, TxRequest, connect_rpc
from channeld.chain import contract as hub
from channeld.errors import PeerFault
from channeld.protocol import (
    ActionPay,
    ChannelState,
    ContractReceiveDeposit,
    Effect,
    EventPaymentRefused,
    EventPaymentSent,
    KnownKey,
    Persist,
    Send,
    Signer,
    check_announcement,
    handle,
    new_channel,
)
from channeld.store import Batch, Namespace, Store
from channeld.transport import PeerUri, Session, TransportLimits, connect, establish_session
from channeld.wire import PROTOCOL_VERSION, ChannelGossip, ChannelOpened, Error, Init, Message, Reestablish

CHALLENGE_PERIOD = 3600
FUNDING = 10**21
OPENING_THREADS = 8
STALL_SECONDS = 60.0

# The fleet sends as fast as it is answered; the node's per-peer rate limit is what it is configured to.
LIMITS = TransportLimits(max_messages_per_second=1e9, send_queue_size=4096, receive_queue_size=4096,
                         handshake_timeout=60.0, connect_timeout=60.0)


class WalletFailure(PeerFault):
    """The node refused a benchmark payment, answered with an error or stopped answering: the run is
    void."""


@dataclass(slots=True)
class Wallet:
    """One wallet: key, session to the node, and (once opened) its channel's state."""

    secret: bytes
    signer: Signer
    session: Session | None = None
    state: ChannelState | None = None
    announced: trio.Event = field(default_factory=trio.Event)
    started: dict[int, float] = field(default_factory=dict)
    on_done: dict[int, Callable[[], None]] = field(default_factory=dict)
    early: list[Message] = field(default_factory=list)

    @classmethod
    def create(cls) -> Wallet:
        secret = secrets.token_bytes(32)
        return cls(secret, Signer(secret))

    @property
    def channel_id(self) -> bytes:
        assert self.state is not None
        return self.state.channel_id


@dataclass(slots=True)
class _Round:
    # the latest Persist per channel: its record is encoded once, when the round is written
    records: dict[bytes, Persist] = field(default_factory=dict)
    sends: list[tuple[Wallet, Message]] = field(default_factory=list)


class Fleet:
    """Wallets paying one node. Use inside `async with trio.open_nursery()`: call `run_flusher` first."""

    def __init__(self, store_path: Path, chain_id: int, contract: bytes, node_uri: str, count: int) -> None:
        self.store = Store.open(store_path)
        self.ns = Namespace(chain_id, contract)
        self.node = PeerUri.parse(node_uri)
        self.init = Init(PROTOCOL_VERSION, b"", chain_id, contract)
        self.wallets = [Wallet.create() for _ in range(count)]
        self.latencies: list[float] = []
        self.failure: str | None = None
        self._round = _Round()
        self._dirty = trio.Event()

    def close(self) -> None:
        self.store.close()

    # --- setting up ----------------------------------------------------------------------------------

    async def connect_all(self, nursery: trio.Nursery, parallel: int = 32) -> None:
        limiter = trio.CapacityLimiter(parallel)

        async def one(wallet: Wallet) -> None:
            async with limiter:
                key = coincurve.PrivateKey(wallet.secret)
                connection = await connect(self.node, key, LIMITS)
                wallet.session = await establish_session(connection, self.init)
            nursery.start_soon(self._serve, wallet)

        async with trio.open_nursery() as connecting:
            for wallet in self.wallets:
                connecting.start_soon(one, wallet)

    def open_on_chain(self, rpc_url: str, contract: str, deposit: int) -> list[hub.ChannelOpened]:
        """Blocking (run it in a thread): fund each wallet's account and open its channel on chain, a few
        wallets at a time, each worker thread with its own RPC connection."""
        partner = node_address(self.node.node_id)
        local = threading.local()

        def open_one(wallet: Wallet) -> hub.ChannelOpened:
            if not hasattr(local, "backend"):
                local.backend = connect_rpc(rpc_url, timeout=60.0)
            return _open_channel(local.backend, wallet, contract, partner, deposit)

        with ThreadPoolExecutor(max_workers=OPENING_THREADS) as pool:
            return list(pool.map(open_one, self.wallets))

    def adopt(self, opened: list[hub.ChannelOpened]) -> None:
        """Each wallet takes up its channel, and checks any announcement that came before the receipt."""
        for wallet, event in zip(self.wallets, opened, strict=True):
            state = new_channel(self.ns.chain_id, self.ns.contract, event.channel_id, event.challenge_period,
                                wallet.signer.address, self.node.node_id)
            ours = wallet.signer.address
            deposit = event.deposit1 if bytes.fromhex(event.participant1[2:]) == ours else event.deposit2
            wallet.state, effects = handle(state, ContractReceiveDeposit(ours, deposit), wallet.signer)
            self._record(wallet, effects)
            for early in wallet.early:
                self._receive(wallet, early)
            wallet.early.clear()

    async def wait_announced(self, timeout: float) -> None:
        """Until the node has seen every channel on chain and announced it to its wallet."""
        with trio.fail_after(timeout):
            for wallet in self.wallets:
                await wallet.announced.wait()

    # --- paying --------------------------------------------------------------------------------------

    def pay(self, wallet: Wallet, amount: int, on_done: Callable[[], None]) -> None:
        assert wallet.state is not None
        payment_id = secrets.randbits(63)
        wallet.started[payment_id] = time.perf_counter()
        wallet.on_done[payment_id] = on_done
        new, effects = handle(wallet.state, ActionPay(payment_id, amount), wallet.signer)
        wallet.state = new
        self._record(wallet, effects)

    async def drive(self, total: int, window: int, amount: int = 1) -> float:
        """Pay `total` payments spread evenly over the wallets, at most `window` unanswered per channel;
        return the seconds from the first payment to the last acceptance."""
        share, extra = divmod(total, len(self.wallets))
        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_progress)
            async with trio.open_nursery() as paying:
                for index, wallet in enumerate(self.wallets):
                    paying.start_soon(self._drive_one, wallet, share + (index < extra), window, amount)
            nursery.cancel_scope.cancel()
        if self.failure is not None:
            raise WalletFailure(self.failure)
        return time.perf_counter() - started

    async def _watch_progress(self) -> None:
        """Void the run if no payment is accepted for STALL_SECONDS (a stuck node must not hang it)."""
        seen, since = len(self.latencies), time.monotonic()
        while True:
            await trio.sleep(1.0)
            if len(self.latencies) != seen:
                seen, since = len(self.latencies), time.monotonic()
            elif time.monotonic() - since > STALL_SECONDS:
                self._fail(f"no payment was accepted for {STALL_SECONDS:.0f} s ({seen} were)")
                return

    async def _drive_one(self, wallet: Wallet, count: int, window: int, amount: int) -> None:
        slots = trio.Semaphore(window)
        for _ in range(count):
            await slots.acquire()
            if self.failure is not None:
                return
            self.pay(wallet, amount, slots.release)
        for _ in range(window):  # every payment of this wallet answered
            await slots.acquire()

    # --- durability: commit, then send ---------------------------------------------------------------

    def _record(self, wallet: Wallet, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Persist):
                self._round.records[effect.channel_id] = effect
            elif isinstance(effect, Send):
                self._round.sends.append((wallet, effect.message))
            elif isinstance(effect, EventPaymentSent):
                self._finish(wallet, effect.payment_id)
            elif isinstance(effect, EventPaymentRefused):
                self._fail(f"payment refused by the node: {effect.reason}")
        self._dirty.set()

    def _finish(self, wallet: Wallet, payment_id: int) -> None:
        started = wallet.started.pop(payment_id)
        self.latencies.append(time.perf_counter() - started)
        wallet.on_done.pop(payment_id)()

    def _fail(self, reason: str) -> None:
        self.failure = self.failure or reason
        for wallet in self.wallets:  # release every waiting driver so that the run ends and reports
            for done in wallet.on_done.values():
                done()
            wallet.on_done.clear()

    async def run_flusher(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await self._dirty.wait()
            current, self._round = self._round, _Round()
            self._dirty = trio.Event()
            if current.records:
                batch = Batch()
                for cid, persist in current.records.items():
                    batch.put_channel(self.ns, cid, persist.record)
                await self.store.commit(batch)
            for wallet, message in current.sends:
                assert wallet.session is not None
                await wallet.session.send(message)

    async def _serve(self, wallet: Wallet) -> None:
        session = wallet.session
        assert session is not None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(session.run)
            async for message in session:
                self._receive(wallet, message)
            nursery.cancel_scope.cancel()

    def _receive(self, wallet: Wallet, message: Message) -> None:
        if isinstance(message, ChannelGossip):
            return  # routing gossip: a wallet that routes nothing has no use for it
        if isinstance(message, Error):
            self._fail(f"node error {message.code}: {message.text}")
            return
        state = wallet.state
        if state is None:  # the node saw our channel on chain before we read our own receipt
            wallet.early.append(message)
            return
        if isinstance(message, ChannelOpened):
            check_announcement(state, message)
            return
        new, effects = handle(state, message, wallet.signer)
        wallet.state = new
        self._record(wallet, effects)
        if isinstance(message, Reestablish):
            # the node re-establishes right after announcing: from here on it has the channel, and a
            # payment we send can no longer cross its Reestablish (which would make us send it twice)
            wallet.announced.set()


def node_address(node_id: bytes) -> str:
    """The checksummed Ethereum address of a node id (its compressed public key)."""
    return str(to_checksum_address(KnownKey(node_id).address))


def _open_channel(backend: ChainBackend, wallet: Wallet, contract: str, partner: str,
                  deposit: int) -> hub.ChannelOpened:
    account = Account.from_key(wallet.secret)
    backend.rpc("anvil_setBalance", [account.address, hex(FUNDING)])
    sender = TransactionSender(backend, account, hub.abi())
    data = hub.encode_open_channel(partner, hub.ETHER, CHALLENGE_PERIOD, secrets.randbits(64), deposit)
    receipt = sender.transact(TxRequest(to=contract, data=data, value=deposit, gas=400_000))
    events = [e for e in (hub.decode_event(_log_dict(raw)) for raw in receipt.logs)
              if isinstance(e, hub.ChannelOpened)]
    if len(events) != 1:
        raise WalletFailure(f"openChannel left {len(events)} ChannelOpened events")
    return events[0]


def _log_dict(raw: object) -> dict[str, object]:
    return {"topics": list(getattr(raw, "topics", ())), "data": getattr(raw, "data", b"")}
