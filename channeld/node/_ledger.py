"""The risk ledger survives a restart: its rows ride the store round of the payments that spend it.

A payment is counted in the node's ledger (`LedgerBook.ledger`) in the same synchronous step in which the
protocol signs it (node/_ops.py, node/_transfers.py), and that step's store round is still filling. The
book asks that round, once, to carry the ledger rows that changed (`ChannelService.before_commit`), so
the rows are written in the same LevelDB batch (and fsync) as the proof or first lock that spent the
budget: a payment the partner can have seen is always counted after a crash, and the ledger costs no
write or fsync of its own. Rows are per peer (a round writes the rows of the peers it paid, not the
whole ledger, and looks at no other peer) plus one row for the all-peers total and the latest clock
reading. Buckets that left the hour stay in a peer's row until it is paid again (the restore drops them);
a peer idle for an hour loses its row at the next write in a new minute.

The rows live in the store's own risk-ledger table: node-wide, like the budgets, not under any chain.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

import msgpack

from channeld.errors import LocalFault
from channeld.limits import BUCKET_SECONDS, Buckets, RiskLedger, live_buckets
from channeld.store import Batch, Store

if TYPE_CHECKING:
    from channeld.node._channels import ChannelService

TOTAL_KEY = bytes(32)
ROW_VERSION = 1


class LedgerRowInvalid(LocalFault):
    """A stored risk-ledger row does not decode: the hourly budgets cannot be restored."""


def peer_key(peer: str) -> bytes:
    return hashlib.sha256(peer.encode()).digest()


def _pack_buckets(buckets: Buckets) -> list[list[object]]:
    return [[minute, amount.to_bytes(32, "big")] for minute, amount in buckets]


def encode_peer_row(peer: str, buckets: Buckets) -> bytes:
    return bytes(msgpack.packb([ROW_VERSION, peer, _pack_buckets(buckets)]))


def encode_total_row(latest: float, buckets: Buckets) -> bytes:
    return bytes(msgpack.packb([ROW_VERSION, latest, _pack_buckets(buckets)]))


def _unpack(raw: bytes) -> list[object]:
    try:
        row = msgpack.unpackb(raw)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise LedgerRowInvalid(f"risk ledger row is not msgpack: {exc}") from None
    if not isinstance(row, list) or len(row) != 3 or row[0] != ROW_VERSION:
        raise LedgerRowInvalid("risk ledger row is not [version 1, owner, buckets]")
    return row


def _buckets(packed: object) -> Buckets:
    if not isinstance(packed, list):
        raise LedgerRowInvalid("risk ledger buckets are not a list")
    found: list[tuple[int, int]] = []
    for item in packed:
        valid = (isinstance(item, list) and len(item) == 2 and type(item[0]) is int
                 and isinstance(item[1], bytes) and len(item[1]) == 32)
        if not valid or (found and item[0] < found[-1][0]):
            raise LedgerRowInvalid("a risk ledger bucket is not [minute, 32-byte amount], oldest first")
        found.append((item[0], int.from_bytes(item[1], "big")))
    return tuple(found)


def decode_peer_row(raw: bytes) -> tuple[str, Buckets]:
    _, peer, packed = _unpack(raw)
    if not isinstance(peer, str) or not peer:
        raise LedgerRowInvalid("risk ledger row names no peer")
    return peer, _buckets(packed)


def decode_total_row(raw: bytes) -> tuple[float, Buckets]:
    _, latest, packed = _unpack(raw)
    if isinstance(latest, bool) or not isinstance(latest, int | float) or math.isnan(latest):
        raise LedgerRowInvalid("risk ledger total row has no clock reading")
    return float(latest), _buckets(packed)


def restore(rows: Mapping[bytes, bytes], now: float) -> RiskLedger:
    """The ledger as the rows left it, with what has left the window by `now` dropped."""
    latest: float = -math.inf
    total: Buckets = ()
    if TOTAL_KEY in rows:
        latest, total = decode_total_row(rows[TOTAL_KEY])
    minute = math.floor(max(now, latest) / BUCKET_SECONDS)
    per_peer = {}
    for key, raw in rows.items():
        if key != TOTAL_KEY:
            peer, buckets = decode_peer_row(raw)
            if key != peer_key(peer):
                raise LedgerRowInvalid(f"risk ledger row of peer {peer[:70]} is stored under another key")
            if live := live_buckets(buckets, minute):
                per_peer[peer] = live
    # `minute` stays unset: the window sums are recounted from the buckets at the first check
    return RiskLedger(per_peer=MappingProxyType(per_peer), total=live_buckets(total, minute), latest=latest)


class LedgerBook:
    """The node's risk ledger, and which of its rows the store holds as written."""

    def __init__(self, channels: ChannelService) -> None:
        self._channels = channels
        self.ledger = RiskLedger()
        self._stored: dict[str, Buckets] = {}  # per peer, the buckets as last written
        self._stored_total: Buckets = ()
        self._stored_minute: int | None = -1  # differs from any ledger's: the first write prunes rows
        self._paid: dict[str, None] = {}  # peers paid since the last write (an ordered set)

    def load(self, store: Store, now: float) -> RiskLedger:
        rows = dict(store.iter_ledger_rows())
        self.ledger = restore(rows, now)
        # rows of peers idle for an hour are deleted by the first write (`_stored_minute` differs)
        self._stored = {peer: self.ledger.per_peer.get(peer, ()) for peer in
                        (decode_peer_row(raw)[0] for key, raw in rows.items() if key != TOTAL_KEY)}
        self._stored_total = self.ledger.total
        return self.ledger

    def update(self, ledger: RiskLedger) -> None:
        """The ledger counted a payment: its rows go with the store round filling now."""
        self.ledger = ledger
        if not self._paid:
            self._channels.before_commit(self._write)
        self._paid[ledger.last_peer] = None

    def _write(self, batch: Batch) -> None:
        ledger, stored, paid = self.ledger, self._stored, self._paid
        self._paid = {}
        for peer in paid:
            buckets = ledger.per_peer.get(peer)
            if buckets is not None and stored.get(peer) is not buckets:
                batch.put_ledger_row(peer_key(peer), encode_peer_row(peer, buckets))
                stored[peer] = buckets
        if ledger.minute != self._stored_minute:  # peers idle for an hour left the ledger: drop their rows
            for peer in [p for p in stored if p not in ledger.per_peer]:
                batch.delete_ledger_row(peer_key(peer))
                del stored[peer]
            self._stored_minute = ledger.minute
        if ledger.total is not self._stored_total:
            batch.put_ledger_row(TOTAL_KEY, encode_total_row(ledger.latest, ledger.total))
            self._stored_total = ledger.total
