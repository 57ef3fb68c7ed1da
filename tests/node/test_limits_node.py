"""Risk limits in the node: two in-process nodes over real loopback TCP on a real anvil.

A payment over a limit is refused by the protocol before anything is signed (the store, the audit log
and the ledger unchanged); payments racing for one hourly budget never overrun it; opens and deposits
keep `min_onchain_reserve` on chain while closes are never held to it; `max_pending_locks` bounds our
locks, and a partner's lock over it is accepted but not acted on; a payment the partner refuses returns
at once with the reason, and later payments on that channel are refused at once until the refused proof
is accepted (tests/node/test_refusals.py: offered again after a back-off, or given up on for good).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import trio

from channeld.chain import connect_rpc, find_deploy_block
from channeld.keys import NodeKey
from channeld.limits import RiskLimitExceeded, RiskLimits
from channeld.node import ChainSetup, Node
from channeld.node._records import Envelope
from channeld.protocol import (
    ActionSendLockedTransfer,
    ChannelState,
    ChannelStatus,
    EventLockReceived,
    from_record,
)
from tests.node.inprocess import anvil_node_config
from tests.node.inprocess import until as shared_until
from tests.tools import Anvil

ETH = 10**18
FUNDS = 100 * ETH
DEPOSIT = ETH
WAIT = 30.0
LIMITS = RiskLimits(max_payment=ETH // 100, max_per_peer_per_hour=ETH // 20, max_total_per_hour=ETH // 10,
                    max_channel_deposit=1000 * ETH, min_onchain_reserve=ETH, max_pending_locks=8)

GENEROUS = RiskLimits(max_payment=50 * ETH, max_per_peer_per_hour=50 * ETH, max_total_per_hour=50 * ETH,
                      max_channel_deposit=50 * ETH, min_onchain_reserve=0)


async def until(predicate: Callable[[], object], what: str, timeout: float = WAIT) -> None:
    await shared_until(predicate, what, timeout)


@dataclass
class Pair:
    a: Node
    b: Node
    cid: bytes

    def state(self, node: Node) -> ChannelState:
        return node.channels.entry(self.cid).state


async def start_node(root: Path, name: str, chain: tuple[Anvil, str], nursery: trio.Nursery,
                     limits: RiskLimits = LIMITS) -> Node:
    anvil, contract = chain
    rpc = connect_rpc(anvil.url)
    key = NodeKey.generate()
    rpc.rpc("anvil_setBalance", [key.address, hex(FUNDS)])
    (root / name).mkdir(mode=0o700)
    setup = ChainSetup(connect_rpc(anvil.url), contract, find_deploy_block(rpc, contract))
    node: Node = await nursery.start(Node(root / name, anvil_node_config(limits), key, setup, api=False).run)
    return node


async def open_pair(root: Path, chain: tuple[Anvil, str], nursery: trio.Nursery, limits: RiskLimits) -> Pair:
    a = await start_node(root, "a", chain, nursery, limits)
    b = await start_node(root, "b", chain, nursery, limits)
    await a.open_channel(b.uri, DEPOSIT, challenge_period=3600)

    def opened() -> bytes | None:
        for cid, entry in a.channels.of_peer(b.node_id):
            theirs = b.channels.channels.get(cid)
            if entry.state.status is ChannelStatus.OPEN and theirs is not None and theirs.state.now > 0:
                return cid
        return None

    await until(opened, "the channel open on both nodes")
    cid = opened()
    assert cid is not None
    return Pair(a, b, cid)


@pytest.fixture
async def pair(tmp_path: Path, chain: tuple[Anvil, str], nursery: trio.Nursery) -> AsyncIterator[Pair]:
    opened = await open_pair(tmp_path, chain, nursery, LIMITS)
    yield opened
    opened.a.stop()
    opened.b.stop()


def stored_proofs(node: Node, cid: bytes) -> tuple[object, ...]:
    """What a payment changes in the stored channel row (chain ticks change its clock meanwhile)."""
    raw = dict(node.store.iter_channels(node.ns))[cid]
    state = from_record(Envelope.decode(raw).protocol_record)
    return state.our.proof, state.partner.proof, state.in_flight, state.our_balance()


def outbox(node: Node) -> list[tuple[int, bytes]]:
    return list(node.store.iter_outbox(node.ns))


def audit_length(node: Node) -> int:
    return sum(1 for _ in node.store.iter_audit())


async def test_a_payment_over_a_limit_is_refused_and_nothing_stored_changes(pair: Pair) -> None:
    await pair.a.pay(pair.b.node_id, ETH // 1000)
    await until(lambda: not pair.state(pair.a).in_flight, "the first payment acknowledged")
    before = (stored_proofs(pair.a, pair.cid), audit_length(pair.a), pair.a.ledger)
    with pytest.raises(RiskLimitExceeded, match=r"limits\.max_payment") as caught:
        await pair.a.pay(pair.b.node_id, ETH // 100 + 1)
    assert caught.value.limit == "max_payment"
    await trio.sleep(0.2)  # a round that was (wrongly) started would be committed by now
    after = (stored_proofs(pair.a, pair.cid), audit_length(pair.a), pair.a.ledger)
    assert after == before
    assert pair.state(pair.b).partner.transferred == ETH // 1000


async def test_payments_racing_for_one_hourly_budget_never_overrun_it(pair: Pair) -> None:
    amount = ETH // 100  # the per-peer budget holds exactly 5 of them
    outcomes: list[str] = []

    async def one() -> None:
        try:
            result = await pair.a.pay(pair.b.node_id, amount, timeout=WAIT)
            outcomes.append(str(result["status"]))
        except RiskLimitExceeded as exc:
            outcomes.append(exc.limit)

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(one)
    assert sorted(outcomes) == ["accepted"] * 5 + ["max_per_peer_per_hour"] * 3
    assert pair.state(pair.a).our.transferred == 5 * amount
    await until(lambda: pair.state(pair.b).partner.transferred == 5 * amount, "the payee's view")


async def test_the_onchain_reserve_refuses_opens_and_deposits_but_not_closes(pair: Pair) -> None:
    spendable = FUNDS - DEPOSIT - LIMITS.min_onchain_reserve  # a little less: the open paid gas
    await until(lambda: not outbox(pair.a), "the open's outbox row done")
    operations = set(pair.a.worker.operations)
    with pytest.raises(RiskLimitExceeded, match=r"limits\.min_onchain_reserve") as caught:
        await pair.a.deposit(pair.cid, spendable)
    assert caught.value.limit == "min_onchain_reserve"
    with pytest.raises(RiskLimitExceeded, match=r"limits\.min_onchain_reserve"):
        await pair.a.open_channel(pair.b.uri, spendable)
    assert outbox(pair.a) == [] and set(pair.a.worker.operations) == operations
    assert pair.state(pair.a).our.deposit == DEPOSIT
    status = await pair.a.deposit(pair.cid, ETH)  # well within the reserve: goes through
    assert status.kind == "deposit"
    closing = await pair.a.close(pair.cid, force=True)  # protects funds: never held to the reserve
    assert closing is not None and closing.kind == "close"


async def test_the_node_bounds_pending_locks_both_ways(tmp_path: Path, chain: tuple[Anvil, str],
                                                      nursery: trio.Nursery) -> None:
    pair = await open_pair(tmp_path, chain, nursery, replace(GENEROUS, max_pending_locks=1))
    a, b = pair.a, pair.b
    await until(lambda: pair.state(a).now > 0, "the payer's channel clock")
    expiration = pair.state(a).now + 3600

    def lock(i: int) -> ActionSendLockedTransfer:
        return ActionSendLockedTransfer(i, 1000, expiration, hashlib.sha256(bytes([i]) * 32).digest(),
                                        a.channels.signer.address, b.channels.signer.address,
                                        b.channels.signer.address)

    a.channels.apply(pair.cid, lock(1))
    signed = pair.state(a).our.proof
    with pytest.raises(RiskLimitExceeded, match=r"limits\.max_pending_locks \(1\)"):
        a.channels.apply(pair.cid, lock(2))
    assert pair.state(a).our.proof == signed
    await until(lambda: len(pair.state(b).partner.locks) == 1, "the first lock at the partner")
    a.channels.limits = None  # A ignores its own limit now: B must hold to it by itself
    seen_by_b: list[object] = []
    b.channels.applied_listeners.append(lambda cid, effects: seen_by_b.extend(effects))
    a.channels.apply(pair.cid, lock(2))
    # B cannot refuse it (A's later proofs, its unlocks included, would wait behind it): it accepts the
    # lock but does not act on it: no payment machine hears of it, nothing is forwarded or claimed
    await until(lambda: not pair.state(a).locks_in_flight, "the second lock acknowledged")
    assert len(pair.state(b).partner.locks) == 2 and pair.state(b).partner.nonce == 2
    assert not any(isinstance(e, EventLockReceived) for e in seen_by_b)
    assert (await a.pay(b.node_id, 1))["status"] == "accepted"  # A's later proofs are not held back
    a.stop()
    b.stop()
