"""Schema version and migrations: a v1 store made by a fixture is migrated step by step."""

from __future__ import annotations

import io
import json
from pathlib import Path

import plyvel
import pytest
from plyvel._plyvel import WriteBatch

from channeld.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    AuditEntry,
    AuditRecord,
    Batch,
    ChainPoint,
    Direction,
    MigrationRegistry,
    SchemaError,
    Store,
    Table,
    restore_backup,
    verify_jsonl,
)
from channeld.store import _keys as keys
from tests.store.helpers import NS, OTHER_NS, cid


def _write_v1(path: Path, audit_entries: int) -> list[AuditEntry]:
    """A store byte for byte as release 1 wrote it: channels, proofs, JSON audit entries under 0x08."""
    from channeld.store._audit import encode_point, seal

    sealed: list[AuditEntry] = []
    prev = bytes(32)
    with plyvel.DB(str(path), create_if_missing=True) as db, db.write_batch(sync=True) as batch:
        batch.put(keys.meta_key(b"schema_version"), (1).to_bytes(4, "big"))
        for n in range(3):
            batch.put(keys.channel_key(NS, cid(n)), b"chan %d" % n)
            batch.put(keys.proof_key(NS, cid(n), Direction.OUTGOING), b"proof %d" % n)
        for n in range(audit_entries):
            ns = NS if n % 2 else OTHER_NS
            entry = seal(AuditRecord(ns, cid(n % 3), b"\x01" * 20, "deposit", n), n, 1000 + n, prev)
            batch.put(keys.audit_key(n), entry.to_json())
            sealed.append(entry)
            prev = entry.hash
        if sealed:
            batch.put(keys.meta_key(b"audit_head"), encode_point(ChainPoint(sealed[-1].seq, prev)))
    return sealed


@pytest.fixture
def v1_store(tmp_path: Path) -> Path:
    path = tmp_path / "v1"
    _write_v1(path, 3)
    return path


def _registry_to_v3() -> MigrationRegistry:
    """A future layout change after this build's: channel records gain a leading format byte."""
    registry = MigrationRegistry()
    registry.register(1)(MIGRATIONS.plan(1, 2)[0][1])

    @registry.register(2)
    def add_format_byte(db: plyvel.DB, batch: WriteBatch) -> None:
        for key, value in db.iterator(prefix=bytes([Table.CHANNEL])):
            batch.put(key, b"\x02" + value)

    return registry


def test_this_build_writes_schema_version_two(tmp_path: Path) -> None:
    assert SCHEMA_VERSION == 2
    with Store.open(tmp_path / "new") as store:
        assert store.schema_version == 2


def test_v1_audit_entries_move_to_the_log_with_their_hashes(tmp_path: Path) -> None:
    sealed = _write_v1(tmp_path / "v1", 2500)  # more than one pending chunk of the migration
    with Store.open(tmp_path / "v1") as store:
        assert store.schema_version == 2
        assert list(store.iter_audit()) == sealed
        verdict = store.verify_audit()
        assert verdict.ok and verdict.entries == 2500
        assert next(store._db.iterator(prefix=bytes([Table.AUDIT])), None) is None
        store.commit_sync(Batch().append_audit(AuditRecord(NS, cid(1), b"\x01" * 20, "deposit", 7)))
        assert store.verify_audit().entries == 2501
        assert store.get_channel(NS, cid(2)) == b"chan 2"
    with Store.open(tmp_path / "v1") as store:
        out = io.BytesIO()
        assert store.export_audit(out) == 2501
    assert verify_jsonl(out.getvalue().splitlines()).ok


def test_v1_entry_tampered_before_the_migration_still_fails_after_it(tmp_path: Path) -> None:
    _write_v1(tmp_path / "v1", 10)
    with plyvel.DB(str(tmp_path / "v1")) as db:
        entry = json.loads(db.get(keys.audit_key(4)))
        entry["amount"] = 10**18
        db.put(keys.audit_key(4), json.dumps(entry).encode())
    with Store.open(tmp_path / "v1") as store:
        assert store.verify_audit().first_bad == 4


def test_v1_store_is_migrated_to_v3_once(v1_store: Path) -> None:
    registry = _registry_to_v3()
    for _ in range(2):  # the second open finds v3 and must not migrate again
        with Store.open(v1_store, schema_version=3, migrations=registry) as store:
            assert store.schema_version == 3
            assert store.get_channel(NS, cid(1)) == b"\x02chan 1"
            assert store.get_proof(NS, cid(1), Direction.OUTGOING) == b"proof 1"
            assert store.verify_audit().ok


def test_build_refuses_a_store_newer_than_itself(v1_store: Path) -> None:
    Store.open(v1_store, schema_version=3, migrations=_registry_to_v3()).close()
    with pytest.raises(SchemaError, match="newer"):
        Store.open(v1_store)


def test_missing_step_is_refused_and_changes_nothing(v1_store: Path) -> None:
    with pytest.raises(SchemaError, match="no migration from schema version 3"):
        Store.open(v1_store, schema_version=4, migrations=_registry_to_v3())
    with Store.open(v1_store) as store:
        assert store.schema_version == 2
        assert store.get_channel(NS, cid(1)) == b"chan 1"


def test_failing_step_leaves_the_store_at_the_previous_version(v1_store: Path) -> None:
    registry = MigrationRegistry()

    @registry.register(1)
    def half_done(db: plyvel.DB, batch: WriteBatch) -> None:
        batch.put(keys.channel_key(NS, cid(1)), b"half-migrated")
        raise ValueError("record 2 cannot be converted")

    with pytest.raises(SchemaError, match="store left at version 1"):
        Store.open(v1_store, schema_version=2, migrations=registry)
    with Store.open(v1_store) as store:
        assert store.get_channel(NS, cid(1)) == b"chan 1"


def test_restored_v1_backup_is_migrated_on_open(v1_store: Path, tmp_path: Path) -> None:
    with Store.open(v1_store) as store:
        store.backup(tmp_path / "v1.bak")
    restore_backup(tmp_path / "v1.bak", tmp_path / "restored", max_schema=3)
    with Store.open(tmp_path / "restored", schema_version=3, migrations=_registry_to_v3()) as store:
        assert store.get_channel(NS, cid(0)) == b"\x02chan 0"


def test_duplicate_step_is_a_schema_error() -> None:
    registry = _registry_to_v3()
    with pytest.raises(SchemaError, match="two migrations"):
        registry.register(1)(lambda db, batch: None)


def test_foreign_leveldb_without_version_is_refused(tmp_path: Path) -> None:
    with plyvel.DB(str(tmp_path / "foreign"), create_if_missing=True) as db:
        db.put(b"someone else's", b"data")
    with pytest.raises(SchemaError, match="not a channeld store"):
        Store.open(tmp_path / "foreign")
