"""`channeld demo`: four real nodes and a watchtower in one process, two embedded chains, loopback TCP.

Alice, Bob, Carol and Dave each run a full node (`channeld.node.Node`: LevelDB store, BOLT 8 sessions, chain
watcher, transaction outbox) in one trio run, sharing in-process EVMs (eth-tester / py-evm), so the first
run needs nothing but pip: the main chain, and a side chain with a chain id and ChannelHub of its own that
Alice, Carol and Dave serve as well; a standalone `Watchtower` (its own key, LevelDB and account) runs
beside them. The story: open channels, stream direct payments (payments per second are measured),
pay a shop (Dave) that only Carol has a channel with through Carol (a hash time-locked two-hop payment
under the shop's payment request); then across chains: Carol converts the main chain's coin into the side
chain's at a rate and fee she sets (`[[conversions]]`), opens a channel to Dave on the side chain, Dave's
shop asks to be paid there, and Alice pays from the main chain within a `max_spend` (one sha256 hash locks
both hops; the side chain's lock expires first). Then withdraw while a channel stays open, close three
channels cooperatively; stop Bob's node and let Alice close unilaterally while he is away (her close
carries none of the payments she made him), then bring Bob's node back before the deadline so that it
disputes by itself; let Bob delegate to the tower and vanish for good while Carol closes unilaterally, so
that the tower disputes for him; settle, and finish with a table of every account's balance on each chain,
checked to add up to the wei. Data lives in a temporary directory that is removed afterwards."""

from __future__ import annotations

import hashlib
import json
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import trio
from eth_account import Account

from channeld.chain import AsyncSender, TransactionSender, load_artifact
from channeld.chain.backend import embedded_fork_name
from channeld.chain.follower import EventFollower
from channeld.config import ChainConfig, Config, HostPort, NodeConfig, RoutingConfig
from channeld.config_conversions import AssetRef, ConversionConfig
from channeld.demo_chains import ETH, DemoChain, DemoFailed, coins, launch
from channeld.errors import LocalFault
from channeld.keys import NodeKey
from channeld.limits import RiskLimits
from channeld.node import Node
from channeld.protocol import ChannelStatus, EventLockReceived
from channeld.protocol._crosschain import crossing_margin
from channeld.store import Namespace
from channeld.watchtower import TowerDB, TowerSettings, Watchtower
from channeld.wire import Lock

FUNDING = 100 * ETH
CHALLENGE_PERIOD = 3600  # seconds; the embedded chain's clock is moved instead of waiting
PAYMENTS = 1500
PAYMENT = ETH // 1000
CONCURRENCY = 32
WAIT = 30.0  # seconds any one step may take before the demo gives up
NAMES = ("alice", "bob", "carol", "dave")
SHOP_PRICE = ETH // 100
CAROL_FEE_BASE = 10**12
# the side chain: its own chain id (every signature binds one, so nothing signed for one chain counts on
# the other) and its own coin; Alice, Carol and Dave serve it beside the main chain
SIDE_CHAIN_ID = 4242
SIDE_COIN = "SIDE"  # the side chain's native coin, as the demo names it
SIDE_SERVERS = ("alice", "carol", "dave")
SIDE_FUNDED = ("carol", "dave")  # the accounts that send transactions there
SIDE_DEPOSIT = ETH
SIDE_PRICE = 3 * ETH // 100
# Carol's conversion: 3 side-chain wei per 2 main-chain wei, and a fee (in the side coin) on what she forwards
CONVERSION = ConversionConfig(AssetRef(0, "main"), AssetRef(1, "side"), numerator=3, denominator=2,
                              fee_base=10**12, fee_ppm=1000)
ALICE_MAX_SPEND = 21 * ETH // 1000


def side_coins(wei: int) -> str:
    return coins(wei, SIDE_COIN)


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

        table = Table("chain", "account", "start", "deposited", "withdrawn", "paid out", "gas", "end",
                      title=f"on-chain balances (main chain in ETH, side chain in {SIDE_COIN})")
        for row in self.balances:
            amounts = (row[k] for k in ("start", "deposited", "withdrawn", "paid_out", "gas", "end"))
            table.add_row(row["chain"], row["account"], *(coins(int(a), "").strip() for a in amounts))
        Console(width=136).print(table)
        print("\n".join(checks))


# ------------------------------------------------------------------------------------------- the demo


