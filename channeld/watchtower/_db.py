"""The tower's LevelDB: every record keyed by (chain id, contract) namespace and channel id.

Key layout (one tag byte, then the 28-byte namespace of `channeld.store.Namespace`, then the row id):

| tag  | row                                   | value                        |
|------|---------------------------------------|------------------------------|
| 0x00 | `schema_version` (no namespace)       | 4-byte big-endian version    |
| 0x01 | channel id                            | the channel as the chain has it (`encode_channel`) |
| 0x02 | channel id + pusher address (20)      | the newest proof from that pusher (`encode_held`)  |
| 0x03 | channel id                            | an open dispute (`encode_dispute`)                  |
| 0x04 | (namespace only)                      | the event follower's cursor (JSON)                  |
| 0x05 | channel id                            | the dispute's transaction in flight (`encode_flight`) |
| 0x06 | (namespace only)                      | the tower's counters (JSON), so a restart keeps them |

A 0x05 row holds every version (same nonce, rising fees) of a dispute's transaction and is written
before each version is broadcast, so a restarted tower knows every hash that may get mined.

Every lookup the tower makes on a push or a close is a point read by channel id; only the open
disputes (a handful) are ever iterated. Writes go out as one WriteBatch with sync=True; LevelDB merges
concurrent writers into one log append, so pushes from many sessions share fsyncs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import plyvel

from channeld.chain import SubmittedTx
from channeld.chain.contract import OnChainChannel
from channeld.chain.follower import FollowerCursor
from channeld.errors import ConfigError
from channeld.store import Namespace
from channeld.watchtower._errors import CorruptTowerRecord, TowerError
from channeld.watchtower._records import (
    Dispute,
    HeldProof,
    decode_channel,
    decode_dispute,
    decode_flight,
    decode_held,
    encode_channel,
    encode_dispute,
    encode_flight,
    encode_held,
)

SCHEMA_VERSION = 1
_SCHEMA_KEY = b"\x00schema_version"
_CHANNEL, _PROOF, _DISPUTE, _CURSOR, _FLIGHT, _COUNTERS = b"\x01", b"\x02", b"\x03", b"\x04", b"\x05", b"\x06"


class TowerBatch:
    """Puts and deletes collected for one durable write."""

    __slots__ = ("ns", "ops")

    def __init__(self, ns: Namespace) -> None:
        self.ns = ns
        self.ops: list[tuple[bytes, bytes | None]] = []

    def __len__(self) -> int:
        return len(self.ops)

    def put_channel(self, channel: OnChainChannel) -> None:
        self.ops.append((_key(_CHANNEL, self.ns, channel.channel_id), encode_channel(channel)))

    def put_held(self, channel_id: bytes, held: HeldProof) -> None:
        self.ops.append((_key(_PROOF, self.ns, channel_id + held.pusher), encode_held(held)))

    def delete_held(self, channel_id: bytes, pusher: bytes) -> None:
        self.ops.append((_key(_PROOF, self.ns, channel_id + pusher), None))

    def put_dispute(self, dispute: Dispute) -> None:
        self.ops.append((_key(_DISPUTE, self.ns, dispute.channel_id), encode_dispute(dispute)))

    def delete_dispute(self, channel_id: bytes) -> None:
        self.ops.append((_key(_DISPUTE, self.ns, channel_id), None))

    def put_flight(self, channel_id: bytes, versions: Sequence[SubmittedTx]) -> None:
        self.ops.append((_key(_FLIGHT, self.ns, channel_id), encode_flight(versions)))

    def delete_flight(self, channel_id: bytes) -> None:
        self.ops.append((_key(_FLIGHT, self.ns, channel_id), None))

    def set_cursor(self, cursor: FollowerCursor) -> None:
        self.ops.append((_key(_CURSOR, self.ns, b""), cursor.to_json().encode()))

    def set_counters(self, counters: Mapping[str, int]) -> None:
        self.ops.append((_key(_COUNTERS, self.ns, b""), json.dumps(dict(counters), sort_keys=True).encode()))


def _key(tag: bytes, ns: Namespace, row: bytes) -> bytes:
    return tag + ns.encode() + row


class TowerDB:
    """Blocking reads and durable writes; trio code calls them through `trio.to_thread.run_sync`."""

    def __init__(self, path: Path, ns: Namespace) -> None:
        self.path = Path(path)
        self.ns = ns
        # the tower's counters, written with every batch (no write of their own on the push path)
        self.counters: Callable[[], Mapping[str, int]] | None = None
        try:
            self._db = plyvel.DB(str(self.path), create_if_missing=True, paranoid_checks=True)
        except plyvel.Error as exc:
            raise TowerError(f"cannot open the tower database at {self.path}: {exc}") from None
        try:
            self._check_schema()
        except BaseException:
            self._db.close()
            raise

    def _check_schema(self) -> None:
        raw = self._db.get(_SCHEMA_KEY)
        if raw is None:
            if next(self._db.iterator(include_value=False), None) is not None:
                raise TowerError(f"{self.path} holds data but no schema version: not a tower database")
            self._db.put(_SCHEMA_KEY, SCHEMA_VERSION.to_bytes(4, "big"), sync=True)
        elif raw != SCHEMA_VERSION.to_bytes(4, "big"):
            raise TowerError(f"{self.path} has tower schema {raw.hex()}, this build reads {SCHEMA_VERSION}")

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()

    def batch(self) -> TowerBatch:
        return TowerBatch(self.ns)

    def write(self, batch: TowerBatch) -> None:
        """Apply all of `batch` durably (fsync) or none of it."""
        if batch.ns != self.ns:
            raise ConfigError("a batch for another namespace")
        if self.counters is not None:
            batch.set_counters(self.counters())
        with self._db.write_batch(sync=True) as wb:
            for key, value in batch.ops:
                if value is None:
                    wb.delete(key)
                else:
                    wb.put(key, value)

    def get_channel(self, channel_id: bytes) -> OnChainChannel | None:
        raw = self._db.get(_key(_CHANNEL, self.ns, channel_id))
        return None if raw is None else decode_channel(raw)

    def get_held(self, channel_id: bytes, pusher: bytes) -> HeldProof | None:
        raw = self._db.get(_key(_PROOF, self.ns, channel_id + pusher))
        if raw is None:
            return None
        held = decode_held(raw)
        if held.pusher != pusher:
            raise CorruptTowerRecord("a proof record stored under another pusher's key")
        return held

    def get_dispute(self, channel_id: bytes) -> Dispute | None:
        raw = self._db.get(_key(_DISPUTE, self.ns, channel_id))
        return None if raw is None else decode_dispute(raw)

    def iter_disputes(self) -> Iterator[Dispute]:
        for _, raw in self._db.iterator(prefix=_DISPUTE + self.ns.encode()):
            yield decode_dispute(raw)

    def iter_flights(self) -> Iterator[tuple[bytes, tuple[SubmittedTx, ...]]]:
        """(channel id, versions) of every dispute transaction a run left in flight."""
        prefix = _FLIGHT + self.ns.encode()
        for key, raw in self._db.iterator(prefix=prefix):
            yield key[len(prefix):], decode_flight(raw)

    def count_held(self) -> int:
        """Proofs held (one per channel and pusher); a keys-only pass, run once at start-up."""
        prefix = _PROOF + self.ns.encode()
        return sum(1 for _ in self._db.iterator(prefix=prefix, include_value=False))

    def load_counters(self) -> dict[str, int]:
        """The counters the last write kept (none before the first; a damaged row counts from zero)."""
        raw = self._db.get(_key(_COUNTERS, self.ns, b""))
        try:
            found = json.loads(raw) if raw is not None else {}
        except ValueError:
            found = {}
        if not isinstance(found, dict):
            return {}
        return {key: value for key, value in found.items() if type(value) is int and value >= 0}

    # The event follower's CursorStore -------------------------------------------------------------

    def load(self) -> FollowerCursor | None:
        raw = self._db.get(_key(_CURSOR, self.ns, b""))
        return None if raw is None else FollowerCursor.from_json(raw.decode())

    def save(self, cursor: FollowerCursor) -> None:
        batch = self.batch()
        batch.set_cursor(cursor)
        self.write(batch)
