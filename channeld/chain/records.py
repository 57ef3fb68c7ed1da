"""Plain records the chain layer hands out: block marks, raw logs, receipts. Free of web3 types."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BlockMark:
    """A block by number and hash: two marks with one number and different hashes mean a reorg."""

    number: int
    hash: bytes


@dataclass(frozen=True, slots=True)
class RawLog:
    """One undecoded log, with everything needed to identify it across reorgs."""

    address: str
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    block_hash: bytes
    tx_hash: bytes
    log_index: int

    @property
    def identity(self) -> tuple[bytes, int]:
        """Unique per log on one chain: a consumer can de-duplicate on it."""
        return (self.block_hash, self.log_index)


@dataclass(frozen=True, slots=True)
class Receipt:
    tx_hash: bytes
    block_number: int
    block_hash: bytes
    succeeded: bool
    gas_used: int
    effective_gas_price: int
    contract_address: str | None
    logs: tuple[RawLog, ...]

    @property
    def fee_paid(self) -> int:
        return self.gas_used * self.effective_gas_price
