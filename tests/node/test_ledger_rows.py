"""The risk ledger's rows: written with a store round (a real LevelDB), restored exactly at start-up.

Each test counts payments in a `LedgerBook` the way the node does, lets a real `ChannelService` commit
the round, and restores a fresh book from the same store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgpack
import pytest
import trio

from channeld.limits import (
    LimitContext,
    RiskLedger,
    RiskLimitExceeded,
    RiskLimits,
    sent_last_hour,
    sent_last_hour_total,
)
from channeld.node import ChannelService, EventBus
from channeld.node._ledger import (
    TOTAL_KEY,
    LedgerBook,
    LedgerRowInvalid,
    encode_peer_row,
    peer_key,
)
from channeld.protocol import Signer
from channeld.store import Batch, Namespace, Store

NS = Namespace(31337, bytes(19) + b"\x01")
LIMITS = RiskLimits(max_payment=500, max_per_peer_per_hour=1000, max_total_per_hour=1500)
T0 = 1_800_000_000.0


@pytest.fixture
async def service(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[ChannelService]:
    store = Store.open(tmp_path / "db")
    channels = ChannelService(store, NS, Signer(bytes(31) + b"\x01"), EventBus(), lambda peer, msg: None)
    await nursery.start(channels.run_flusher)
    yield channels
    nursery.cancel_scope.cancel()


def pay(book: LedgerBook, peer: str, amount: int, now: float) -> None:
    context = LimitContext(LIMITS, book.ledger, peer, now)
    context.check(amount)
    book.update(context.recorded(amount))


async def committed(channels: ChannelService) -> None:
    await channels.wait_round(channels.after_commit(lambda: None))


def restored(channels: ChannelService, now: float) -> RiskLedger:
    return LedgerBook(channels).load(channels.store, now)


def ledger_rows(channels: ChannelService) -> dict[bytes, bytes]:
    return dict(channels.store.iter_ledger_rows())


async def test_a_restored_ledger_counts_every_payment_of_the_last_hour(service: ChannelService) -> None:
    book = LedgerBook(service)
    pay(book, "aa", 400, T0)
    pay(book, "bb", 300, T0 + 61)
    pay(book, "aa", 500, T0 + 125)
    await committed(service)
    later = T0 + 600
    ledger = restored(service, later)
    assert sent_last_hour(ledger, "aa", later) == 900 and sent_last_hour(ledger, "bb", later) == 300
    assert sent_last_hour_total(ledger, later) == 1200
    for peer, amount, limit in (("aa", 101, "max_per_peer_per_hour"), ("dd", 301, "max_total_per_hour")):
        with pytest.raises(RiskLimitExceeded) as caught:
            LimitContext(LIMITS, ledger, peer, later).check(amount)
        assert caught.value.limit == limit
    LimitContext(LIMITS, ledger, "aa", later).check(100)  # exactly what is left: allowed


async def test_what_left_the_window_is_not_restored_and_its_rows_are_deleted(service: ChannelService) -> None:
    book = LedgerBook(service)
    pay(book, "aa", 400, T0)
    pay(book, "bb", 300, T0 + 1800)
    await committed(service)
    assert set(ledger_rows(service)) == {peer_key("aa"), peer_key("bb"), TOTAL_KEY}
    later = T0 + 3600 + 60  # the window's 61 buckets no longer reach the first payment's minute
    book = LedgerBook(service)
    ledger = book.load(service.store, later)
    assert set(ledger.per_peer) == {"bb"}
    assert sent_last_hour(ledger, "aa", later) == 0 and sent_last_hour_total(ledger, later) == 300
    pay(book, "cc", 50, later)
    await committed(service)
    assert set(ledger_rows(service)) == {peer_key("bb"), peer_key("cc"), TOTAL_KEY}


async def test_a_clock_that_stepped_back_across_the_restart_frees_nothing_early(
        service: ChannelService) -> None:
    book = LedgerBook(service)
    pay(book, "aa", 450, T0 + 3000)
    await committed(service)
    stepped_back = T0  # an hour and more before the payment, by the restarted node's clock
    ledger = restored(service, stepped_back)
    assert sent_last_hour(ledger, "aa", stepped_back) == 450


async def test_a_round_writes_only_the_rows_of_the_peers_it_paid(service: ChannelService) -> None:
    book = LedgerBook(service)
    for peer in ("aa", "bb", "cc"):
        pay(book, peer, 10, T0)
    await committed(service)
    book.update(LimitContext(LIMITS, book.ledger, "bb", T0 + 1).recorded(10))
    batch = Batch()
    book._write(batch)  # what the next round's batch gets: B's row and the total, not A's or C's
    assert len(batch) == 2


async def test_a_corrupt_or_misplaced_row_refuses_to_start(service: ChannelService) -> None:
    good = encode_peer_row("aa", ((1, 5),))
    for key, raw, why in ((peer_key("aa"), b"\xc1", "not msgpack"),
                          (peer_key("aa"), msgpack.packb([2, "aa", []]), "version"),
                          (peer_key("aa"), msgpack.packb([1, "aa", [[1, 5]]]), "32-byte amount"),
                          (peer_key("bb"), good, "another key")):
        await service.store.commit(Batch().put_ledger_row(key, raw))
        with pytest.raises(LedgerRowInvalid, match=why):
            restored(service, T0)
        await service.store.commit(Batch().delete_ledger_row(key))
