"""Schema version and migrations: a v1 store made by a fixture is migrated step by step."""

from __future__ import annotations

from pathlib import Path

import plyvel
import pytest
from plyvel._plyvel import WriteBatch

from channeld.store import (
    SCHEMA_VERSION,
    AuditRecord,
    Batch,
    Direction,
    MigrationRegistry,
    SchemaError,
    Store,
    Table,
    restore_backup,
)
from channeld.store import _keys as keys
from tests.store.helpers import NS, cid


@pytest.fixture
def v1_store(tmp_path: Path) -> Path:
    """A store as release 1 writes it: channels, proofs, an audit entry."""
    path = tmp_path / "v1"
    with Store.open(path, schema_version=1) as store:
        for n in range(3):
            store.commit_sync(Batch().put_channel(NS, cid(n), b"chan %d" % n)
                              .put_proof(NS, cid(n), Direction.OUTGOING, b"proof %d" % n)
                              .append_audit(AuditRecord(NS, cid(n), b"\x01" * 20, "deposit", n)))
        assert store.schema_version == 1
    return path


def _registry_to_v2() -> MigrationRegistry:
    """A future layout change: channel records gain a leading format byte."""
    registry = MigrationRegistry()

    @registry.register(1)
    def add_format_byte(db: plyvel.DB, batch: WriteBatch) -> None:
        for key, value in db.iterator(prefix=bytes([Table.CHANNEL])):
            batch.put(key, b"\x02" + value)

    return registry


def test_release_one_writes_schema_version_one(v1_store: Path) -> None:
    assert SCHEMA_VERSION == 1
    with Store.open(v1_store) as store:
        assert store.schema_version == 1


def test_v1_store_is_migrated_to_v2_once(v1_store: Path) -> None:
    registry = _registry_to_v2()
    for _ in range(2):  # the second open finds v2 and must not migrate again
        with Store.open(v1_store, schema_version=2, migrations=registry) as store:
            assert store.schema_version == 2
            assert store.get_channel(NS, cid(1)) == b"\x02chan 1"
            assert store.get_proof(NS, cid(1), Direction.OUTGOING) == b"proof 1"
            assert store.verify_audit().ok


def test_build_refuses_a_store_newer_than_itself(v1_store: Path) -> None:
    Store.open(v1_store, schema_version=2, migrations=_registry_to_v2()).close()
    with pytest.raises(SchemaError, match="newer"):
        Store.open(v1_store)


def test_missing_step_is_refused_and_changes_nothing(v1_store: Path) -> None:
    with pytest.raises(SchemaError, match="no migration from schema version 2"):
        Store.open(v1_store, schema_version=3, migrations=_registry_to_v2())
    with Store.open(v1_store) as store:
        assert store.schema_version == 1
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
    restore_backup(tmp_path / "v1.bak", tmp_path / "restored", max_schema=2)
    with Store.open(tmp_path / "restored", schema_version=2, migrations=_registry_to_v2()) as store:
        assert store.get_channel(NS, cid(0)) == b"\x02chan 0"


def test_duplicate_step_is_a_schema_error() -> None:
    registry = _registry_to_v2()
    with pytest.raises(SchemaError, match="two migrations"):
        registry.register(1)(lambda db, batch: None)


def test_foreign_leveldb_without_version_is_refused(tmp_path: Path) -> None:
    with plyvel.DB(str(tmp_path / "foreign"), create_if_missing=True) as db:
        db.put(b"someone else's", b"data")
    with pytest.raises(SchemaError, match="not a channeld store"):
        Store.open(tmp_path / "foreign")
