"""Batch open and batch top-up (docs/batch.md): a hub funding many channels in one transaction.

Both go through the outbox as `batch` rows, like batch withdraw and close, but their first argument is a
tag naming what to build, and the calldata is built when the row is sent, from the chain's view then:

- `open-channels` (token, challenge period, salt, partners, deposits...): `openChannels`, channel i with
  salt `salt + i`. The contract names a channel by the block's timestamp, so a re-send after a crash would
  open a second set: before sending, the worker looks for the batch's first channel on chain exactly as
  for a single open (`first_open_probe`, `_opens.find_opened`) and sends nothing if it is there.
- `set-total-deposits` (token, channel ids, totals...): `setTotalDeposits` with each channel's entry as
  the chain has it now; a channel already at its total (a re-send after the batch was mined), closing or
  gone is left out, and nothing is sent if none is left. Totals, not increments, so nothing is paid twice.
- `approve` (token, amount): the ERC-20 allowance the open or top-up after it collects with one transfer.

Partners need nothing new: they learn their channels and deposits from `ChannelOpened` / `ChannelDeposit`
events exactly as for single opens and deposits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from channeld.batch import BatchEntry, encode_open_channels, encode_set_total_deposits, entry_from_state
from channeld.chain import TxRequest
from channeld.chain import contract as hub
from channeld.node._records import Operation

if TYPE_CHECKING:
    from channeld.node._onchain import TransactionWorker

OPEN_TAG = b"open-channels"
DEPOSIT_TAG = b"set-total-deposits"
APPROVE_TAG = b"approve"
FUNDING_TAGS = frozenset({OPEN_TAG, DEPOSIT_TAG, APPROVE_TAG})
APPROVE_SELECTOR = keccak(text="approve(address,uint256)")[:4]


def open_operation(token: bytes, challenge_period: int, salt: int, partners: Sequence[bytes],
                   deposits: Sequence[int]) -> Operation:
    return Operation("batch", (OPEN_TAG, token, challenge_period, salt, b"".join(partners), *deposits))


def deposit_operation(token: bytes, totals: dict[bytes, int]) -> Operation:
    """Raise our total deposit in each channel of `totals` (id -> new total) to its value."""
    return Operation("batch", (DEPOSIT_TAG, token, b"".join(totals), *totals.values()))


def approve_operation(token: bytes, amount: int) -> Operation:
    return Operation("batch", (APPROVE_TAG, token, amount))


def is_funding(op: Operation) -> bool:
    return op.kind == "batch" and bool(op.args) and op.args[0] in FUNDING_TAGS


def first_open_probe(op: Operation) -> Operation | None:
    """The single `open` row whose channel is a batch open's first one (salt `salt`), for `find_opened`;
    None for any other row."""
    if not is_funding(op) or op.args[0] != OPEN_TAG:
        return None
    _, token, period, salt, packed, *deposits = op.args
    return Operation("open", (bytes(packed)[:20], token, period, salt, deposits[0]))


def funding_transaction(worker: TransactionWorker, op: Operation) -> TxRequest | None:
    tag = op.args[0]
    if tag == APPROVE_TAG:
        token, amount = op.args[1:]
        data = APPROVE_SELECTOR + abi_encode(["address", "uint256"], [worker.contract, int(amount)])
        return TxRequest(to_checksum_address(bytes(token)), data)
    if tag == OPEN_TAG:
        return _open_request(worker, op)
    return _top_up_request(worker, op)


def _open_request(worker: TransactionWorker, op: Operation) -> TxRequest:
    _, token, period, salt, packed, *deposits = op.args
    raw = bytes(packed)
    partners = [to_checksum_address(raw[i:i + 20]) for i in range(0, len(raw), 20)]
    amounts = [int(d) for d in deposits]
    token_cs = to_checksum_address(bytes(token))
    data = encode_open_channels(token_cs, int(period), int(salt), partners, amounts)
    return TxRequest(worker.contract, data, sum(amounts) if token_cs == hub.ETHER else 0)


def _top_up_request(worker: TransactionWorker, op: Operation) -> TxRequest | None:
    _, token, packed, *totals = op.args
    raw, token_cs = bytes(packed), to_checksum_address(bytes(token))
    entries: list[BatchEntry] = []
    value = 0
    for i, total in enumerate(int(t) for t in totals):
        entry = worker.service.channels.get(raw[32 * i:32 * i + 32])
        if entry is None:
            continue
        channel = entry.onchain
        if channel.closing is not None or channel.cooperative or channel.settled is not None:
            continue
        state = channel.state
        current = state.deposit1 if state.is_first(worker.our) else state.deposit2
        if total > current:
            entries.append(entry_from_state(raw[32 * i:32 * i + 32], state, worker.our, total))
            value += total - current
    if not entries:
        return None
    data = encode_set_total_deposits(token_cs, entries)
    return TxRequest(worker.contract, data, value if token_cs == hub.ETHER else 0)
