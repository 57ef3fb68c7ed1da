"""Records kept in the repository: every later version must still read them.

schema1-bob.hex predates locks (the migration adds empty lock fields); schema2-bob.hex holds pending
locks in both directions, a known secret and a registration.
"""

from __future__ import annotations

from pathlib import Path

import msgpack

from channeld import protocol as p
from channeld.wire import secrethash_of
from tests.protocol.pair import NOW, Peer, make_pair, settle_all

RECORDS = Path(__file__).resolve().parent / "records"
GOLDEN = RECORDS / "schema1-bob.hex"
GOLDEN2 = RECORDS / "schema2-bob.hex"


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


def scenario_with_locks() -> Peer:
    """Bob holding a lock of Alice's whose secret he knows (registered on chain) and one lock of his own."""
    alice, bob = make_pair(1000, 700)
    secret = bytes(range(32))
    expiry = NOW + 3600
    alice.feed(p.ActionSendLockedTransfer(5, 40, expiry, secrethash_of(secret), alice.signer.address,
                                          bob.signer.address, b"route"))
    bob.feed(p.ActionSendLockedTransfer(6, 20, expiry, secrethash_of(b"\x01" * 32), bob.signer.address,
                                        alice.signer.address))
    settle_all(alice, bob)
    bob.feed(p.ActionLearnSecret(secret))
    bob.feed(p.ContractReceiveSecretRegistered(secret, NOW + 10))
    bob.feed(p.ActionSendLockedTransfer(7, 1, expiry, secrethash_of(b"\x02" * 32), bob.signer.address,
                                        alice.signer.address))  # in flight: never delivered
    return bob


def test_schema1_record_is_still_readable() -> None:
    bob = scenario()
    golden = bytes.fromhex(GOLDEN.read_text().strip())
    assert msgpack.unpackb(golden)[0] == 1
    assert p.from_record(golden) == bob.state


def test_schema1_record_migrates_to_the_current_layout() -> None:
    migrated = p.to_record(p.from_record(bytes.fromhex(GOLDEN.read_text().strip())))
    assert msgpack.unpackb(migrated)[0] == p.SCHEMA_VERSION == 2
    assert migrated == p.to_record(scenario().state)


def test_schema2_record_with_locks_is_still_readable_and_unchanged() -> None:
    bob = scenario_with_locks()
    assert bob.state.our.locks and bob.state.partner.locks and bob.state.secrets and bob.state.registered
    assert bob.state.locks_in_flight
    golden = bytes.fromhex(GOLDEN2.read_text().strip())
    assert p.from_record(golden) == bob.state
    assert p.to_record(bob.state) == golden


if __name__ == "__main__":
    GOLDEN2.write_text(p.to_record(scenario_with_locks().state).hex() + "\n")
