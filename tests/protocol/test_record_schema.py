"""A schema-1 record kept in the repository: every later version must still read it."""

from __future__ import annotations

from pathlib import Path

from channeld import protocol as p
from tests.protocol.pair import NOW, Peer, make_pair, settle_all

GOLDEN = Path(__file__).resolve().parent / "records" / "schema1-bob.hex"


def scenario() -> Peer:
    """Bob after payments both ways, a countersigned withdraw of Alice's and one held payment."""
    alice, bob = make_pair(1000, 700)
    alice.feed(p.ActionPay(1, 100))
    bob.feed(p.ActionPay(2, 30))
    settle_all(alice, bob)
    alice.feed(p.ActionWithdraw(200, NOW + 3600))
    settle_all(alice, bob)
    alice.feed(p.ActionPay(3, 5))
    alice.feed(p.ActionPay(4, 5))
    bob.feed(alice.outbox[-1])  # nonce 3 is still missing: held
    return bob


def test_schema1_record_is_still_readable_and_unchanged() -> None:
    bob = scenario()
    golden = bytes.fromhex(GOLDEN.read_text().strip())
    assert p.from_record(golden) == bob.state
    assert p.to_record(bob.state) == golden


if __name__ == "__main__":
    GOLDEN.write_text(p.to_record(scenario().state).hex() + "\n")
