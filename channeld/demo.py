"""`channeld demo`: three real nodes in one process, one embedded chain, real loopback TCP.

Alice, Bob and Carol each run a full node (`channeld.node.Node`: LevelDB store, BOLT 8 sessions, chain
watcher, transaction outbox) in one trio run, all sharing one in-process EVM (eth-tester / py-evm), so
the first run needs nothing but pip. The story: open channels, stream direct payments (payments per
second are measured), withdraw while a channel stays open, close one channel cooperatively, stop Bob's
node, let Alice close unilaterally while he is away (her close carries none of the payments she made
him), bring Bob's node back before the deadline so that it disputes by itself, settle, and finish with a
table of every account's on-chain balance that is checked to add up to the wei. Data lives in a
temporary directory that is removed afterwards.
"""

from __future__ import annotations

import json
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import trio
from eth_account import Account

from channeld.chain import TransactionSender, TxRequest, deploy, load_artifact, start_embedded
from channeld.chain import contract as hub
from channeld.chain.backend import ChainBackend, embedded_fork_name
from channeld.config import ChainConfig, Config, HostPort, NodeConfig
from channeld.errors import LocalFault
from channeld.keys import NodeKey
from channeld.limits import RiskLimits
from channeld.node import ChainSetup, Node
from channeld.protocol import ChannelStatus

