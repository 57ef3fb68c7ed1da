"""`channeld demo`: four real nodes and a watchtower in one process, one embedded chain, loopback TCP.

Alice, Bob, Carol and Dave each run a full node (`channeld.node.Node`: LevelDB store, BOLT 8 sessions, chain
watcher, transaction outbox) in one trio run, all sharing one in-process EVM (eth-tester / py-evm), so
the first run needs nothing but pip; a standalone `Watchtower` (its own key, LevelDB and account) runs
beside them. The story: open channels, stream direct payments (payments per second are measured),
pay a shop (Dave) that only Carol has a channel with through Carol (a hash time-locked two-hop payment
under the shop's payment request), withdraw while a channel stays open, close two channels
cooperatively; stop Bob's node and let Alice close unilaterally while he is away (her close carries none
of the payments she made him), then bring Bob's node back before the deadline so that it disputes by
itself; let Bob delegate to the tower and vanish
for good while Carol closes unilaterally, so that the tower disputes for him; settle, and finish with a
table of every account's on-chain balance, checked to add up to the wei. Data lives in a temporary
directory that is removed afterwards."""

from __future__ import annotations

import json
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import trio
from eth_account import Account

from channeld.chain import AsyncSender, TransactionSender, TxRequest, deploy, load_artifact, start_embedded
from channeld.chain import contract as hub
from channeld.chain.backend import ChainBackend, embedded_fork_name
from channeld.chain.follower import EventFollower
from channeld.config import ChainConfig, Config, HostPort, NodeConfig, RoutingConfig
from channeld.errors import LocalFault
from channeld.keys import NodeKey
from channeld.limits import RiskLimits
from channeld.node import ChainSetup, Node
from channeld.protocol import ChannelStatus
from channeld.store import Namespace
from channeld.watchtower import TowerDB, TowerSettings, Watchtower

ETH = 10**18
FUNDING = 100 * ETH
CHALLENGE_PERIOD = 3600  # seconds; the embedded chain's clock is moved instead of waiting
PAYMENTS = 1500
PAYMENT = ETH // 1000
CONCURRENCY = 32
WAIT = 30.0  # seconds any one step may take before the demo gives up
NAMES = ("alice", "bob", "carol", "dave")
SHOP_PRICE = ETH // 100
CAROL_FEE_BASE = 10**12


class DemoFailed(LocalFault):
    """A step did not happen in time, or the balances did not add up."""


def eth(wei: int) -> str:
    text = f"{Decimal(wei) / ETH:f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + " ETH"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class Step:
    what: str
    why: str


@dataclass(slots=True)
class Report:
    """What the demo says: numbered steps (printed as they happen), figures, and the balance table."""

    json_output: bool
    steps: list[Step] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    balances: list[dict[str, Any]] = field(default_factory=list)

    def step(self, what: str, why: str) -> None:
        self.steps.append(Step(what, why))
        if not self.json_output:
            print(f"{len(self.steps):>2}. {what} — {why}", flush=True)

    def finish(self, checks: list[str]) -> None:
        if self.json_output:
            print(json.dumps({"steps": [asdict(s) for s in self.steps], "figures": self.figures,
                              "balances": self.balances, "checks": checks}, indent=2))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table("account", "start", "deposited", "withdrawn", "paid out", "gas", "end",
                      title="on-chain balances (ETH)")
        for row in self.balances:
            table.add_row(row["account"], *(eth(int(row[k])).removesuffix(" ETH") for k in
                                            ("start", "deposited", "withdrawn", "paid_out", "gas", "end")))
        Console(width=120).print(table)
        print("\n".join(checks))


# ------------------------------------------------------------------------------------ the chain ledger


