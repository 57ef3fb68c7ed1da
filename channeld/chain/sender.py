"""The transaction sender: local nonces, gas estimation, fee bumping of stuck transactions.

`submit` returns as soon as the node has the transaction; confirmation is awaited separately
(`wait_for_receipt` here, or `channeld.chain.aio.AsyncSender.wait_for_receipt` from trio code).
Nonces are handed out under a lock, so concurrent submitters never share or skip one; a new sender
(after a restart) starts from the chain's pending nonce, which already counts its queued transactions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount

from channeld.chain.backend import ChainBackend
from channeld.chain.errors import (
    ConfirmationTimeout,
    InsufficientFunds,
    RpcFailed,
    TransactionReverted,
)
from channeld.chain.records import Receipt
from channeld.errors import LocalFault

# Nodes refuse a same-nonce replacement unless both fees rise by at least 10%; 12.5% clears that
# and matches what geth's pool wants for blob-free transactions with some margin.
BUMP_NUMERATOR, BUMP_DENOMINATOR = 9, 8
GAS_MARGIN_PERCENT = 20


@dataclass(frozen=True, slots=True)
class TxRequest:
    """What to send. `to=None` creates a contract; `gas=None` asks the node for an estimate."""

    to: str | None
    data: bytes = b""
    value: int = 0
    gas: int | None = None

    def __post_init__(self) -> None:
        if self.value < 0:
            raise LocalFault(f"transaction value must not be negative, got {self.value}")
        if self.gas is not None and self.gas <= 0:
            raise LocalFault(f"gas limit must be positive, got {self.gas}")


@dataclass(frozen=True, slots=True)
class SubmittedTx:
    """One signed transaction the node accepted. A replacement has the same nonce and a new hash."""

    request: TxRequest
    nonce: int
    tx_hash: bytes
    gas_limit: int
    max_fee: int
    priority_fee: int
    submitted_at: float


def bumped(fee: int) -> int:
    """`fee` raised by 12.5%, rounded up, and by at least one wei."""
    return max(fee + 1, -(-fee * BUMP_NUMERATOR // BUMP_DENOMINATOR))


class TransactionSender:
    """Signs with one local account and sends through a backend; blocking (call from a thread)."""

    def __init__(
        self,
        backend: ChainBackend,
        account: LocalAccount,
        error_abi: Sequence[Mapping[str, Any]] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.account = account
        self.error_abi = tuple(error_abi)
        self._clock = clock
        self._lock = threading.Lock()
        self._next_nonce: int | None = None
        # nonce -> every transaction sent with it, newest last (any one of them may be the one mined)
        self._sent: dict[int, list[SubmittedTx]] = {}

    @property
    def address(self) -> str:
        return str(self.account.address)

    def pending(self) -> tuple[SubmittedTx, ...]:
        """The newest transaction of every nonce not yet seen mined."""
        with self._lock:
            return tuple(versions[-1] for _, versions in sorted(self._sent.items()))

    def next_nonce(self) -> int:
        with self._lock:
            return self._peek_nonce()

    def _peek_nonce(self) -> int:
        if self._next_nonce is None:
            self._next_nonce = self.backend.pending_nonce(self.address)
        return self._next_nonce

    def submit(self, request: TxRequest) -> SubmittedTx:
        """Estimate, sign and send; returns once the node accepted it. Raises before using a nonce."""
        gas_limit = request.gas or self._estimate(request)
        base_fee, priority = self.backend.fee_basis()
        max_fee = 2 * base_fee + priority
        self._check_affordable(gas_limit * max_fee + request.value)
        with self._lock:
            nonce = self._peek_nonce()
            try:
                submitted = self._send(request, nonce, gas_limit, max_fee, priority)
            except RpcFailed as error:
                if not _is_nonce_clash(error):
                    raise
                # Someone else used this account (or we restarted mid-send): resync once and retry.
                nonce = self._next_nonce = self.backend.pending_nonce(self.address)
                submitted = self._send(request, nonce, gas_limit, max_fee, priority)
            self._next_nonce = nonce + 1
            self._sent[nonce] = [submitted]
        return submitted

    def replace(self, stuck: SubmittedTx) -> SubmittedTx:
        """Re-send the same nonce with both fees raised by at least 12.5% (or to today's level)."""
        base_fee, suggested = self.backend.fee_basis()
        priority = max(bumped(stuck.priority_fee), suggested)
        max_fee = max(bumped(stuck.max_fee), 2 * base_fee + priority)
        self._check_affordable(stuck.gas_limit * max_fee + stuck.request.value)
        with self._lock:
            versions = self._sent.get(stuck.nonce)
            if not versions:
                raise LocalFault(f"nonce {stuck.nonce} is not pending with this sender")
            newer = self._send(stuck.request, stuck.nonce, stuck.gas_limit, max_fee, priority)
            versions.append(newer)
        return newer

    def replace_stuck(self, older_than: float) -> list[SubmittedTx]:
        """Bump every pending transaction whose latest version waited longer than `older_than` s."""
        now = self._clock()
        stuck = [tx for tx in self.pending() if now - tx.submitted_at >= older_than]
        replaced = []
        for tx in stuck:
            if self.check_receipt(tx) is None:
                replaced.append(self.replace(tx))
        return replaced

    def check_receipt(self, submitted: SubmittedTx, confirmations: int = 0) -> Receipt | None:
        """The receipt of whichever version of this nonce got mined, once `confirmations` blocks
        sit on top of it; None while waiting. Raises `TransactionReverted` if it failed."""
        with self._lock:
            versions = list(self._sent.get(submitted.nonce, [submitted]))
        for version in reversed(versions):
            receipt = self.backend.receipt(version.tx_hash)
            if receipt is None:
                continue
            if self.backend.head() - receipt.block_number < confirmations:
                return None
            with self._lock:
                self._sent.pop(submitted.nonce, None)
            if not receipt.succeeded:
                raise self._explain_failure(version, receipt)
            return receipt
        return None

    def wait_for_receipt(
        self, submitted: SubmittedTx, timeout: float = 60.0, poll_interval: float = 0.1,
        confirmations: int = 0,
    ) -> Receipt:
        deadline = self._clock() + timeout
        while True:
            receipt = self.check_receipt(submitted, confirmations)
            if receipt is not None:
                return receipt
            if self._clock() >= deadline:
                raise ConfirmationTimeout(
                    f"transaction 0x{submitted.tx_hash.hex()} (nonce {submitted.nonce}) "
                    f"not confirmed within {timeout} s"
                )
            time.sleep(poll_interval)

    def transact(self, request: TxRequest, timeout: float = 60.0) -> Receipt:
        """Submit and wait until mined: for the CLI and the demo, never for trio code."""
        return self.wait_for_receipt(self.submit(request), timeout=timeout)

    def _estimate(self, request: TxRequest) -> int:
        tx: dict[str, Any] = {"from": self.address, "data": "0x" + request.data.hex(), "value": request.value}
        if request.to is not None:
            tx["to"] = request.to
        try:
            estimate = self.backend.estimate_gas(tx, self.error_abi)
        except RpcFailed as error:
            if _is_funds_error(error):
                raise InsufficientFunds(self.address, request.value, self.backend.balance(self.address)) \
                    from error
            raise
        return estimate + estimate * GAS_MARGIN_PERCENT // 100

    def _check_affordable(self, cost: int) -> None:
        balance = self.backend.balance(self.address)
        if balance < cost:
            raise InsufficientFunds(self.address, cost, balance)

    def _send(self, request: TxRequest, nonce: int, gas: int, max_fee: int, priority: int) -> SubmittedTx:
        tx: dict[str, Any] = {
            "type": 2, "chainId": self.backend.chain_id(), "nonce": nonce, "gas": gas,
            "maxFeePerGas": max_fee, "maxPriorityFeePerGas": priority,
            "data": request.data, "value": request.value,
        }
        if request.to is not None:
            tx["to"] = request.to
        raw = bytes(self.account.sign_transaction(tx).raw_transaction)
        try:
            tx_hash = self.backend.send_raw(raw)
        except RpcFailed as error:
            if _is_funds_error(error):
                raise InsufficientFunds(self.address, gas * max_fee + request.value,
                                        self.backend.balance(self.address)) from error
            raise
        return SubmittedTx(request, nonce, tx_hash, gas, max_fee, priority, self._clock())

    def _explain_failure(self, version: SubmittedTx, receipt: Receipt) -> TransactionReverted:
        """Replay the failed call on the state before its block to learn the custom error."""
        tx: dict[str, Any] = {"from": self.address, "data": "0x" + version.request.data.hex(),
                              "value": version.request.value, "gas": version.gas_limit}
        if version.request.to is not None:
            tx["to"] = version.request.to
        try:
            self.backend.call(tx, self.error_abi, block=max(receipt.block_number - 1, 0))
        except TransactionReverted as reverted:
            return TransactionReverted(reverted.error_name, reverted.error_args, receipt.tx_hash)
        return TransactionReverted("out of gas or state changed before mining", (), receipt.tx_hash)


def _is_nonce_clash(error: RpcFailed) -> bool:
    text = str(error).lower()
    return "nonce too low" in text or "already known" in text or "nonce has already been used" in text


def _is_funds_error(error: RpcFailed) -> bool:
    return "insufficient funds" in str(error).lower()


__all__ = ["SubmittedTx", "TransactionSender", "TxRequest", "bumped"]
