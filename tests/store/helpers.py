"""Shared values and helpers of the store tests."""

from __future__ import annotations

import subprocess
import sys

from channeld.store import Direction, Namespace, Store
from tests.tools import REPO

NS = Namespace(31337, bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))
OTHER_NS = Namespace(1, bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))


def cid(n: int) -> bytes:
    """A 32-byte channel id (or any 32-byte id) made from a small number."""
    return n.to_bytes(32, "big")


def spawn_child(*args: str) -> subprocess.Popen[bytes]:
    """Start tests/store/_child.py in its own process with stdout piped."""
    return subprocess.Popen([sys.executable, "-m", "tests.store._child", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def triple_state(store: Store, channel_id: bytes) -> tuple[bytes | None, bytes | None, bytes | None]:
    """The three values the child writes in one batch: all equal, or all missing, if atomic."""
    return (store.get_channel(NS, channel_id), store.get_proof(NS, channel_id, Direction.OUTGOING),
            store.get_proof(NS, channel_id, Direction.INCOMING))
