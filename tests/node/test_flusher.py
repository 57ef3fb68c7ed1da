"""The channel service's pipelined flusher on a real LevelDB: persist before send, order, shutdown drain.

No daemons: one `ChannelService` with a real `Store`, a channel made by the pure protocol, and a `send`
callback that reads the store back at the moment a message would leave the node.
"""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from channeld.chain import contract as hub
from channeld.errors import LocalFault
from channeld.node import ChannelService, Envelope, EventBus
from channeld.node._bench import BenchRefused, bench_pay
from channeld.protocol import (
    ActionPay,
    ContractReceiveDeposit,
    Send,
    Signer,
    from_record,
    handle,
    new_channel,
)
from channeld.store import Namespace, Store, StoreClosed
from channeld.wire import Message, Payment, PaymentAccepted

CHAIN_ID = 31337
CONTRACT = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
CID = bytes(range(32))
NS = Namespace(CHAIN_ID, CONTRACT)
PEER_ID = b"\x02" + bytes(32)
DEPOSIT = 10**6


def _service(path: Path, sent: list[Message], check: bool = True) -> tuple[ChannelService, Store, Signer]:
    store = Store.open(path)
    ours, theirs = Signer(bytes(31) + b"\x01"), Signer(bytes(31) + b"\x02")
    state = new_channel(CHAIN_ID, CONTRACT, CID, 3600, ours.address, theirs.public_key)
    state, _ = handle(state, ContractReceiveDeposit(ours.address, DEPOSIT), ours)
    p1, p2 = sorted(("0x" + ours.address.hex(), "0x" + theirs.address.hex()), key=lambda a: int(a, 16))
    onchain = hub.OnChainChannel(CID, hub.ChannelState(p1, p2, "0x" + bytes(20).hex(), 3600))

    def send(peer: bytes, message: Message) -> None:
        if check and isinstance(message, Payment | PaymentAccepted):
            stored = from_record(Envelope.decode(store.get_channel(NS, CID) or b"").protocol_record)
            if isinstance(message, Payment):  # persist before send: the proof leaving now is stored
                assert stored.our.nonce >= message.balance_proof.nonce
            else:  # persist before acknowledge: the partner's proof acknowledged now is stored
                assert stored.partner.nonce >= message.nonce
        sent.append(message)

    service = ChannelService(store, NS, ours, EventBus(), send)
    service.add_channel(CID, state, PEER_ID, onchain)
    return service, store, theirs


async def test_every_payment_is_durable_before_it_is_sent_and_order_holds(tmp_path: Path) -> None:
    sent: list[Message] = []
    service, store, _ = _service(tmp_path / "db", sent)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run_flusher)
            last = 0
            for n in range(1, 41):
                last = service.apply(CID, ActionPay(n, 1))
                if n % 7 == 0:
                    await trio.sleep(0)  # let rounds go while payments keep coming
            await service.wait_round(last)
            nursery.cancel_scope.cancel()
    finally:
        store.close()
    nonces = [m.balance_proof.nonce for m in sent if isinstance(m, Payment)]
    assert nonces == list(range(1, 41))
    assert service.flush_rounds < 40  # payments shared rounds (group commit), not one fsync each


async def test_a_cancelled_flusher_commits_what_was_applied(tmp_path: Path) -> None:
    sent: list[Message] = []
    service, store, _ = _service(tmp_path / "db", sent)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run_flusher)
        for n in range(1, 6):
            service.apply(CID, ActionPay(n, 1))
        nursery.cancel_scope.cancel()  # before the flusher could take the round: the drain must
    store.close()
    with Store.open(tmp_path / "db") as reopened:
        raw = reopened.get_channel(NS, CID)
        assert raw is not None
        assert from_record(Envelope.decode(raw).protocol_record).our.nonce == 5


async def test_bench_pay_counts_acknowledged_payments_and_refuses_bad_requests(tmp_path: Path) -> None:
    sent: list[Message] = []
    service, store, _ = _service(tmp_path / "db", sent, check=False)
    acked = 0

    async def partner() -> None:
        # the partner acknowledges everything sent so far, as a peer would after its own commit
        nonlocal acked
        while True:
            await trio.sleep(0.001)
            payments = [m for m in sent if isinstance(m, Payment)]
            if len(payments) > acked:
                acked = len(payments)
                service.apply(CID, PaymentAccepted(CID, payments[-1].balance_proof.nonce,
                                                   payments[-1].payment_id))

    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run_flusher)
            nursery.start_soon(partner)
            result = await bench_pay(service, CID, 50, 2, 8)
            for count, amount, window in ((0, 1, 8), (10, 1, 65), (10, 0, 8), (DEPOSIT, 2, 8)):
                try:
                    await bench_pay(service, CID, count, amount, window)
                except BenchRefused:
                    pass
                else:
                    raise AssertionError(f"bench_pay({count}, {amount}, {window}) was not refused")
            nursery.cancel_scope.cancel()
    finally:
        store.close()
    assert result.payments == 50 and result.window == 8
    assert result.pps > 0 and 0 < result.p50_ms <= result.p99_ms <= result.max_ms
    assert service.entry(CID).state.our.transferred == 100
    assert service.entry(CID).state.in_flight == ()


def _partner_payments(count: int) -> list[Payment]:
    """Payments the partner signs to us over the test channel."""
    ours, theirs = Signer(bytes(31) + b"\x01"), Signer(bytes(31) + b"\x02")
    state = new_channel(CHAIN_ID, CONTRACT, CID, 3600, theirs.address, ours.public_key)
    state, _ = handle(state, ContractReceiveDeposit(theirs.address, DEPOSIT), theirs)
    payments = []
    for n in range(1, count + 1):
        state, effects = handle(state, ActionPay(100 + n, 1), theirs)
        payments += [e.message for e in effects if isinstance(e, Send) and isinstance(e.message, Payment)]
    return payments


async def test_each_received_payment_is_durable_before_it_is_acknowledged(tmp_path: Path) -> None:
    sent: list[Message] = []
    service, store, theirs = _service(tmp_path / "db", sent)  # `send` checks the store for every ack
    service.apply(CID, ContractReceiveDeposit(theirs.address, DEPOSIT))
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run_flusher)
            payments = _partner_payments(12)
            last = 0
            for payment in payments[:10]:  # stored in one round: one cumulative acknowledgement
                last = service.apply(CID, payment)
            await service.wait_round(last)
            for payment in payments[10:]:  # one round each: one acknowledgement each
                await service.wait_round(service.apply(CID, payment))
            nursery.cancel_scope.cancel()
    finally:
        store.close()
    assert sent == [PaymentAccepted(CID, n, 100 + n) for n in (10, 11, 12)]
    assert service.entry(CID).state.partner.transferred == 12


async def test_a_failing_store_wakes_every_waiter_with_an_error(tmp_path: Path) -> None:
    sent: list[Message] = []
    service, store, _ = _service(tmp_path / "db", sent)
    store.close()  # every later submit is refused: as good as a failed disk for the flusher
    outcomes: list[str] = []

    async def pay_and_wait() -> None:
        try:
            await service.wait_round(service.apply(CID, ActionPay(1, 1)))
            outcomes.append("durable")
        except LocalFault:
            outcomes.append("fault")

    failures: list[BaseException] = []
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pay_and_wait)
            await nursery.start(service.run_flusher)
    except* StoreClosed as group:
        failures += group.exceptions
    assert outcomes == ["fault"] and len(failures) == 1
    assert sent == []  # nothing that was not durable left the node
