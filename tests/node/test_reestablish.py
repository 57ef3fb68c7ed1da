"""Re-establishment under fault injection: two in-process nodes over real loopback TCP on a real anvil.

For every channel message that flows during payments (direct, refused, paid requests), withdraws and a
cooperative settle, and for the connection-level `Reestablish` and `ChannelOpened`, with each of the two
nodes as its sender, the connection is cut just before and just after the message is sent
(`channeld.transport.FaultPlan`). The dialling node reconnects by itself, both sides re-establish, and
then every payment must have ended exactly once on both sides: equal proofs, balances and nonces,
nothing in flight or held, each payment id in the payer's audit log once as sent and in the payee's once
as received. A storm of cuts on both sides during pipelined bursts each way checks the same. The last
tests cover the pending-channel limit: a peer announcing channels the chain has not shown is dropped
past `transport.max_pending_channels`, and the node keeps serving its partners.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import coincurve
import pytest
import trio

from channeld.chain import connect_rpc, find_deploy_block
from channeld.config import Config, TransportConfig
from channeld.errors import ConfigError, LocalFault
from channeld.keys import NodeKey
from channeld.limits import RiskLimits
from channeld.node import ChainSetup, Node
from channeld.node._node import transport_limits
from channeld.protocol import ChannelState, ChannelStatus, KnownKey, Side
from channeld.transport import Cut, CutPoint, FaultPlan, InjectedCut, Session, SessionManager
from channeld.wire import (
    PROTOCOL_VERSION,
    ChannelOpened,
    Error,
    Init,
    LockedTransfer,
    Message,
    Payment,
    PaymentAccepted,
    PaymentRefused,
    Reestablish,
    SecretReveal,
    SettleRequest,
    SettleSignature,
    Unlock,
    WithdrawRequest,
    WithdrawSignature,
)
from tests.node.inprocess import anvil_node_config
from tests.node.inprocess import until as shared_until
from tests.tools import Anvil

ETH = 10**18
DEPOSIT = ETH
SEED = ETH // 10  # paid A -> B before any fault, so that B can pay A back
AMOUNT = ETH // 1000
WAIT = 20.0


def _config() -> Config:
    return anvil_node_config(RiskLimits(max_payment=ETH, max_per_peer_per_hour=100 * ETH,
                                        max_total_per_hour=100 * ETH, max_channel_deposit=50 * ETH))


async def until(predicate: Callable[[], object], what: str, timeout: float = WAIT) -> None:
    await shared_until(predicate, what, timeout)


@dataclass
class Pair:
    """Nodes A (the opener, which dials and redials) and B, with one channel between them."""

    a: Node
    b: Node
    cid: bytes = b""
    paid: dict[str, dict[int, int]] = field(default_factory=lambda: {"a": {}, "b": {}})  # id -> amount

    def node(self, name: str) -> Node:
        return self.a if name == "a" else self.b

    def state(self, name: str) -> ChannelState:
        return self.node(name).channels.entry(self.cid).state

    async def pay(self, payer: str, amount: int, count: int = 1, status: str = "accepted") -> None:
        """`count` concurrent payments; each must end with `status` (after reconnects if need be)."""
        node, payee = self.node(payer), self.node("b" if payer == "a" else "a")

        async def one() -> None:
            result = await node.pay(payee.node_id, amount, timeout=WAIT)
            assert result["status"] == status, result
            self.paid[payer][int(result["payment_id"])] = amount

        async with trio.open_nursery() as nursery:
            for _ in range(count):
                nursery.start_soon(one)


async def start_nodes(root: Path, chain: tuple[Anvil, str], nursery: trio.Nursery, *names: str) -> list[Node]:
    anvil, contract = chain
    rpc = connect_rpc(anvil.url)
    deploy_block = find_deploy_block(rpc, contract)
    nodes = []
    for name in names:
        key = NodeKey.generate()
        rpc.rpc("anvil_setBalance", [key.address, hex(100 * ETH)])
        (root / name).mkdir(mode=0o700)
        setup = ChainSetup(connect_rpc(anvil.url), contract, deploy_block)
        node = Node(root / name, _config(), key, setup, api=False)
        nodes.append(await nursery.start(node.run))
    return nodes


@pytest.fixture
async def pair(tmp_path: Path, chain: tuple[Anvil, str], nursery: trio.Nursery) -> AsyncIterator[Pair]:
    a, b = nodes = await start_nodes(tmp_path, chain, nursery, "a", "b")
    pair = Pair(a, b)
    await pair.a.open_channel(pair.b.uri, DEPOSIT, challenge_period=3600)
    await until(lambda: _open_on_both(pair), "the channel open on both nodes")
    await pair.pay("a", SEED)
    await until(lambda: agreed(pair), "agreement after the seed payment")
    yield pair
    for node in nodes:
        node.stop()


def _open_on_both(pair: Pair) -> bool:
    found = [cid for cid, e in pair.a.channels.of_peer(pair.b.node_id)
             if e.state.status is ChannelStatus.OPEN]
    if not found:
        return False
    pair.cid = found[0]
    entry = pair.b.channels.channels.get(pair.cid)
    # a channel's clock starts with the watcher's next tick; a withdraw before it would be refused
    ticked = entry is not None and entry.state.now > 0 and pair.a.channels.entry(pair.cid).state.now > 0
    return ticked and entry is not None and entry.state.partner.deposit == DEPOSIT


def agreed(pair: Pair) -> bool:
    a, b = pair.a.channels.entry(pair.cid).state, pair.b.channels.entry(pair.cid).state
    return (a.our.proof == b.partner.proof and b.our.proof == a.partner.proof
            and not (a.in_flight or b.in_flight or a.held or b.held)
            and a.our_balance() == b.partner_balance() and b.our_balance() == a.partner_balance())


def payments_in_audit(node: Node) -> collections.Counter[tuple[str, int]]:
    found: collections.Counter[tuple[str, int]] = collections.Counter()
    for entry in node.store.iter_audit():
        record = entry.record
        if record.kind in ("payment_sent", "payment_received"):
            found[(record.kind, int.from_bytes(record.payment_id, "big"))] += 1
    return found


def assert_exactly_once(pair: Pair) -> None:
    assert agreed(pair)
    for payer, payee in (("a", "b"), ("b", "a")):
        sent, received = payments_in_audit(pair.node(payer)), payments_in_audit(pair.node(payee))
        for payment_id in pair.paid[payer]:
            assert sent[("payment_sent", payment_id)] == 1, (payer, payment_id, sent)
            assert received[("payment_received", payment_id)] == 1, (payee, payment_id, received)
        assert sorted(pid for kind, pid in sent if kind == "payment_sent") == sorted(pair.paid[payer])
        assert sorted(pid for kind, pid in received if kind == "payment_received") == sorted(pair.paid[payer])
        assert all(count == 1 for count in sent.values())
    a, b = pair.a.channels.entry(pair.cid).state, pair.b.channels.entry(pair.cid).state
    assert a.our.transferred == b.partner.transferred == sum(pair.paid["a"].values())
    assert b.our.transferred == a.partner.transferred == sum(pair.paid["b"].values())


# --- workloads: each makes `sender` send the message type at least once -----------------------------------

Workload = Callable[[Pair, str, str], Awaitable[None]]


async def payments(pair: Pair, payer: str, payee: str) -> None:
    await pair.pay(payer, AMOUNT, count=3)


async def payments_one_by_one(pair: Pair, payer: str, payee: str) -> None:
    """Three payments in turn, so that each gets an acknowledgement of its own (a burst may get one)."""
    for _ in range(3):
        await pair.pay(payer, AMOUNT)


async def reconnect_while_paying(pair: Pair, sender: str, partner: str) -> None:
    """Connection-level messages go out on every connect: drop the session once, with payments flowing."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pair.pay, "a", AMOUNT, 3)
        nursery.start_soon(pair.pay, "b", AMOUNT, 3)
        await trio.sleep(0)
        await _drop_session(pair)


