"""The record encoder's cache of in-flight message bytes gives exactly the bytes of a fresh encoding."""

from __future__ import annotations

import msgpack
import pytest

import channeld.protocol._record as record_module
from channeld.protocol import (
    ActionPay,
    ChannelState,
    ContractReceiveDeposit,
    Signer,
    from_record,
    handle,
    new_channel,
    to_record,
)
from channeld.wire import Payment, encode

OURS, THEIRS = Signer(bytes(31) + b"\x01"), Signer(bytes(31) + b"\x02")


def _paying(count: int) -> ChannelState:
    state = new_channel(31337, bytes(20), bytes(32), 3600, OURS.address, THEIRS.public_key)
    state, _ = handle(state, ContractReceiveDeposit(OURS.address, 10**6), OURS)
    for n in range(1, count + 1):
        state, _ = handle(state, ActionPay(n, n), OURS)
    return state


def test_cached_and_fresh_records_are_the_same_bytes() -> None:
    state = _paying(20)
    first = to_record(state)  # fills the cache
    again = to_record(state)  # served from it
    record_module._ENCODED.clear()
    fresh = to_record(state)
    assert first == again == fresh
    assert from_record(again) == state


def test_each_in_flight_payment_is_stored_as_its_own_wire_bytes() -> None:
    state = _paying(5)
    stored = msgpack.unpackb(to_record(state), raw=False)[14]
    assert stored == [encode(p) for p in state.in_flight]


def test_an_equal_but_distinct_message_is_not_confused_with_a_cached_one() -> None:
    state = _paying(3)
    payment = state.in_flight[0]
    to_record(state)
    other = Payment(payment.balance_proof, payment.payment_id + 1, payment.amount, payment.metadata)
    assert record_module._encoded(other) == encode(other) != encode(payment)


def test_a_full_cache_is_emptied_and_keeps_working(monkeypatch: pytest.MonkeyPatch) -> None:
    state = _paying(10)
    monkeypatch.setattr(record_module, "_ENCODED_LIMIT", 4)
    assert to_record(state) == to_record(state)
    assert len(record_module._ENCODED) <= 4
