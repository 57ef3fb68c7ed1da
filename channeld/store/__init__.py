"""LevelDB storage through plyvel: key layout, atomic durable batches, schema, audit log, backup.

The public face of the storage layer; everything else in this package is private. See
docs/storage.md for the key layout and the durability rules.
"""

from channeld.store._audit import (
    AuditEntry,
    AuditRecord,
    AuditVerdict,
    ChainPoint,
    verify_jsonl,
)
from channeld.store._backup import restore_backup
from channeld.store._batch import Batch, CommitReceipt
from channeld.store._errors import (
    BackupRefused,
    InvalidRecord,
    SchemaError,
    StoreClosed,
    StoreError,
    StoreLocked,
    StoreUnavailable,
)
from channeld.store._keys import ChainCursor, Direction, Namespace, Table
from channeld.store._schema import MIGRATIONS, SCHEMA_VERSION, MigrationRegistry
from channeld.store._store import Store
from channeld.store._writer import PendingCommit, WriterStatistics

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AuditEntry",
    "AuditRecord",
    "AuditVerdict",
    "BackupRefused",
    "Batch",
    "ChainCursor",
    "ChainPoint",
    "CommitReceipt",
    "Direction",
    "InvalidRecord",
    "MigrationRegistry",
    "Namespace",
    "PendingCommit",
    "SchemaError",
    "Store",
    "StoreClosed",
    "StoreError",
    "StoreLocked",
    "StoreUnavailable",
    "Table",
    "WriterStatistics",
    "restore_backup",
    "verify_jsonl",
]