ETH = 10**18
FUNDING = 100 * ETH
CHALLENGE_PERIOD = 3600  # seconds; the embedded chain's clock is moved instead of waiting
PAYMENTS = 1500
PAYMENT = ETH // 1000
CONCURRENCY = 32
WAIT = 30.0  # seconds any one step may take before the demo gives up
NAMES = ("alice", "bob", "carol")


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
    figures: dict[str, float] = field(default_factory=dict)
    balances: list[dict[str, Any]] = field(default_factory=list)

    def step(self, what: str, why: str) -> None:
        self.steps.append(Step(what, why))
        if not self.json_output:
            print(f"{len(self.steps):>2}. {what}\n    why: {why}", flush=True)

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
    """The shared chain, the three nodes' data directories, and the story's steps."""

    def __init__(self, root: Path, report: Report) -> None:
        self.root = root
        self.report = report
        self.backend, funded = start_embedded(accounts=1)
        artifact = load_artifact("ChannelHub")
        payer = TransactionSender(self.backend, Account.from_key(funded[0]), artifact.abi)
        deployment = deploy(payer, artifact, [60, 30 * 24 * 3600])
        self.setup = ChainSetup(self.backend, deployment.address, deployment.block, trio.CapacityLimiter(1))
        self.keys = {name: NodeKey.generate() for name in NAMES}
        for key in self.keys.values():
            payer.transact(TxRequest(to=key.address, value=FUNDING, gas=21000))
        self.first_block = self.backend.head() + 1
        self.start_balances = {name: self.backend.balance(key.address) for name, key in self.keys.items()}
        self.configs = {name: _config(name) for name in NAMES}
        self.nodes: dict[str, Node] = {}
        self._stopped: dict[str, trio.Event] = {}
        report.step(f"ChannelHub deployed at {deployment.address} on the embedded EVM "
                    f"({embedded_fork_name(self.backend)}); three accounts funded with {eth(FUNDING)} each",
                    "no anvil, no compiler, no network: the first run needs only pip packages")

    # --- nodes ---------------------------------------------------------------------------------------

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

    def cid_between(self, name: str, partner: str) -> bytes:
        peer = bytes.fromhex(self.keys[partner].node_id)
        for cid, entry in self.nodes[name].channels.of_peer(peer):
            if entry.state.status is ChannelStatus.OPEN:
                return cid
        raise DemoFailed(f"{name} has no open channel with {partner}")

    def state(self, name: str, cid: bytes) -> Any:
        return self.nodes[name].channels.entry(cid).state

    # --- the story -----------------------------------------------------------------------------------

    async def open_channels(self) -> None:
        alice, bob, carol = (self.nodes[n] for n in NAMES)
        await alice.open_channel(bob.uri, 5 * ETH, challenge_period=CHALLENGE_PERIOD)
        await carol.open_channel(bob.uri, 2 * ETH, challenge_period=CHALLENGE_PERIOD)
        for payer in ("alice", "carol"):
            await until(lambda p=payer: self._open_on_both(p, "bob"), f"{payer}'s channel with bob")  # type: ignore[misc]
        self.report.step("Alice opens a channel to Bob with 5 ETH, Carol one to Bob with 2 ETH "
                         "(nodes dialled each other over BOLT 8 on loopback TCP)",
                         "one contract holds every channel; both nodes learn the channel from the chain")

    def _open_on_both(self, payer: str, payee: str) -> bool:
        try:
            cid = self.cid_between(payer, payee)
            return bool(self.state(payee, cid).status is ChannelStatus.OPEN)
        except (DemoFailed, LookupError, LocalFault):
            return False

    async def stream_payments(self) -> None:
        alice, bob, carol = (self.nodes[n] for n in NAMES)
        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for worker in range(CONCURRENCY):
                payer = alice if worker % 3 else carol
                nursery.start_soon(self._pay_many, payer, bob.node_id, PAYMENTS // CONCURRENCY)
        elapsed = time.perf_counter() - started
        count = CONCURRENCY * (PAYMENTS // CONCURRENCY)
        rate = count / elapsed
        self.report.figures.update({"payments": count, "payment_seconds": round(elapsed, 3),
                                    "payments_per_second": round(rate, 1)})
        paid_by_alice = self.state("alice", self.cid_between("alice", "bob")).our.transferred
        self.report.step(f"{count} direct payments of {eth(PAYMENT)} streamed to Bob in {elapsed:.2f} s: "
                         f"{rate:.0f} payments/s (Alice sent {eth(paid_by_alice)})",
                         "each is one signature by the payer, one check and one fsync by the payee; "
                         "the chain sees none of them")

    async def _pay_many(self, payer: Node, payee: bytes, count: int) -> None:
        for _ in range(count):
            result = await payer.pay(payee, PAYMENT)
            if result["status"] != "accepted":
                raise DemoFailed(f"a payment was not accepted: {result}")

    async def withdraw_while_open(self) -> None:
        cid = self.cid_between("bob", "alice")
        amount = ETH // 2
        await self.nodes["bob"].withdraw(cid, amount)
        await until(lambda: self.state("alice", cid).partner.withdrawn == amount, "Bob's withdraw mined")
        self.report.step(f"Bob withdraws {eth(amount)} from the Alice-Bob channel while it stays open "
                         "(Alice's node co-signed)", "payment becomes settlement whenever the payee wants, "
                         "no close and no new channel needed")

    async def cooperative_close(self) -> None:
        cid = self.cid_between("carol", "bob")
        await self.nodes["carol"].close(cid)
        await until(lambda: self.state("carol", cid).status is ChannelStatus.SETTLED, "cooperative settle")
        self.report.step("Carol closes her channel cooperatively: both nodes signed the final split",
                         "paid out in one transaction, no challenge period to wait for")

    async def close_while_bob_is_away(self, nursery: trio.Nursery) -> bytes:
        cid = self.cid_between("alice", "bob")
        sent = self.state("alice", cid).our
        await self.stop("bob")
        self.report.step("Bob's node stops (its store is closed; it is offline)",
                         "a partner may vanish at any time; its latest proofs are safe on its disk")
        await self.nodes["alice"].close(cid, force=True)
        await until(lambda: self.state("alice", cid).status is ChannelStatus.CLOSED, "Alice's close mined")
        self.report.step(f"Alice closes unilaterally while Bob is away; on chain her payments to Bob "
                         f"count for nothing until he answers (she signed {sent.nonce} proofs, "
                         f"{eth(sent.transferred)} in all)",
                         f"a closer submits only the partner's proof; Bob has {CHALLENGE_PERIOD} s to "
                         "submit hers")
        await self.start(nursery, "bob")
        await until(lambda: self._disputed(cid, sent.nonce), "Bob's dispute mined")
        self.report.step(f"Bob's node comes back before the deadline, sees the close and submits Alice's "
                         f"latest proof (nonce {sent.nonce}) by itself",
                         "the durable proof plus the chain watcher: a stale close is answered without "
                         "any operator action (a watchtower does the same when the node stays offline)")
        return cid

    def _disputed(self, cid: bytes, nonce: int) -> bool:
        closing = self.nodes["bob"].channels.entry(cid).onchain.closing
        if closing is None:
            return False
        held = closing.proof1 if closing.closer == closing_first(self.nodes["bob"], cid) else closing.proof2
        return held.nonce == nonce

    async def settle(self, cid: bytes) -> None:
        await self.setup_run(self.backend.advance_time, CHALLENGE_PERIOD + 1)
        for name in ("alice", "bob"):
            await until(lambda n=name: self.state(n, cid).status is ChannelStatus.SETTLED,  # type: ignore[misc]
                        f"{name} sees the settlement")
        self.report.step(f"{CHALLENGE_PERIOD} s pass on the embedded chain; the nodes settle the channel",
                         "each side is paid its deposit plus what it received, minus what it sent and "
                         "withdrew")

    async def setup_run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await trio.to_thread.run_sync(fn, *args, limiter=self.setup.limiter)

    # --- the balances --------------------------------------------------------------------------------

    def balances(self, paid_to_bob: dict[str, int]) -> list[str]:
        ledger = read_ledger(self.backend, self.setup.contract, self.setup.deploy_block)
        checks = []
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
        if received != sum(paid_to_bob.values()):
            raise DemoFailed(f"Bob received {received} on chain but was paid {sum(paid_to_bob.values())}")
        checks.append("every account: start - deposited + withdrawn + paid out - gas = end, to the wei")
        checks.append(f"deposited {eth(total_in)} = withdrawn + paid out {eth(total_out)}; "
                      f"the contract now holds {eth(held)}")
        checks.append(f"Bob received on chain exactly what he was paid off-chain: {eth(received)}")
        return checks


def closing_first(node: Node, cid: bytes) -> str:
    """The contract's participant1 of `cid` (proof1 is the proof participant1 signed)."""
    return node.channels.entry(cid).onchain.state.participant1


async def until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    with trio.move_on_after(timeout):
        while not predicate():
            await trio.sleep(0.02)
        return
    raise DemoFailed(f"timed out after {timeout:.0f} s waiting for: {what}")


def _config(name: str) -> Config:
    generous = RiskLimits(max_payment=ETH, max_per_peer_per_hour=100 * ETH, max_total_per_hour=100 * ETH,
                          max_channel_deposit=50 * ETH)
    return Config(node=NodeConfig(listen=HostPort("127.0.0.1", _free_port()),
                                  api=HostPort("127.0.0.1", _free_port()), log_level="warning"),
                  chain=ChainConfig(poll_interval=0.05), limits=generous)


async def story(demo: Demo) -> None:
    async with trio.open_nursery() as nursery:
        for name in NAMES:
            await demo.start(nursery, name)
        demo.report.step("three nodes started in this process: " + ", ".join(
            f"{n} on {demo.nodes[n].uri.split('@')[1]}" for n in NAMES),
            "each has its own LevelDB store and key; they talk over real loopback TCP, encrypted")
        await demo.open_channels()
        await demo.stream_payments()
        paid_to_bob = {payer: demo.state(payer, demo.cid_between(payer, "bob")).our.transferred
                       for payer in ("alice", "carol")}
        await demo.withdraw_while_open()
        await demo.cooperative_close()
        cid = await demo.close_while_bob_is_away(nursery)
        await demo.settle(cid)
        for name in list(demo.nodes):
            await demo.stop(name)
    demo.report.finish(demo.balances(paid_to_bob))


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