@dataclass(slots=True)
class Ledger:
    """Every wei the contract took in and paid out, per account, folded from its logs."""

    deposited: dict[str, int] = field(default_factory=dict)
    withdrawn: dict[str, int] = field(default_factory=dict)
    paid_out: dict[str, int] = field(default_factory=dict)
    _participants: dict[bytes, tuple[str, str]] = field(default_factory=dict)
    _deposits: dict[tuple[bytes, str], int] = field(default_factory=dict)
    _withdrawals: dict[tuple[bytes, str], int] = field(default_factory=dict)

    def fold(self, event: object) -> None:
        if isinstance(event, hub.ChannelOpened):
            self._participants[event.channel_id] = (event.participant1, event.participant2)
            self._deposit(event.channel_id, event.participant1, event.deposit1)
            self._deposit(event.channel_id, event.participant2, event.deposit2)
        elif isinstance(event, hub.ChannelDeposit):
            self._deposit(event.channel_id, event.participant, event.total_deposit)
        elif isinstance(event, hub.ChannelWithdraw):
            key = (event.channel_id, event.participant)
            _add(self.withdrawn, event.receiver, event.total_withdraw - self._withdrawals.get(key, 0))
            self._withdrawals[key] = event.total_withdraw
        elif isinstance(event, hub.ChannelSettled):
            first, second = self._participants[event.channel_id]
            _add(self.paid_out, first, event.amount1)
            _add(self.paid_out, second, event.amount2)
        elif isinstance(event, hub.ChannelCooperativelySettled):
            _add(self.paid_out, event.receiver1, event.amount1)
            _add(self.paid_out, event.receiver2, event.amount2)

    def _deposit(self, cid: bytes, who: str, total: int) -> None:
        _add(self.deposited, who, total - self._deposits.get((cid, who), 0))
        self._deposits[(cid, who)] = total


def _add(totals: dict[str, int], who: str, amount: int) -> None:
    totals[who] = totals.get(who, 0) + amount


def read_ledger(backend: ChainBackend, contract: str, from_block: int) -> Ledger:
    ledger = Ledger()
    for log in backend.get_logs(contract, from_block, backend.head()):
        ledger.fold(hub.decode_event({"topics": log.topics, "data": log.data}))
    return ledger


def gas_spent(backend: ChainBackend, address: str, from_block: int) -> int:
    """Wei `address` paid in fees since `from_block` (the embedded chain is short: read every block)."""
    spent = 0
    for number in range(from_block, backend.head() + 1):
        block = backend.w3.eth.get_block(number, full_transactions=True)
        for tx in block["transactions"]:
            if not isinstance(tx, bytes) and tx["from"] == address:
                receipt = backend.w3.eth.get_transaction_receipt(tx["hash"])
                spent += receipt["gasUsed"] * receipt["effectiveGasPrice"]
    return spent


# ------------------------------------------------------------------------------------------- the demo


