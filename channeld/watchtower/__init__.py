"""The watchtower: disputes stale closes for clients that delegated their partners' proofs to it.

- `Watchtower` (the service: pushes over BOLT 8, the contract's events, disputes) on a `TowerDB`;
  `channeld watchtower run` starts one (`register_watchtower` in `channeld.watchtower.cli`).
- `TowerClient` (in `channeld.watchtower.client`): a node's or wallet's side, pushing asynchronously.
- `check_push`, `dispute_needed`, `dispute_status`: the pure rules both are built on.
Design, guarantees and what a tower learns: docs/watchtower.md.
"""

from channeld.watchtower._db import SCHEMA_VERSION, TowerBatch, TowerDB
from channeld.watchtower._errors import (
    ClientMisuse,
    CorruptTowerRecord,
    PushRefusal,
    RefusalCode,
    TowerError,
)
from channeld.watchtower._records import Dispute, HeldProof
from channeld.watchtower._rules import (
    DisputeStatus,
    check_push,
    dispute_calldata,
    dispute_needed,
    dispute_status,
)
from channeld.watchtower._service import TowerSettings, TowerStatistics, Watchtower

__all__ = [
    "SCHEMA_VERSION",
    "ClientMisuse",
    "CorruptTowerRecord",
    "Dispute",
    "DisputeStatus",
    "HeldProof",
    "PushRefusal",
    "RefusalCode",
    "TowerBatch",
    "TowerDB",
    "TowerError",
    "TowerSettings",
    "TowerStatistics",
    "Watchtower",
    "check_push",
    "dispute_calldata",
    "dispute_needed",
    "dispute_status",
]