async def withdraw(pair: Pair, withdrawer: str, partner: str) -> None:
    node = pair.node(withdrawer)
    await node.withdraw(pair.cid, AMOUNT)
    await until(lambda: all(pair.node(n).channels.entry(pair.cid).state.status is ChannelStatus.OPEN
                            and _side(pair, n, withdrawer).withdrawn == AMOUNT for n in ("a", "b")),
                "the withdraw seen on chain by both")
    await pair.pay(withdrawer, AMOUNT)  # the channel still carries payments afterwards


def _side(pair: Pair, viewer: str, who: str) -> Side:
    state = pair.node(viewer).channels.entry(pair.cid).state
    return state.our if viewer == who else state.partner


async def refused_until_the_deposit_is_seen(pair: Pair, payer: str, payee: str) -> None:
    """The payee refuses a payment backed by a deposit it has not seen yet (its chain access is held).

    The refused proof stays in flight at the payer; once the payee has seen the deposit, the next
    re-establishment offers it again and it is accepted, exactly once.
    """
    paying, refusing = pair.node(payer), pair.node(payee)
    believed = refusing.channels.entry(pair.cid).state.partner_balance()
    extra = ETH // 10
    async with refusing.chain.limiter:  # the payee's view of the chain stands still meanwhile
        old = paying.channels.entry(pair.cid).state.our.deposit
        await paying.deposit(pair.cid, extra)
        await until(lambda: paying.channels.entry(pair.cid).state.our.deposit == old + extra,
                    "the payer seeing its own deposit")
        await pair.pay(payer, believed + AMOUNT, status="refused")
        faults = refusing.peers.manager.faults
        assert faults is not None and faults.fired, "the refusal was cut"
    await until(lambda: refusing.channels.entry(pair.cid).state.partner.deposit == old + extra,
                "the payee seeing the deposit")
    await _drop_session(pair)  # the protocol offers a refused proof again only on re-establishment