class Demo:
    """The shared chain, the nodes' and the tower's data directories, and the story's steps."""

    def __init__(self, root: Path, report: Report) -> None:
        self.root = root
        self.report = report
        self.backend, funded = start_embedded(accounts=1)
        self.artifact = load_artifact("ChannelHub")
        payer = TransactionSender(self.backend, Account.from_key(funded[0]), self.artifact.abi)
        deployment = deploy(payer, self.artifact, [60, 30 * 24 * 3600])
        self.setup = ChainSetup(self.backend, deployment.address, deployment.block, trio.CapacityLimiter(1))
        self.keys = {name: NodeKey.generate() for name in (*NAMES, "tower")}
        for key in self.keys.values():
            payer.transact(TxRequest(to=key.address, value=FUNDING, gas=21000))
        self.first_block = self.backend.head() + 1
        self.start_balances = {name: self.backend.balance(key.address) for name, key in self.keys.items()}
        self.configs = {name: _config() for name in NAMES}
        self.configs["carol"] = replace(self.configs["carol"], routing=replace(
            self.configs["carol"].routing, fee_base=CAROL_FEE_BASE))
        self.nodes: dict[str, Node] = {}
        self._stopped: dict[str, trio.Event] = {}
        self.paid: dict[tuple[str, str], int] = {}
        report.step(f"ChannelHub deployed at {deployment.address} on the embedded EVM "
                    f"({embedded_fork_name(self.backend)}); five accounts funded with {eth(FUNDING)} each",
                    "no anvil, no compiler, no network: the first run needs only pip packages")

    # --- nodes and the tower -------------------------------------------------------------------------

    async def start(self, nursery: trio.Nursery, name: str) -> Node:
        (self.root / name).mkdir(mode=0o700, exist_ok=True)
        node = Node(self.root / name, self.configs[name], self.keys[name], self.setup, api=False)
        stopped = self._stopped[name] = trio.Event()

        async def run(task_status: trio.TaskStatus[Node]) -> None:
            try:
                await node.run(task_status=task_status)
            finally:
                stopped.set()

        self.nodes[name] = await nursery.start(run)
        return node

    async def stop(self, name: str) -> None:
        self.nodes.pop(name).stop()
        await self._stopped[name].wait()

    async def start_tower(self, nursery: trio.Nursery) -> str:
        """A standalone watchtower (its own key, LevelDB and chain account), serving on loopback."""
        key, contract = self.keys["tower"], self.setup.contract
        (self.root / "tower").mkdir(mode=0o700)
        self.tower_db = TowerDB(self.root / "tower" / "db", Namespace(self.backend.chain_id(),
                                                                     bytes.fromhex(contract[2:])))
        sender = AsyncSender(TransactionSender(self.backend, Account.from_key(key.private_key.secret),
                                               self.artifact.abi))
        settings = TowerSettings(poll_interval=0.05)
        self.tower = Watchtower(self.tower_db, key.private_key, settings, self.backend, sender,
                                self.setup.deploy_block)
        follower = EventFollower(self.backend, contract, self.tower_db, self.setup.deploy_block)
        port = await nursery.start(self.tower.run, follower, "127.0.0.1", 0)
        return f"{key.node_id}@127.0.0.1:{port}"

    def cid_between(self, name: str, partner: str, status: ChannelStatus = ChannelStatus.OPEN) -> bytes:
        peer = bytes.fromhex(self.keys[partner].node_id)
        for cid, entry in self.nodes[name].channels.of_peer(peer):
            if entry.state.status is status:
                return cid
        raise DemoFailed(f"{name} has no {status.name.lower()} channel with {partner}")

    def state(self, name: str, cid: bytes) -> Any:
        return self.nodes[name].channels.entry(cid).state

    # --- the story -----------------------------------------------------------------------------------

    async def open_channels(self) -> None:
        alice, bob, carol, dave = (self.nodes[n] for n in NAMES)
        await alice.open_channel(bob.uri, 5 * ETH, challenge_period=CHALLENGE_PERIOD)
        await carol.open_channel(bob.uri, 2 * ETH, challenge_period=CHALLENGE_PERIOD)
        await alice.open_channel(carol.uri, ETH, challenge_period=CHALLENGE_PERIOD)
        await carol.open_channel(dave.uri, ETH, challenge_period=CHALLENGE_PERIOD)
        for payer, payee in (("alice", "bob"), ("carol", "bob"), ("alice", "carol"), ("carol", "dave")):
            await until(lambda p=payer, q=payee: self._open_on_both(p, q),  # type: ignore[misc]
                        f"{payer}'s channel with {payee}")
        self.report.step("Alice opens channels to Bob (5 ETH) and Carol (1 ETH), Carol to Bob (2 ETH) and to "
                         "Dave's shop (1 ETH); "
                         "the nodes dial each other over BOLT 8 on loopback TCP",
                         "one contract holds every channel; both partners learn each channel from the chain")

    def _open_on_both(self, payer: str, payee: str) -> bool:
        try:
            cid = self.cid_between(payer, payee)
            return bool(self.state(payee, cid).status is ChannelStatus.OPEN)
        except (DemoFailed, LookupError, LocalFault):
            return False

    async def stream(self, payers: tuple[str, ...], payee: str, count: int) -> float:
        """`count` payments of `PAYMENT` to `payee`, `CONCURRENCY` at a time; returns the seconds taken."""
        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for worker in range(CONCURRENCY):
                share = count // CONCURRENCY + (worker < count % CONCURRENCY)
                nursery.start_soon(self._pay_many, payers[worker % len(payers)], payee, share)
        return time.perf_counter() - started

    async def _pay_many(self, payer: str, payee: str, count: int) -> None:
        for _ in range(count):
            result = await self.nodes[payer].pay(bytes.fromhex(self.keys[payee].node_id), PAYMENT)
            if result["status"] != "accepted":
                raise DemoFailed(f"a payment was not accepted: {result}")
            self.paid[(payer, payee)] = self.paid.get((payer, payee), 0) + PAYMENT

    async def stream_payments(self) -> None:
        elapsed = await self.stream(("alice", "alice", "carol"), "bob", PAYMENTS)
        rate = PAYMENTS / elapsed
        self.report.figures.update({"payments": PAYMENTS, "payment_seconds": round(elapsed, 3),
                                    "payments_per_second": round(rate, 1)})
        self.report.step(f"{PAYMENTS} direct payments of {eth(PAYMENT)} streamed to Bob by Alice and Carol "
                         f"in {elapsed:.2f} s: {rate:.0f} payments/s",
                         "each is one signature by the payer, one check and one fsync by the payee; "
                         "the chain sees none of them")

    async def pay_the_shop_through_carol(self) -> None:
        """Alice has no channel with Dave: she pays his payment request through Carol, hash-locked."""
        alice, dave = self.nodes["alice"], self.nodes["dave"]
        request = dave.requests.create(SHOP_PRICE, "one coffee")["request"]
        shop_channel = self.cid_between("dave", "carol")
        before = self.state("dave", shop_channel).partner.transferred
        result = await self._pay_when_routed(alice, request)
        if result["status"] != "accepted":
            raise DemoFailed(f"the routed payment was not accepted: {result}")
        await until(lambda: self.state("dave", shop_channel).partner.transferred == before + SHOP_PRICE
                    and not self.state("dave", shop_channel).partner.locks, "Carol's unlock to Dave")
        await until(lambda: not self.state("carol", self.cid_between("carol", "alice")).partner.locks,
                    "Alice's unlock to Carol")
        self.report.figures["routed_fee_wei"] = str(result["fees"])
        self.report.step(f"Dave's shop issues a payment request for {eth(SHOP_PRICE)}; Alice, who has no "
                         f"channel with Dave, pays it through Carol (fee {eth(int(result['fees']))}): Dave "
                         "reveals the secret only once the full amount is locked to him, and each hop "
                         "unlocks backwards", "a payment crosses channels without trusting the node in "
                         "the middle: every hop is paid, or none (sha256 hash time-locks)")

    async def _pay_when_routed(self, payer: Node, request: str) -> dict[str, Any]:
        """Pay `request`, retrying while gossip has not yet brought the payer a route."""
        with trio.move_on_after(WAIT):
            while True:
                try:
                    return await payer.requests.pay(request, max_fee=ETH // 1000)
                except LocalFault as exc:
                    if "NoRoute" not in str(exc):
                        raise
                await trio.sleep(0.1)
        raise DemoFailed("timed out waiting for a route from Alice to Dave")

    async def shop_cashes_out(self) -> None:
        cid = self.cid_between("dave", "carol")
        await self.nodes["dave"].close(cid)
        await until(lambda: self.state("dave", cid).status is ChannelStatus.SETTLED,
                    "Dave's cooperative close")
        self.report.step("Dave's shop closes its channel with Carol cooperatively",
                         f"Dave is paid {eth(SHOP_PRICE)} on chain for a sale made off-chain two hops away")

    async def withdraw_while_open(self) -> None:
        cid = self.cid_between("bob", "alice")
        amount = ETH // 2
        await self.nodes["bob"].withdraw(cid, amount)
        await until(lambda: self.state("alice", cid).partner.withdrawn == amount, "Bob's withdraw mined")
        self.report.step(f"Bob withdraws {eth(amount)} from the Alice-Bob channel while it stays open "
                         "(Alice's node co-signed)", "payment becomes settlement whenever the payee wants, "
                         "no close and no new channel needed")

    async def cooperative_close(self) -> None:
        await self.stream(("alice",), "carol", 100)
        cid = self.cid_between("carol", "alice")
        await self.nodes["carol"].close(cid)
        await until(lambda: self.state("carol", cid).status is ChannelStatus.SETTLED, "cooperative settle")
        self.report.step(f"Alice pays Carol {eth(self.paid[('alice', 'carol')])}, then Carol closes that "
                         "channel cooperatively: both nodes signed the final split",
                         "paid out in one transaction, no challenge period to wait for")

    async def bob_answers_himself(self, nursery: trio.Nursery) -> None:
        cid = self.cid_between("alice", "bob")
        sent = self.state("alice", cid).our
        await self.stop("bob")
        self.report.step("Bob's node stops (its store is closed; it is offline)",
                         "a partner may vanish at any time; its latest proofs are safe on its disk")
        await self.nodes["alice"].close(cid, force=True)
        await until(lambda: self.state("alice", cid).status is ChannelStatus.CLOSED, "Alice's close mined")
        self.report.step(f"Alice closes unilaterally while Bob is away; on chain her {sent.nonce} payments "
                         f"to Bob ({eth(sent.transferred)}) count for nothing until he answers",
                         f"a closer submits only the partner's proof; Bob has {CHALLENGE_PERIOD} s to "
                         "submit hers")
        await self.start(nursery, "bob")
        await until(lambda: self._disputed("alice", cid, sent.nonce), "Bob's dispute mined")
        self.report.step(f"Bob's node comes back before the deadline, sees the close and submits Alice's "
                         f"latest proof (nonce {sent.nonce}) by itself",
                         "the durable proof plus the chain watcher: a stale close is answered without "
                         "any operator action")

    def _disputed(self, observer: str, cid: bytes, nonce: int) -> bool:
        """The closer's proof on chain (the one the partner submits) has `nonce`."""
        channel = self.nodes[observer].channels.entry(cid).onchain
        closing = channel.closing
        if closing is None:
            return False
        held = closing.proof1 if closing.closer == channel.state.participant1 else closing.proof2
        return held.nonce == nonce

    async def the_tower_answers(self, tower_uri: str) -> None:
        bob = self.nodes["bob"]
        bob.towers.add(tower_uri)
        client = bob.towers.clients[tower_uri]
        more = PAYMENTS // 3
        await self.stream(("carol",), "bob", more)
        await until(bob.towers.is_synced, "the tower to hold Carol's newest proof")
        pushes = client.statistics().pushes_sent
        self.report.figures["tower_pushes"] = pushes
        self.report.step(f"Bob delegates to a watchtower (`channeld watchtower add`); Carol pays him {more} "
                         f"more times; his node pushed her newest proof {pushes} times in all",
                         "pushes ride the event bus, off the payment path, and coalesce: only the newest "
                         "proof per channel matters")
        cid = self.cid_between("carol", "bob")
        sent = self.state("carol", cid).our
        await self.stop("bob")
        await self.nodes["carol"].close(cid, force=True)
        await until(lambda: self._disputed("carol", cid, sent.nonce), "the tower's dispute mined")
        self.report.step(f"Bob goes offline for good and Carol closes unilaterally; the tower submits her "
                         f"latest proof (nonce {sent.nonce}) with Bob's signed authorization",
                         "a node that stays offline longer than the challenge period is still safe")

    async def settle(self) -> None:
        closed = {payer: self.cid_between(payer, "bob", ChannelStatus.CLOSED) for payer in ("alice", "carol")}
        await self.setup_run(self.backend.advance_time, CHALLENGE_PERIOD + 1)
        for payer, cid in closed.items():
            await until(lambda n=payer, c=cid: self.state(n, c).status is ChannelStatus.SETTLED,  # type: ignore[misc]
                        f"{payer} settles with Bob")
        self.report.step(f"{CHALLENGE_PERIOD} s pass on the embedded chain; Alice's and Carol's nodes settle "
                         "both closed channels", "each side is paid its deposit plus what it received, "
                         "minus what it sent and withdrew; Bob never came back, and is paid in full")

    async def setup_run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await trio.to_thread.run_sync(fn, *args, limiter=self.setup.limiter)

    # --- the balances --------------------------------------------------------------------------------

    def balances(self) -> list[str]:
        ledger = read_ledger(self.backend, self.setup.contract, self.setup.deploy_block)
        for name, key in self.keys.items():
            row = {"start": self.start_balances[name], "deposited": ledger.deposited.get(key.address, 0),
                   "withdrawn": ledger.withdrawn.get(key.address, 0),
                   "paid_out": ledger.paid_out.get(key.address, 0),
                   "gas": gas_spent(self.backend, key.address, self.first_block),
                   "end": self.backend.balance(key.address)}
            expected = row["start"] - row["deposited"] + row["withdrawn"] + row["paid_out"] - row["gas"]
            if expected != row["end"]:
                raise DemoFailed(f"{name}'s balance does not add up: expected {expected}, found {row['end']}")
            self.report.balances.append({"account": f"{name} {key.address[:10]}…",
                                         **{k: str(v) for k, v in row.items()}})
        held = self.backend.balance(self.setup.contract)
        total_in = sum(ledger.deposited.values())
        total_out = sum(ledger.withdrawn.values()) + sum(ledger.paid_out.values())
        if held != 0 or total_in != total_out:
            raise DemoFailed(f"the contract holds {held} wei; {total_in} in, {total_out} out")
        bob = self.keys["bob"].address
        received = ledger.withdrawn.get(bob, 0) + ledger.paid_out.get(bob, 0)
        paid_to_bob = sum(amount for (_, payee), amount in self.paid.items() if payee == "bob")
        if received != paid_to_bob:
            raise DemoFailed(f"Bob received {received} on chain but was paid {paid_to_bob}")
        self.report.figures["paid_to_bob_wei"] = str(paid_to_bob)
        dave = self.keys["dave"].address
        if ledger.paid_out.get(dave, 0) != SHOP_PRICE or ledger.deposited.get(dave, 0) != 0:
            raise DemoFailed(f"Dave's shop was paid {ledger.paid_out.get(dave, 0)} on chain, "
                             f"not {SHOP_PRICE}")
        return ["every account: start - deposited + withdrawn + paid out - gas = end, to the wei",
                f"deposited {eth(total_in)} = withdrawn + paid out {eth(total_out)}; "
                f"the contract now holds {eth(held)}",
                f"Bob received on chain exactly what he was paid off-chain: {eth(received)}",
                f"Dave's shop received on chain exactly its price, paid two hops away: {eth(SHOP_PRICE)}"]


async def until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    with trio.move_on_after(timeout):
        while not predicate():
            await trio.sleep(0.02)
        return
    raise DemoFailed(f"timed out after {timeout:.0f} s waiting for: {what}")


def _config() -> Config:
    generous = RiskLimits(max_payment=ETH, max_per_peer_per_hour=100 * ETH, max_total_per_hour=100 * ETH,
                          max_channel_deposit=50 * ETH)
    return Config(node=NodeConfig(listen=HostPort("127.0.0.1", _free_port()),
                                  api=HostPort("127.0.0.1", _free_port()), log_level="warning"),
                  chain=ChainConfig(poll_interval=0.05), limits=generous,
                  routing=RoutingConfig(gossip_interval=0.2))


async def story(demo: Demo) -> None:
    async with trio.open_nursery() as nursery:
        for name in NAMES:
            await demo.start(nursery, name)
        tower_uri = await demo.start_tower(nursery)
        where = [f"{n} on {demo.nodes[n].uri.split('@')[1]}" for n in NAMES]
        demo.report.step(f"four nodes and a watchtower started in this process: {', '.join(where)}, "
                         f"tower on {tower_uri.split('@')[1]}",
                         "each has its own key and LevelDB store; they talk over loopback TCP, encrypted")
        await demo.open_channels()
        await demo.stream_payments()
        await demo.pay_the_shop_through_carol()
        await demo.withdraw_while_open()
        await demo.cooperative_close()
        await demo.shop_cashes_out()
        await demo.bob_answers_himself(nursery)
        await demo.the_tower_answers(tower_uri)
        await demo.settle()
        for name in list(demo.nodes):
            await demo.stop(name)
        nursery.cancel_scope.cancel()  # the tower
    demo.tower_db.close()
    demo.report.finish(demo.balances())


def _first(group: BaseExceptionGroup) -> BaseException:
    """The error a nursery wrapped, so that the CLI reports it as one line."""
    inner = group.exceptions[0]
    return _first(inner) if isinstance(inner, BaseExceptionGroup) else inner


def run(json_output: bool = False) -> int:
    report = Report(json_output)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="channeld-demo-") as root:
        demo = Demo(Path(root), report)
        try:
            trio.run(story, demo)
        except BaseExceptionGroup as group:
            raise _first(group) from None
    if not json_output:
        print(f"demo finished in {time.monotonic() - started:.1f} s", flush=True)
    return 0

