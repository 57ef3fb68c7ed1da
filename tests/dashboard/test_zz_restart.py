"""Last in the session (it restarts node A): what the watchtower view shows survives a crash."""

from __future__ import annotations

import signal

from channeld.node._journal import Journal
from channeld.node._towers import TOWERS_TABLE
from tests.dashboard.conftest import Nodes
from tests.node.helpers import wait_until


def test_the_last_push_of_a_tower_survives_a_crash_of_the_node(nodes: Nodes) -> None:
    nodes.b.call("POST", "/payments", {"node_id": nodes.a.node_id, "amount": "1000"})
    shown = wait_until(lambda: nodes.a.call("GET", "/watchtowers")[0]["last_push_at"], what="a push")
    nodes.a.kill(signal.SIGKILL)
    journal = Journal.open(nodes.a.datadir)
    try:
        (record,) = [r for _, r in journal.items(TOWERS_TABLE)]
    finally:
        journal.close()
    assert record["uri"] == nodes.tower_uri
    assert record["last_push_at"] >= shown  # a later push may have landed before the kill
    nodes.a.start()
    assert nodes.a.call("GET", "/watchtowers")[0]["last_push_at"] >= record["last_push_at"]