async def _drop_session(pair: Pair) -> None:
    await until(lambda: pair.a.peers.is_connected(pair.b.node_id), "a session to drop")
    session = pair.a.peers.manager.session_for(pair.b.node_id)
    assert session is not None
    session.close(InjectedCut("test: drop the session to force re-establishment"))


async def request_paid_with_receipt(pair: Pair, payer: str, payee: str) -> None:
    """A payment request paid directly: the payee answers the payment with the preimage (the receipt)."""
    issued = pair.node(payee).requests.create(AMOUNT, "reestablish")
    result = await pair.node(payer).requests.pay(str(issued["request"]))
    assert result["status"] == "accepted", result
    pair.paid[payer][int(result["payment_id"])] = AMOUNT
    assert result["preimage"] is not None, "the payer never got its receipt"


async def cooperative_settle(pair: Pair, requester: str, partner: str) -> None:
    await pair.node(requester).close(pair.cid)
    await until(lambda: all(pair.node(n).channels.entry(pair.cid).state.status is ChannelStatus.SETTLED
                            for n in ("a", "b")), "the cooperative settle seen by both")


# message type, whether the initiator of the workload sends it, the workload, how many of it pass first
CASES: dict[str, tuple[type[Message], bool, Workload, int]] = {
    "Payment": (Payment, True, payments, 0),
    "Payment-2nd-of-3": (Payment, True, payments, 1),  # mid-burst: the payee holds n=1, lacks n=2, 3
    "PaymentAccepted": (PaymentAccepted, False, payments, 0),
    "PaymentAccepted-2nd-of-3": (PaymentAccepted, False, payments_one_by_one, 1),
    "PaymentRefused": (PaymentRefused, False, refused_until_the_deposit_is_seen, 0),
    "SecretReveal": (SecretReveal, False, request_paid_with_receipt, 0),
    "WithdrawRequest": (WithdrawRequest, True, withdraw, 0),
    "WithdrawSignature": (WithdrawSignature, False, withdraw, 0),
    "SettleRequest": (SettleRequest, True, cooperative_settle, 0),
    "SettleSignature": (SettleSignature, False, cooperative_settle, 0),
    "Reestablish": (Reestablish, True, reconnect_while_paying, 0),
    "ChannelOpened": (ChannelOpened, True, reconnect_while_paying, 0),
}