class Demo:
    """The shared chains, the nodes' and the tower's data directories, and the story's steps."""

    def __init__(self, root: Path, report: Report) -> None:
        self.root = root
        self.report = report
        self.keys = {name: NodeKey.generate() for name in (*NAMES, "tower")}
        self.main = launch("main", None, {n: k.address for n, k in self.keys.items()}, FUNDING)
        self.side = launch("side", SIDE_CHAIN_ID, {n: self.keys[n].address for n in SIDE_FUNDED},
                           FUNDING)
        self.backend, self.setup = self.main.backend, self.main.setup
        self.configs = {name: _config(name) for name in NAMES}
        self.nodes: dict[str, Node] = {}
        self._stopped: dict[str, trio.Event] = {}
        self.paid: dict[tuple[str, str], int] = {}
        report.step(f"ChannelHub deployed at {self.setup.contract} on the embedded EVM "
                    f"({embedded_fork_name(self.backend)}); five accounts funded with {coins(FUNDING)} "
                    f"each; a side chain (chain id {SIDE_CHAIN_ID}) with a ChannelHub of its own, Carol and "
                    f"Dave funded there with {side_coins(FUNDING)} each",
                    "no anvil, no compiler, no network: the first run needs only pip packages")

    # --- nodes and the tower -------------------------------------------------------------------------

    async def start(self, nursery: trio.Nursery, name: str) -> Node:
        (self.root / name).mkdir(mode=0o700, exist_ok=True)
        setups = [self.setup, self.side.setup] if name in SIDE_SERVERS else [self.setup]
        node = Node(self.root / name, self.configs[name], self.keys[name], setups, api=False)
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
                                               load_artifact("ChannelHub").abi))
        settings = TowerSettings(poll_interval=0.05)
        self.tower = Watchtower(self.tower_db, key.private_key, settings, self.backend, sender,
                                self.setup.deploy_block)
        follower = EventFollower(self.backend, contract, self.tower_db, self.setup.deploy_block)
        port = await nursery.start(self.tower.run, follower, "127.0.0.1", 0)
        return f"{key.node_id}@127.0.0.1:{port}"

    def cid_between(self, name: str, partner: str, status: ChannelStatus = ChannelStatus.OPEN,
                    chain: DemoChain | None = None) -> bytes:
        """The channel between two nodes on `chain` (default: the main one) in `status`."""
        peer = bytes.fromhex(self.keys[partner].node_id)
        chain_id = (chain or self.main).chain_id
        for cid, entry in self.nodes[name].channels.of_peer(peer):
            if entry.state.status is status and entry.ns.chain_id == chain_id:
                return cid
        raise DemoFailed(f"{name} has no {status.name.lower()} channel with {partner}")

    def state(self, name: str, cid: bytes) -> Any:
        return self.nodes[name].channels.entry(cid).state

    # --- the story -----------------------------------------------------------------------------------

    async def open_channels(self) -> None:
        alice, bob, carol, dave = (self.nodes[n] for n in NAMES)
        await alice.open_channel(bob.uri, 5 * ETH, challenge_period=CHALLENGE_PERIOD, chain="main")
        await carol.open_channel(bob.uri, 2 * ETH, challenge_period=CHALLENGE_PERIOD, chain="main")
        await alice.open_channel(carol.uri, ETH, challenge_period=CHALLENGE_PERIOD, chain="main")
        await carol.open_channel(dave.uri, ETH, challenge_period=CHALLENGE_PERIOD, chain="main")
        for payer, payee in (("alice", "bob"), ("carol", "bob"), ("alice", "carol"), ("carol", "dave")):
            await until(lambda p=payer, q=payee: self._open_on_both(p, q),  # type: ignore[misc]
                        f"{payer}'s channel with {payee}")
        self.report.step("Alice opens channels to Bob (5 ETH) and Carol (1 ETH), Carol to Bob (2 ETH) and to "
                         "Dave's shop (1 ETH); "
                         "the nodes dial each other over BOLT 8 on loopback TCP",
                         "one contract holds every channel; both partners learn each channel from the chain")

    def _open_on_both(self, payer: str, payee: str, chain: DemoChain | None = None) -> bool:
        try:
            cid = self.cid_between(payer, payee, chain=chain)
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
        self.report.step(f"{PAYMENTS} direct payments of {coins(PAYMENT)} streamed to Bob by Alice and Carol "
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
        self.report.step(f"Dave's shop issues a payment request for {coins(SHOP_PRICE)}; Alice, who has no "
                         f"channel with Dave, pays it through Carol (fee {coins(int(result['fees']))}): Dave "
                         "reveals the secret only once the full amount is locked to him, and each hop "
                         "unlocks backwards", "a payment crosses channels without trusting the node in "
                         "the middle: every hop is paid, or none (sha256 hash time-locks)")

    async def _pay_when_routed(self, payer: Node, request: str, **terms: Any) -> dict[str, Any]:
        """Pay `request` (`terms`: `pay`'s caps and chain), retrying while gossip has not yet brought the
        payer a route (nothing is locked meanwhile)."""
        with trio.move_on_after(WAIT):
            while True:
                try:
                    return await payer.requests.pay(request, **(terms or {"max_fee": ETH // 1000}))
                except LocalFault as exc:
                    if "NoRoute" not in str(exc):
                        raise
                await trio.sleep(0.1)
        raise DemoFailed("timed out waiting for a route from Alice to Dave")

    # --- across chains -------------------------------------------------------------------------------

    async def open_side_channel(self) -> None:
        await self.nodes["carol"].open_channel(self.nodes["dave"].uri, SIDE_DEPOSIT,
                                               challenge_period=CHALLENGE_PERIOD, chain="side")
        await until(lambda: self._open_on_both("carol", "dave", self.side), "Carol's side-chain channel")
        terms = CONVERSION.terms()
        rate = f"{terms.numerator}/{terms.denominator} {SIDE_COIN} per ETH"
        self.report.step(f"Carol, who serves both chains, opens a channel to Dave's shop on the side chain "
                         f"({side_coins(SIDE_DEPOSIT)}) and announces that she converts ETH on the main "
                         f"chain into {SIDE_COIN} at {rate}, fee {side_coins(terms.fees.base)} + "
                         f"{terms.fees.ppm} ppm (`[[conversions]]` in her config)",
                         "a rate is a signed announcement, gossiped like a fee policy: payers route over it")

    async def pay_across_chains(self) -> None:
        """Dave's shop asks to be paid on the side chain; Alice pays from the main chain through Carol."""
        alice, dave = self.nodes["alice"], self.nodes["dave"]
        into_carol = self.cid_between("carol", "alice")
        into_dave = self.cid_between("dave", "carol", chain=self.side)
        before = {"alice": self.state("alice", into_carol).our.transferred,
                  "carol_in": self.state("carol", into_carol).partner.transferred,
                  "dave": self.state("dave", into_dave).partner.transferred}
        request = (await dave.requests.issue(SIDE_PRICE, "a coffee, paid on the side chain",
                                             chain="side"))["request"]
        needed = CONVERSION.terms().amount_in(SIDE_PRICE)
        await self._refused_over_the_cap(request, needed - 1, into_carol)
        with self._locks_received(("carol", into_carol), ("dave", into_dave)) as locks:
            result = await self._pay_when_routed(alice, request, max_spend=ALICE_MAX_SPEND, chain="main")
            if result["status"] != "accepted":
                raise DemoFailed(f"the cross-chain payment was not accepted: {result}")
            paid = before["dave"] + SIDE_PRICE
            await until(lambda: self.state("dave", into_dave).partner.transferred == paid
                        and not self.state("dave", into_dave).partner.locks, "Carol's unlock to Dave on side")
            await until(lambda: not self.state("carol", into_carol).partner.locks, "Alice's unlock to Carol")
        spent = self.state("alice", into_carol).our.transferred - before["alice"]
        carol_in = self.state("carol", into_carol).partner.transferred - before["carol_in"]
        if not int(result["spent"]) == spent == carol_in == needed <= ALICE_MAX_SPEND:
            raise DemoFailed(f"Alice spent {spent} (reported {result['spent']}), Carol took in {carol_in}; "
                             f"the rate asks {needed}, capped at {ALICE_MAX_SPEND}")
        self._report_across(spent, self._check_locks(bytes.fromhex(result["preimage"][2:]), locks))

    async def _refused_over_the_cap(self, request: str, cap: int, first_hop: bytes) -> None:
        """Alice offers one wei less than the rate asks: refused before anything is locked (retried while
        gossip has not yet brought her the route, so that it is the cap that refuses)."""
        nonce = self.state("alice", first_hop).our.nonce
        refused = False
        with trio.move_on_after(WAIT):
            while not (refused := await self._refused(request, cap)):
                await trio.sleep(0.1)
        if not refused:
            raise DemoFailed("timed out waiting for a route from Alice to Dave's shop across chains")
        if self.state("alice", first_hop).our.nonce != nonce or self.state("alice", first_hop).our.locks:
            raise DemoFailed("the refused cross-chain payment changed Alice's channel")
        self.report.figures["crosschain_refused_cap_wei"] = str(cap)

    async def _refused(self, request: str, cap: int) -> bool:
        """True when paying `request` within `cap` is refused for the cap; False while there is no route."""
        try:
            await self.nodes["alice"].requests.pay(request, max_spend=cap, chain="main")
        except LocalFault as exc:
            if "NoRoute" in str(exc):
                return False
            if "SpendCapExceeded" in str(exc):
                return True
            raise
        raise DemoFailed(f"a payment capped at {cap}, below what the rate asks, went through")

    @contextmanager
    def _locks_received(self, *where: tuple[str, bytes]) -> Iterator[dict[str, Lock]]:
        """The lock each named node receives on the given channel while the block runs."""
        locks: dict[str, Lock] = {}
        added = []
        for name, cid in where:
            def seen(channel: bytes, effects: list[Any], name: str = name, cid: bytes = cid) -> None:
                for effect in effects:
                    if channel == cid and isinstance(effect, EventLockReceived):
                        locks[name] = effect.lock
            listeners = self.nodes[name].channels.applied_listeners
            listeners.append(seen)
            added.append((listeners, seen))
        try:
            yield locks
        finally:
            for listeners, listener in added:
                listeners.remove(listener)

    def _check_locks(self, preimage: bytes, locks: dict[str, Lock]) -> tuple[int, int]:
        """Both hops locked under the request's sha256 hash; the side chain's lock expiring first, by at
        least the margin Carol keeps (her main-chain claim after a last-moment reveal on the side chain).
        Returns the gap between the two expiries and that margin, in seconds."""
        main_lock, side_lock = locks["carol"], locks["dave"]
        if not main_lock.secrethash == side_lock.secrethash == hashlib.sha256(preimage).digest():
            raise DemoFailed("the two chains' locks are not under the payment's sha256 hash")
        main, side = self.configs["carol"].chain_list()
        margin = crossing_margin(side.timing(self.side.chain_id), main.timing(self.main.chain_id))
        gap = main_lock.expiration - side_lock.expiration
        if gap < margin:
            raise DemoFailed(f"the side-chain lock expires {gap} s before the main-chain one, not {margin}")
        return gap, margin

    def _report_across(self, spent: int, expiries: tuple[int, int]) -> None:
        terms, (gap, margin) = CONVERSION.terms(), expiries
        earned = terms.value_of(spent) - SIDE_PRICE  # what Carol took in, at her own rate, less what she paid
        if earned < terms.fees.fee(SIDE_PRICE):
            raise DemoFailed(f"Carol earned {earned} wei of {SIDE_COIN}, less than her fee")
        self.report.figures.update({"crosschain_price_wei": str(SIDE_PRICE),
                                    "crosschain_spent_wei": str(spent),
                                    "crosschain_max_spend_wei": str(ALICE_MAX_SPEND),
                                    "crosschain_carol_earned_wei": str(earned),
                                    "crosschain_lock_gap_seconds": gap, "crosschain_margin_seconds": margin})
        self.report.step(
            f"Dave's shop issues a payment request for {side_coins(SIDE_PRICE)} on the side chain; Alice "
            f"pays it from the main chain: with max_spend one wei below what Carol's rate asks it is refused "
            f"before anything is locked, with max_spend {coins(ALICE_MAX_SPEND)} it goes through. Dave "
            f"received exactly {side_coins(SIDE_PRICE)} on the side chain, Alice spent {coins(spent)} on "
            f"the main chain, all of it to Carol, who earned {side_coins(earned)} at her own rate (each "
            "checked to the wei)",
            f"one sha256 hash locks both chains' hops, so Dave's reveal completes both or neither; the lock "
            f"on the side chain expires first ({gap} s before the main chain's, at least the {margin} s "
            "Carol needs to claim hers once Dave's secret is public)")

    async def shop_cashes_out(self) -> None:
        cids = [self.cid_between("dave", "carol", chain=chain) for chain in (self.main, self.side)]
        for cid in cids:
            await self.nodes["dave"].close(cid)
        for cid in cids:
            await until(lambda c=cid: self.state("dave", c).status is ChannelStatus.SETTLED,  # type: ignore[misc]
                        "Dave's cooperative close")
        self.report.step("Dave's shop closes its channels with Carol cooperatively, on both chains",
                         f"Dave is paid {coins(SHOP_PRICE)} on the main chain for a sale made off-chain two "
                         f"hops away, and {side_coins(SIDE_PRICE)} on the side chain for one paid from "
                         "another chain")

    async def withdraw_while_open(self) -> None:
        cid = self.cid_between("bob", "alice")
        amount = ETH // 2
        await self.nodes["bob"].withdraw(cid, amount)
        await until(lambda: self.state("alice", cid).partner.withdrawn == amount, "Bob's withdraw mined")
        self.report.step(f"Bob withdraws {coins(amount)} from the Alice-Bob channel while it stays open "
                         "(Alice's node co-signed)", "payment becomes settlement whenever the payee wants, "
                         "no close and no new channel needed")

    async def cooperative_close(self) -> None:
        await self.stream(("alice",), "carol", 100)
        cid = self.cid_between("carol", "alice")
        await self.nodes["carol"].close(cid)
        await until(lambda: self.state("carol", cid).status is ChannelStatus.SETTLED, "cooperative settle")
        self.report.step(f"Alice pays Carol {coins(self.paid[('alice', 'carol')])}, then Carol closes that "
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
                         f"to Bob ({coins(sent.transferred)}) count for nothing until he answers",
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
        main_rows, ledger = self.main.balance_rows()
        side_rows, side = self.side.balance_rows()
        self.report.balances += main_rows + side_rows
        bob = self.keys["bob"].address
        received = ledger.withdrawn.get(bob, 0) + ledger.paid_out.get(bob, 0)
        paid_to_bob = sum(amount for (_, payee), amount in self.paid.items() if payee == "bob")
        if received != paid_to_bob:
            raise DemoFailed(f"Bob received {received} on chain but was paid {paid_to_bob}")
        self.report.figures["paid_to_bob_wei"] = str(paid_to_bob)
        dave = self.keys["dave"].address
        for chain, book, price in ((self.main, ledger, SHOP_PRICE), (self.side, side, SIDE_PRICE)):
            if book.paid_out.get(dave, 0) != price or book.deposited.get(dave, 0) != 0:
                raise DemoFailed(f"Dave's shop was paid {book.paid_out.get(dave, 0)} on {chain.name}, "
                                 f"not {price}")
        total_in = {c.name: sum(b.deposited.values()) for c, b in ((self.main, ledger), (self.side, side))}
        return ["every account on each chain: start - deposited + withdrawn + paid out - gas = end, "
                "to the wei",
                f"main: deposited {coins(total_in['main'])} = withdrawn + paid out; side: deposited "
                f"{side_coins(total_in['side'])} = paid out; each contract now holds 0",
                f"Bob received on chain exactly what he was paid off-chain: {coins(received)}",
                f"Dave's shop received on chain exactly its price, paid two hops away: {coins(SHOP_PRICE)}",
                f"Dave's shop received on the side chain exactly its price, paid from the main chain: "
                f"{side_coins(SIDE_PRICE)}"]


async def until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    with trio.move_on_after(timeout):
        while not predicate():
            await trio.sleep(0.02)
        return
    raise DemoFailed(f"timed out after {timeout:.0f} s waiting for: {what}")


def _config(name: str) -> Config:
    """A node's config: the main chain (and the side chain, for the nodes that serve it), generous risk
    limits, fast gossip; Carol's routing fee and her conversion."""
    generous = RiskLimits(max_payment=ETH, max_per_peer_per_hour=100 * ETH, max_total_per_hour=100 * ETH,
                          max_channel_deposit=50 * ETH)
    main = ChainConfig(poll_interval=0.05, name="main")
    chains = (main, replace(main, name="side", chain_id=SIDE_CHAIN_ID)) if name in SIDE_SERVERS else ()
    carol = name == "carol"
    return Config(node=NodeConfig(listen=HostPort("127.0.0.1", _free_port()),
                                  api=HostPort("127.0.0.1", _free_port()), log_level="warning"),
                  chain=main, chains=chains, limits=generous,
                  routing=RoutingConfig(gossip_interval=0.2, fee_base=CAROL_FEE_BASE if carol else 0),
                  conversions=(CONVERSION,) if carol else ())


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
        await demo.open_side_channel()
        await demo.pay_across_chains()
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

