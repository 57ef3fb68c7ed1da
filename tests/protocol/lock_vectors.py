"""proto/vectors/locks.json: lock packing, locks roots and mediator fees; regenerate with
`python -m tests.protocol.lock_vectors` (only when the spec changes on purpose)."""

from __future__ import annotations

import json
from typing import Any

from channeld import protocol as p
from channeld.wire import Lock, secrethash_of
from tests.protocol.vectors import VECTORS

LOCKS_FILE = VECTORS / "locks.json"
SECRETS = (bytes(32), b"\x01" * 32, bytes(range(32)), b"\xff" * 32)
AMOUNTS = (1, 10**18, 2**256 - 1, 5)
EXPIRATIONS = (1_700_000_600, 0, 2**64 - 1, 1_700_086_400)
ROOT_SETS = ((), (0,), (2,), (0, 1), (1, 0), (0, 1, 3))
FEES = ((0, 0, 100), (1, 0, 100), (2, 10_000, 101), (0, 1, 1), (5, 1_000_000, 77), (3, 333, 10**18))


def lock_vectors() -> dict[str, Any]:
    locks = [Lock(a, e, secrethash_of(s)) for a, e, s in zip(AMOUNTS, EXPIRATIONS, SECRETS, strict=True)]
    return {
        "locks": [{"amount": str(x.amount), "expiration": x.expiration, "secret": "0x" + s.hex(),
                   "secrethash": "0x" + x.secrethash.hex(), "packed": "0x" + p.pack_lock(x).hex()}
                  for x, s in zip(locks, SECRETS, strict=True)],
        "roots": [{"locks": list(idx), "locked_amount": str(sum(locks[i].amount for i in idx)),
                   "locks_root": "0x" + p.locks_root(tuple(locks[i] for i in idx)).hex()}
                  for idx in ROOT_SETS],
        "fees": [{"base": b, "ppm": ppm, "amount_out": out, "fee": p.FeePolicy(b, ppm).fee(out),
                  "amount_in": str(p.FeePolicy(b, ppm).amount_in(out))} for b, ppm, out in FEES],
    }


if __name__ == "__main__":
    LOCKS_FILE.write_text(json.dumps(lock_vectors(), indent=1) + "\n")
