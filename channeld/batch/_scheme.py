"""Which consent scheme a batch of N channels should use, from the gas measured by `make gas`.

A batch's gas is close to linear in N: fixed + per_channel * N. ECDSA costs one ecrecover and 64 bytes of
signature per channel; BLS a fixed pairing check and hash-to-curve (about 180k gas) and nothing per
channel beyond the entry, about 4,300 gas less per channel. BLS needs every partner's key registered
with a proof of possession and the batch's signer list registered once (registerBlsSigners), which the
figures below leave out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from channeld.batch._entries import BatchKind
from channeld.batch._errors import InvalidBatch

BLOCK_GAS_LIMIT = 30_000_000


class Scheme(Enum):
    ECDSA = "ecdsa"
    BLS = "bls"


@dataclass(frozen=True, slots=True)
class GasModel:
    fixed: int
    per_channel: int

    def gas(self, count: int) -> int:
        return self.fixed + self.per_channel * count

    def largest_batch(self, block_gas: int = BLOCK_GAS_LIMIT) -> int:
        return max((block_gas - self.fixed) // self.per_channel, 0)


# docs/gas.json's `batch.models` (ERC-20, the line through N = 10 and N = 100); a test keeps them in step.
MEASURED: dict[tuple[BatchKind, Scheme], GasModel] = {
    (BatchKind.WITHDRAW, Scheme.ECDSA): GasModel(fixed=62_498, per_channel=15_018),
    (BatchKind.WITHDRAW, Scheme.BLS): GasModel(fixed=242_480, per_channel=10_750),
    (BatchKind.CLOSE, Scheme.ECDSA): GasModel(fixed=61_802, per_channel=41_430),
    (BatchKind.CLOSE, Scheme.BLS): GasModel(fixed=242_103, per_channel=36_385),
}


def choose_scheme(kind: BatchKind, count: int, models: dict[tuple[BatchKind, Scheme], GasModel] = MEASURED
                  ) -> Scheme:
    """The cheaper scheme for `count` channels (ECDSA on a tie: it needs no key registration)."""
    if count < 1:
        raise InvalidBatch("a batch has at least one entry")
    ecdsa, bls = models[(kind, Scheme.ECDSA)], models[(kind, Scheme.BLS)]
    return Scheme.BLS if bls.gas(count) < ecdsa.gas(count) else Scheme.ECDSA


def break_even(kind: BatchKind, models: dict[tuple[BatchKind, Scheme], GasModel] = MEASURED) -> int | None:
    """The smallest N from which BLS is cheaper, or None if it never is."""
    ecdsa, bls = models[(kind, Scheme.ECDSA)], models[(kind, Scheme.BLS)]
    saving = ecdsa.per_channel - bls.per_channel
    if saving <= 0:
        return None
    return (bls.fixed - ecdsa.fixed) // saving + 1