@pytest.mark.parametrize("point", list(CutPoint), ids=lambda p: p.value)
@pytest.mark.parametrize("sender", ["a", "b"])
@pytest.mark.parametrize("case", list(CASES))
async def test_cut_around_each_message_and_every_payment_ends_exactly_once(
        pair: Pair, case: str, sender: str, point: CutPoint) -> None:
    message, sender_initiates, workload, skip = CASES[case]
    other = "b" if sender == "a" else "a"
    initiator, responder = (sender, other) if sender_initiates else (other, sender)
    cut = Cut(message, point, skip)
    plan = FaultPlan(cut)
    pair.node(sender).peers.manager.faults = plan
    with trio.fail_after(WAIT * 2):
        await workload(pair, initiator, responder)
    assert plan.fired == [cut], plan
    await until(lambda: agreed(pair) and pair.a.peers.is_connected(pair.b.node_id),
                "re-established agreement")
    if pair.state("a").status is ChannelStatus.OPEN:
        await pair.pay(other, AMOUNT)  # still carries payments after the cut, both ways
        await pair.pay(sender, AMOUNT)
        await until(lambda: agreed(pair), "agreement after the last payments")
    assert_exactly_once(pair)


async def test_many_cuts_on_both_sides_while_payments_stream_both_ways(pair: Pair) -> None:
    """Cuts at both nodes, in the middle of pipelined bursts each way: still exactly once."""
    plans = {}
    for name, offset in (("a", 0), ("b", 1)):
        cuts = [Cut(kind, point, skip) for skip in (2 + offset, 9 + offset, 17 + offset)
                for kind, point in ((Payment, CutPoint.BEFORE_SEND), (PaymentAccepted, CutPoint.AFTER_SEND))]
        plans[name] = pair.node(name).peers.manager.faults = FaultPlan(*cuts)

    async def bursts(payer: str) -> None:
        for _ in range(4):
            await pair.pay(payer, AMOUNT, 6)

    with trio.fail_after(WAIT * 2):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bursts, "a")
            nursery.start_soon(bursts, "b")
    await until(lambda: agreed(pair), "agreement after the storm")
    for plan in plans.values():  # 24 payments each way: every cut of a Payment (skip <= 18) fired
        assert len([cut for cut in plan.fired if cut.message is Payment]) == 3, plan
    assert len(pair.paid["a"]) == 1 + 24 and len(pair.paid["b"]) == 24
    assert_exactly_once(pair)


# --- the pending-channel limit --------------------------------------------------------------------------


async def test_a_peer_flooding_announcements_of_unknown_channels_is_refused_past_the_limit(
        pair: Pair, nursery: trio.Nursery) -> None:
    node = pair.b
    limit = node.config.transport.max_pending_channels
    heard: list[Message] = []

    async def listen(session: Session) -> None:
        async for message in session:
            heard.append(message)

    key = coincurve.PrivateKey()
    flooder = SessionManager(key, Init(PROTOCOL_VERSION, b"", node.chain_id, node.ns.contract), listen)
    await nursery.start(_hold, flooder)
    session = await flooder.connect(node.uri)
    ours, theirs = KnownKey(key.public_key.format()).address, bytes.fromhex(node.key.address[2:])
    first, second = sorted((ours, theirs))

    def announce(cid: bytes) -> None:
        session.send_nowait(ChannelOpened(node.chain_id, node.ns.contract, cid, first, second, 3600))

    for _ in range(3 * limit):
        announce(b"\x01" * 32)  # the same unknown channel again and again counts once
    for number in range(2, limit + 1):
        announce(number.to_bytes(32, "big"))
    await trio.sleep(0.2)
    assert not session.closed, session.close_reason  # the limit itself is tolerated
    announce(b"\xff" * 32)
    with trio.fail_after(5):
        await session.wait_closed()
    errors = [m for m in heard if isinstance(m, Error)]  # (the node may also gossip its channels)
    assert [(e.channel_id, e.code) for e in errors] == [(b"\xff" * 32, 16)], errors
    assert "not open on chain" in errors[0].text
    # the node still serves its partners
    await pair.pay("a", AMOUNT)
    await pair.pay("b", AMOUNT)
    await until(lambda: agreed(pair), "agreement with the honest partner")
    assert_exactly_once(pair)


