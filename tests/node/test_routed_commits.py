"""What lets a routed payment save a commit: the payer's "paying" mark is handed to the store's writer
without waiting, because any round submitted after it is durable only once the mark is."""

from __future__ import annotations

from pathlib import Path

from channeld.node._journal import Journal, _table_key
from channeld.store import Batch, Store
from tests.store.helpers import NS, cid


async def test_every_mark_handed_off_before_a_round_is_on_disk_once_that_round_is(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "db")
    journal = Journal.open(tmp_path, store)
    try:
        for n in range(40):
            journal.put_soon("paid", f"h{n}", {"status": "paying", "n": n})
            pending = store.submit(Batch().put_channel(NS, cid(n + 1), b"first lock %d" % n))
            if n % 3 == 0:
                continue  # let several marks and rounds queue behind one another
            await pending.wait_durable()
            for m in range(n + 1):
                assert store.get_journal(_table_key("paid", f"h{m}")) == b'{"status": "paying", "n": %d}' % m
    finally:
        journal.close()
        store.close()
