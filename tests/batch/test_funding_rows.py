"""The outbox rows of a batch open and top-up: they survive the store's encoding, and a re-sent batch open
is looked for on chain as its first channel's single open (so a crash never opens a second set)."""

from __future__ import annotations

from channeld.node._batch_funding import (
    APPROVE_TAG,
    approve_operation,
    deposit_operation,
    first_open_probe,
    is_funding,
    open_operation,
)
from channeld.node._records import Operation

P1, P2, TOKEN = bytes([0x11] * 20), bytes([0x22] * 20), bytes([0x33] * 20)


def test_rows_round_trip_through_the_store_encoding() -> None:
    rows = [open_operation(TOKEN, 30, 5 << 64 | 9, [P1, P2], [10, 20]),
            deposit_operation(TOKEN, {bytes([1] * 32): 40, bytes([2] * 32): 50}),
            approve_operation(TOKEN, 2**200)]
    for row in rows:
        decoded = Operation.decode(row.encode())
        assert decoded == row and is_funding(decoded)
    assert rows[2].args == (APPROVE_TAG, TOKEN, 2**200)


def test_a_batch_open_is_probed_as_its_first_channel() -> None:
    salt = 7 << 64 | 3
    probe = first_open_probe(open_operation(TOKEN, 30, salt, [P1, P2], [10, 20]))
    assert probe == Operation("open", (P1, TOKEN, 30, salt, 10))


def test_other_batch_rows_are_not_opens() -> None:
    withdraw_row = Operation("batch", (b"\x01\x02\x03\x04" + bytes(64), 99))
    assert not is_funding(withdraw_row) and first_open_probe(withdraw_row) is None
    assert first_open_probe(deposit_operation(TOKEN, {bytes(32): 1})) is None
