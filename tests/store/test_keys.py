"""The on-disk key layout is a format: these bytes must never change meaning."""

from __future__ import annotations

import pytest

import channeld.store
from channeld.store import ChainCursor, Direction, InvalidRecord, Namespace, Table
from channeld.store import _keys as keys
from tests.store.helpers import NS, cid

NS_BYTES = (31337).to_bytes(8, "big") + bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")


def test_table_tags_are_fixed() -> None:
    assert {t.name: t.value for t in Table} == {
        "META": 0, "CHANNEL": 1, "PROOF": 2, "LOCK": 3, "PAYMENT": 4, "PEER": 5,
        "CHAIN_CURSOR": 6, "OUTBOX": 7, "AUDIT": 8, "AUDIT_PENDING": 9, "RISK_LEDGER": 10,
    }


def test_chain_scoped_keys_start_with_tag_then_namespace() -> None:
    assert keys.channel_key(NS, cid(7)) == b"\x01" + NS_BYTES + cid(7)
    assert keys.proof_key(NS, cid(7), Direction.INCOMING) == b"\x02" + NS_BYTES + cid(7) + b"\x01"
    assert keys.lock_key(NS, cid(7), cid(9)) == b"\x03" + NS_BYTES + cid(7) + cid(9)
    assert keys.payment_key(NS, cid(3)) == b"\x04" + NS_BYTES + cid(3)
    assert keys.chain_cursor_key(NS) == b"\x06" + NS_BYTES
    assert keys.outbox_key(NS, 258) == b"\x07" + NS_BYTES + (258).to_bytes(8, "big")


def test_node_scoped_keys_have_no_namespace() -> None:
    pubkey = b"\x03" + b"\x11" * 32
    assert keys.peer_key(pubkey) == b"\x05" + pubkey
    assert keys.audit_key(5) == b"\x08" + (5).to_bytes(8, "big")
    assert keys.meta_key(b"schema_version") == b"\x00schema_version"


def test_sequence_keys_sort_numerically() -> None:
    assert sorted([keys.audit_key(256), keys.audit_key(2), keys.audit_key(10)]) == [
        keys.audit_key(2), keys.audit_key(10), keys.audit_key(256)]


@pytest.mark.parametrize("chain_id, contract", [
    (0, b"\x00" * 20), (2**64, b"\x00" * 20), (1, b"\x00" * 19), (1, "0x" + "00" * 20), (True, b"\x00" * 20),
])
def test_namespace_validates(chain_id: object, contract: object) -> None:
    with pytest.raises(InvalidRecord):
        Namespace(chain_id, contract)  # type: ignore[arg-type]


def test_table_prefix_refuses_a_missing_or_extra_namespace() -> None:
    with pytest.raises(InvalidRecord):
        keys.table_prefix(Table.CHANNEL)
    with pytest.raises(InvalidRecord):
        keys.table_prefix(Table.PEER, NS)


def test_chain_cursor_round_trips_and_validates() -> None:
    cursor = ChainCursor(2**40, b"\xcd" * 32)
    assert ChainCursor.decode(cursor.encode()) == cursor
    with pytest.raises(InvalidRecord):
        ChainCursor.decode(b"\x00" * 39)
    with pytest.raises(InvalidRecord):
        ChainCursor(-1, b"\xcd" * 32)


def test_public_api_is_what_we_document() -> None:
    assert sorted(channeld.store.__all__) == sorted([
        "MIGRATIONS", "SCHEMA_VERSION", "AuditEntry", "AuditRecord", "AuditVerdict", "BackupRefused",
        "Batch", "ChainCursor", "ChainPoint", "CommitReceipt", "Direction", "InvalidRecord",
        "MigrationRegistry", "Namespace", "PendingCommit", "SchemaError", "Store", "StoreClosed",
        "StoreError", "StoreLocked", "StoreUnavailable", "Table", "WriterStatistics", "restore_backup",
        "verify_jsonl",
    ])
    assert all(hasattr(channeld.store, name) for name in channeld.store.__all__)