def test_the_pending_channel_limit_is_configurable_and_validated() -> None:
    assert TransportConfig(max_pending_channels=3).max_pending_channels == 3
    limits = transport_limits(Config(transport=TransportConfig(max_pending_channels=3)))
    assert limits.max_pending_channels == 3
    for bad in (0, -1, 10_001):
        with pytest.raises(ConfigError):
            TransportConfig(max_pending_channels=bad)


async def _hold(manager: SessionManager, *, task_status: trio.TaskStatus[None]) -> None:
    async with manager:
        task_status.started()
        await trio.sleep_forever()


# --- multi-hop: cuts at the mediator of a line A - B - C --------------------------------------------------


@pytest.fixture
async def line(tmp_path: Path, chain: tuple[Anvil, str], nursery: trio.Nursery) -> AsyncIterator[list[Pair]]:
    """A-B (funded by A) and B-C (funded by B), each seeded the other way so that both directions pay."""
    a, b, c = await start_nodes(tmp_path, chain, nursery, "a", "b", "c")
    links = [Pair(a, b), Pair(b, c)]
    for link in links:
        await link.a.open_channel(link.b.uri, DEPOSIT, challenge_period=3600)
        await until(lambda link=link: _open_on_both(link), "a channel of the line open")  # type: ignore[misc]
        await link.pay("a", SEED)
        await until(lambda link=link: agreed(link), "agreement after the seed")  # type: ignore[misc]
    yield links
    for node in (a, b, c):
        node.stop()


async def pay_request_routed(payer: Node, payee: Node, amount: int) -> dict[str, object]:
    """Pay a fresh request of `payee` through the line, retrying while gossip has not brought a route."""
    text = str(payee.requests.create(amount, "routed")["request"])
    with trio.fail_after(WAIT):
        while True:
            try:
                return await payer.requests.pay(text)
            except LocalFault as exc:
                if "NoRoute" not in str(exc) and "no path" not in str(exc):
                    raise
            await trio.sleep(0.05)


@pytest.mark.parametrize("point", list(CutPoint), ids=lambda p: p.value)
@pytest.mark.parametrize("payer", ["a", "c"])
@pytest.mark.parametrize("message", [LockedTransfer, Unlock, SecretReveal], ids=lambda m: m.__name__)
async def test_cut_at_the_mediator_and_the_routed_payment_ends_exactly_once(
        line: list[Pair], message: type[Message], payer: str, point: CutPoint) -> None:
    ab, bc = line
    paying, paid = (ab.a, bc.b) if payer == "a" else (bc.b, ab.a)
    before = {id(link): (_transferred(link)) for link in line}
    plan = FaultPlan(Cut(message, point))
    ab.b.peers.manager.faults = plan  # B forwards the lock, unlocks onward and reveals backward
    result = await pay_request_routed(paying, paid, AMOUNT)
    assert result["status"] == "accepted" and result["preimage"] is not None, result
    # B relays the reveal before its own round (proto/state-machine.md): the payer may be paid before
    # B's downstream `Unlock` is even sent, so the cut may still be ahead
    await until(lambda: plan.fired == [Cut(message, point)], "the cut message reached its cut")
    for link in line:
        await until(lambda link=link: agreed(link) and _no_locks(link),  # type: ignore[misc]
                    "every hop unlocked and agreed")
    # the amount moved exactly once along each hop, in the payer's direction (no fees configured)
    for link in line:
        a_sent, b_sent = _transferred(link)
        old_a, old_b = before[id(link)]
        assert (a_sent - old_a, b_sent - old_b) == ((AMOUNT, 0) if payer == "a" else (0, AMOUNT))


def _transferred(link: Pair) -> tuple[int, int]:
    state = link.a.channels.entry(link.cid).state
    return state.our.transferred, state.partner.transferred


def _no_locks(link: Pair) -> bool:
    a, b = link.a.channels.entry(link.cid).state, link.b.channels.entry(link.cid).state
    return not (a.our.locked or a.partner.locked or a.locks_in_flight or b.locks_in_flight)
