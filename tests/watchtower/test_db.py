"""The tower's records and its LevelDB: round trips, damage reported, foreign data refused."""

from __future__ import annotations

from pathlib import Path

import plyvel
import pytest

from channeld.chain import SubmittedTx, TxRequest
from channeld.chain.contract import ETHER, ChannelState, Closing, OnChainChannel, Settlement, StoredProof
from channeld.chain.follower import FollowerCursor
from channeld.chain.records import BlockMark
from channeld.store import Namespace
from channeld.watchtower import CorruptTowerRecord, Dispute, HeldProof, TowerDB, TowerError
from channeld.watchtower._records import decode_channel, decode_held, encode_channel, encode_held

NS = Namespace(31337, bytes(range(20)))
CID = b"\x42" * 32
P1, P2 = "0x1111111111111111111111111111111111111111", "0x2222222222222222222222222222222222222222"


def _channel() -> OnChainChannel:
    state = ChannelState(P1, P2, ETHER, 600, 2**255, 5, 1, 0)
    closing = Closing(P2, 1_700_000_000, StoredProof(3, 2**200, 7, b"\x01" * 32), StoredProof())
    return OnChainChannel(CID, state, closing, Settlement(1, 2, 3, 4), False)


def _held() -> HeldProof:
    return HeldProof(bytes.fromhex(P1[2:]), 9, 2**250, 0, bytes(32), b"\x05" * 65, b"\x06" * 65)


def test_records_round_trip() -> None:
    assert decode_channel(encode_channel(_channel())) == _channel()
    open_channel = OnChainChannel(CID, _channel().state)
    assert decode_channel(encode_channel(open_channel)) == open_channel
    assert decode_held(encode_held(_held())) == _held()


@pytest.mark.parametrize("raw", [b"", b"\xc1", b"\x93\x01\x02\x03", encode_held(_held())[:-3]])
def test_damaged_records_are_reported(raw: bytes) -> None:
    with pytest.raises(CorruptTowerRecord):
        decode_held(raw)
    with pytest.raises(CorruptTowerRecord):
        decode_channel(raw)


def test_db_keeps_everything_across_reopen(tmp_path: Path) -> None:
    db = TowerDB(tmp_path / "db", NS)
    batch = db.batch()
    batch.put_channel(_channel())
    batch.put_held(CID, _held())
    batch.put_dispute(Dispute(CID, 9, 1_700_000_000))
    cursor = FollowerCursor(BlockMark(12, b"\x0c" * 32), (BlockMark(12, b"\x0c" * 32),), ())
    batch.set_cursor(cursor)
    db.write(batch)
    db.close()
    db = TowerDB(tmp_path / "db", NS)
    assert db.get_channel(CID) == _channel()
    assert db.get_held(CID, _held().pusher) == _held()
    assert db.get_held(CID, b"\x00" * 20) is None
    assert list(db.iter_disputes()) == [Dispute(CID, 9, 1_700_000_000)]
    assert db.load() == cursor
    assert db.count_held() == 1
    # another namespace in the same database sees none of it
    other = Namespace(1, NS.contract)
    db.close()
    db = TowerDB(tmp_path / "db", other)
    assert db.get_channel(CID) is None and db.count_held() == 0 and db.load() is None
    db.close()


def test_a_foreign_or_newer_database_is_refused(tmp_path: Path) -> None:
    foreign = plyvel.DB(str(tmp_path / "foreign"), create_if_missing=True)
    foreign.put(b"something", b"else")
    foreign.close()
    with pytest.raises(TowerError, match="no schema version"):
        TowerDB(tmp_path / "foreign", NS)
    newer = plyvel.DB(str(tmp_path / "newer"), create_if_missing=True)
    newer.put(b"\x00schema_version", (99).to_bytes(4, "big"))
    newer.close()
    with pytest.raises(TowerError, match="schema"):
        TowerDB(tmp_path / "newer", NS)


def test_a_locked_database_is_a_tower_error(tmp_path: Path) -> None:
    db = TowerDB(tmp_path / "db", NS)
    with pytest.raises(TowerError, match="cannot open"):
        TowerDB(tmp_path / "db", NS)
    db.close()


def test_transactions_in_flight_are_kept_per_channel_until_deleted(tmp_path: Path) -> None:
    request = TxRequest(to=P1, data=b"\x01", gas=50_000)
    versions = (SubmittedTx(request, 4, b"\x0a" * 32, 50_000, 10, 1, 0.0),
                SubmittedTx(request, 4, b"\x0b" * 32, 50_000, 12, 2, 0.0))
    db = TowerDB(tmp_path / "db", NS)
    try:
        batch = db.batch()
        batch.put_flight(CID, versions[:1])
        batch.put_flight(b"\x43" * 32, versions[:1])
        db.write(batch)
        batch = db.batch()
        batch.put_flight(CID, versions)  # a bump adds a version under the same key
        batch.delete_flight(b"\x43" * 32)
        db.write(batch)
        assert list(db.iter_flights()) == [(CID, versions)]
    finally:
        db.close()
