"""Schema version and the migration registry.

The version lives under one meta key. Release 1 wrote version 1; version 2 moved the audit log out of
LevelDB into segment files (`_migrations.py`); every later layout change adds a step `n -> n + 1` to
`MIGRATIONS`. Opening an older store runs each missing step in its own synced
WriteBatch that also bumps the version, so a crash between steps leaves a store at a known version.
"""

from __future__ import annotations

from collections.abc import Callable

import plyvel
from plyvel._plyvel import WriteBatch

from channeld.store import _keys as keys
from channeld.store._errors import SchemaError

SCHEMA_VERSION = 2
SCHEMA_KEY = keys.meta_key(b"schema_version")

# A step reads the store as it was before the step (`db` is not written until the batch is) and
# puts its changes into the batch.
MigrationStep = Callable[[plyvel.DB, WriteBatch], None]


class MigrationRegistry:
    """Steps keyed by the version they migrate from."""

    def __init__(self) -> None:
        self._steps: dict[int, MigrationStep] = {}

    def register(self, from_version: int) -> Callable[[MigrationStep], MigrationStep]:
        def add(step: MigrationStep) -> MigrationStep:
            if from_version in self._steps:
                raise SchemaError(f"two migrations from version {from_version}")
            self._steps[from_version] = step
            return step
        return add

    def plan(self, from_version: int, to_version: int) -> list[tuple[int, MigrationStep]]:
        missing = [v for v in range(from_version, to_version) if v not in self._steps]
        if missing:
            raise SchemaError(f"no migration from schema version {missing[0]} to {missing[0] + 1}")
        return [(v, self._steps[v]) for v in range(from_version, to_version)]


MIGRATIONS = MigrationRegistry()


def encode_version(version: int) -> bytes:
    return version.to_bytes(4, "big")


def read_version(db: plyvel.DB) -> int | None:
    raw = db.get(SCHEMA_KEY)
    if raw is None:
        return None
    if len(raw) != 4:
        raise SchemaError(f"schema version record is {len(raw)} bytes, expected 4")
    return int.from_bytes(raw, "big")


def prepare(db: plyvel.DB, target: int, registry: MigrationRegistry) -> None:
    """Stamp a new store with `target`, or migrate an older one up to it; refuse anything else."""
    version = read_version(db)
    if version is None:
        if next(db.iterator(include_value=False), None) is not None:
            raise SchemaError("data directory holds data but no schema version: not a channeld store")
        db.put(SCHEMA_KEY, encode_version(target), sync=True)
        return
    if version > target:
        raise SchemaError(f"store has schema version {version}, newer than this build's {target}")
    if version < 1:
        raise SchemaError(f"store has invalid schema version {version}")
    for from_version, step in registry.plan(version, target):
        batch = db.write_batch(sync=True)
        try:
            step(db, batch)
        except Exception as exc:
            raise SchemaError(f"migration from version {from_version} failed, store left at "
                              f"version {from_version}: {exc!r}") from exc
        batch.put(SCHEMA_KEY, encode_version(from_version + 1))
        batch.write()
