"""Our proofs a partner refused (node/_refusals.py): two in-process nodes over real loopback TCP on anvil.

A transient refusal (the payee has not yet seen our deposit) is offered again after a back-off on the
same session, with no reconnection, and accepted once it can pass; a permanent one (the payee holds a
different proof for that nonce, as after we restored an old backup) is never offered again: the node
publishes `channel_blocked` and refuses new payments on the channel, telling the operator to close it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from channeld.node._ops import OperationRefused
from channeld.node._refusals import RETRY_FIRST
from channeld.protocol import PERMANENT_REFUSALS
from tests.node.test_limits_node import DEPOSIT, ETH, GENEROUS, WAIT, open_pair, until
from tests.tools import Anvil


async def test_a_transient_refusal_is_offered_again_and_accepted_without_reconnecting(
        tmp_path: Path, chain: tuple[Anvil, str], nursery: trio.Nursery) -> None:
    pair = await open_pair(tmp_path, chain, nursery, GENEROUS)
    a, b = pair.a, pair.b
    session = a.peers.manager.session_for(b.node_id)
    believed = pair.state(b).partner_balance()
    async with b.chain.limiter:  # the payee's view of the chain stands still meanwhile
        await a.deposit(pair.cid, ETH // 2)
        await until(lambda: pair.state(a).our.deposit == DEPOSIT + ETH // 2, "the payer seeing its deposit")
        with trio.fail_after(WAIT / 2):  # the refusal comes back at once, not after the payment timeout
            result = await a.pay(b.node_id, believed + 1, timeout=WAIT)
        assert result["status"] == "refused" and "exceeds the partner's balance" in str(result["reason"])
        nonce = pair.state(a).our.nonce
        with pytest.raises(OperationRefused, match=f"refused our payment with nonce {nonce} .*offered again"):
            await a.pay(b.node_id, 1)
        assert pair.state(a).our.nonce == nonce  # nothing more was signed
        with a.bus.subscribe() as events, trio.fail_after(WAIT):
            async for event in events:  # offered again while B still cannot accept it: refused again
                if event.kind == "payment_refused" and event.data["code"] == 22:
                    break
    await until(lambda: pair.state(b).partner.deposit == DEPOSIT + ETH // 2, "the payee seeing the deposit")
    await until(lambda: not pair.state(a).in_flight, "the refused proof accepted when offered again")
    assert a.peers.manager.session_for(b.node_id) is session  # no reconnection was needed
    assert pair.state(b).partner.transferred == believed + 1
    assert (await a.pay(b.node_id, 1))["status"] == "accepted"
    a.stop()
    b.stop()


async def test_a_permanent_refusal_blocks_the_channel_and_is_never_offered_again(
        tmp_path: Path, chain: tuple[Anvil, str], nursery: trio.Nursery) -> None:
    pair = await open_pair(tmp_path, chain, nursery, GENEROUS)
    a, b = pair.a, pair.b
    entry = a.channels.entry(pair.cid)
    restored = entry.state  # as an old backup would bring it back
    assert (await a.pay(b.node_id, 5))["status"] == "accepted"
    entry.state = restored
    with a.bus.subscribe() as events:
        result = await a.pay(b.node_id, 7, timeout=WAIT)  # nonce 1 again, other figures: conflicting
        assert result["status"] == "refused"
        with trio.fail_after(WAIT):
            async for event in events:
                if event.kind == "channel_blocked":
                    break
    assert event.data["code"] == 20 and 20 in PERMANENT_REFUSALS and event.data["nonce"] == 1
    with pytest.raises(OperationRefused, match=r"nonce 1 for good .*close the channel"):
        await a.pay(b.node_id, 1)
    with a.bus.subscribe() as events:
        with trio.move_on_after(4 * RETRY_FIRST):  # a re-offer would be refused again, and show here
            async for event in events:
                assert event.kind != "payment_refused", event
    assert pair.state(b).partner.transferred == 5 and pair.state(a).in_flight
    a.stop()
    b.stop()
