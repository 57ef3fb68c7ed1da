"""The transaction sender: local nonces, gas estimation, fee bumping of stuck transactions.

`submit` returns as soon as the node has the transaction; confirmation is awaited separately
(`wait_for_receipt` here, or `channeld.chain.aio.AsyncSender.wait_for_receipt` from trio code).
Nonces are handed out under a lock, so concurrent submitters never share or skip one; a new sender
(after a restart) starts from the chain's pending nonce, which already counts its queued transactions.

An unconfirmed transaction is re-sent with the same nonce and higher fees by `bump`, following a
`FeePolicy`: after `bump_after` seconds, at least 12.5% more, faster toward the cap as a deadline nears,
never above the cap. Two ways to find a transaction again after a restart:
- `adopt`: the caller persisted each version (`before_send` runs after signing, before broadcasting),
  and hands them back; the sender watches and bumps them as if it had sent them.
- `take_over_pool`: for an account whose every transaction is re-derived from durable state (the
  node's outbox), start from the *mined* nonce, so the re-derived transaction replaces the one left in
  the pool instead of queueing behind it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
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
from channeld.errors import ChainError, LocalFault

# Nodes refuse a same-nonce replacement unless both fees rise by at least 10%; 12.5% clears that
# and matches what geth's pool wants for blob-free transactions with some margin.
BUMP_NUMERATOR, BUMP_DENOMINATOR = 9, 8
GAS_MARGIN_PERCENT = 20
log = logging.getLogger("channeld.chain")
DEFAULT_FEE_CAP = 500 * 10**9  # 500 gwei per gas
# A replacement refused as underpriced (an older version of ours holds the nonce, fees unknown after a
# restart) is retried this many times, 12.5% higher each, before giving up: 1.125**40 is about 110x.
_MAX_UNDERPRICED_RETRIES = 40
BeforeSend = Callable[["SubmittedTx"], None]


class NonceTaken(ChainError):
    """The transaction's nonce was used by a transaction this sender does not know: it will never mine."""


class FeeCapReached(ChainError):
    """The pool refuses every replacement up to the fee cap: an older version with higher fees holds it."""


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


@dataclass(frozen=True, slots=True)
class FeePolicy:
    """When and how far an unconfirmed transaction's fees are raised.

    Each re-send offers at least 12.5% more than the last (what pools demand of a replacement) and at
    least today's level (twice the base fee plus the suggested tip). With a deadline, the fee also
    follows a geometric path that reaches `fee_cap` at the last re-send before it: with `k` re-sends
    left (`time_left // bump_after`), the multiplier is `(cap / fee) ** (1 / (k + 1))`, so a far
    deadline gets 12.5% steps and a near (or passed) one gets the cap at once. Never above the cap.
    """

    bump_after: float = 12.0
    fee_cap: int = DEFAULT_FEE_CAP

    def __post_init__(self) -> None:
        if not self.bump_after > 0:
            raise LocalFault(f"bump_after must be positive, got {self.bump_after}")
        if self.fee_cap <= 0:
            raise LocalFault(f"the fee cap must be positive, got {self.fee_cap}")

    def next_fees(self, tx: SubmittedTx, base_fee: int, suggested_tip: int,
                  time_left: float | None = None) -> tuple[int, int] | None:
        """(max fee, tip) for the replacement of `tx`, or None when a valid bump would pass the cap."""
        if bumped(tx.max_fee) > self.fee_cap:
            return None
        tip = max(bumped(tx.priority_fee), suggested_tip)
        max_fee = max(bumped(tx.max_fee), 2 * base_fee + tip)
        if time_left is not None:
            resends_left = max(0, int(time_left // self.bump_after))
            start = max(tx.max_fee, 1)  # a zero-fee dev chain still escalates
            factor = (self.fee_cap / start) ** (1 / (resends_left + 1))
            max_fee = max(max_fee, math.ceil(start * factor))
            tip = max(tip, math.ceil(tx.priority_fee * factor))
        max_fee = min(max_fee, self.fee_cap)
        return max_fee, min(tip, max_fee)


class TransactionSender:
    """Signs with one local account and sends through a backend; blocking (call from a thread)."""

    def __init__(
        self,
        backend: ChainBackend,
        account: LocalAccount,
        error_abi: Sequence[Mapping[str, Any]] = (),
        clock: Callable[[], float] = time.monotonic,
        fee_policy: FeePolicy | None = None,
    ) -> None:
        self.backend = backend
        self.account = account
        self.error_abi = tuple(error_abi)
        self.fee_policy = fee_policy or FeePolicy()
        self._clock = clock
        self._lock = threading.Lock()
        self._next_nonce: int | None = None
        self._from_mined = False
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
            self._next_nonce = self._chain_nonce()
        return self._next_nonce

    def _chain_nonce(self) -> int:
        return self.mined_nonce() if self._from_mined else self.backend.pending_nonce(self.address)

    def mined_nonce(self) -> int:
        """The account's nonce in the latest block: every nonce below it is used for good."""
        found = self.backend.rpc("eth_getTransactionCount", [self.address, "latest"])
        return int(found, 16) if isinstance(found, str) else int(found)

    def take_over_pool(self) -> None:
        """From now on, fresh nonces start at the mined nonce: what this account left in the pool before
        a restart is replaced by the next submissions (their fees raised until the pool takes them)."""
        with self._lock:
            self._from_mined = True
            self._next_nonce = None

    def waited(self, submitted: SubmittedTx) -> float:
        """Seconds since `submitted` was sent (or adopted)."""
        return self._clock() - submitted.submitted_at

    def submit(self, request: TxRequest, before_send: BeforeSend | None = None) -> SubmittedTx:
        """Estimate, sign and send; returns once the node accepted it. Raises before using a nonce.
        `before_send` gets the signed transaction (hash known) before it is broadcast: persist it there."""
        gas_limit = request.gas or self._estimate(request)
        base_fee, priority = self.backend.fee_basis()
        max_fee = 2 * base_fee + priority
        self._check_affordable(gas_limit * max_fee + request.value)
        with self._lock:
            nonce = self._peek_nonce()
            try:
                submitted = self._send_over_pooled(request, nonce, gas_limit, max_fee, priority, before_send)
            except RpcFailed as error:
                if not _is_nonce_clash(error):
                    raise
                # Someone else used this account (or we restarted mid-send): resync once and retry.
                nonce = self._next_nonce = self._chain_nonce()
                submitted = self._send_over_pooled(request, nonce, gas_limit, max_fee, priority, before_send)
            self._next_nonce = submitted.nonce + 1
            self._sent[submitted.nonce] = [submitted]
        return submitted

    def _send_over_pooled(self, request: TxRequest, nonce: int, gas: int, max_fee: int, priority: int,
                          before_send: BeforeSend | None) -> SubmittedTx:
        """Send; while the pool holds an older version of ours with this nonce (fees unknown after a
        restart), raise both fees by 12.5% until it takes ours, up to the policy's cap."""
        for _ in range(_MAX_UNDERPRICED_RETRIES):
            try:
                return self._send(request, nonce, gas, max_fee, priority, before_send)
            except RpcFailed as error:
                if not _is_underpriced(error):
                    raise
            max_fee, priority = bumped(max_fee), bumped(priority)
            if max_fee > self.fee_policy.fee_cap:
                break
            self._check_affordable(gas * max_fee + request.value)
        raise FeeCapReached(f"nonce {nonce} is held in the pool by a transaction paying more than "
                            f"{self.fee_policy.fee_cap} wei per gas")

    def replace(self, stuck: SubmittedTx, before_send: BeforeSend | None = None) -> SubmittedTx:
        """Re-send the same nonce with both fees raised by at least 12.5% (or to today's level)."""
        base_fee, suggested = self.backend.fee_basis()
        priority = max(bumped(stuck.priority_fee), suggested)
        max_fee = max(bumped(stuck.max_fee), 2 * base_fee + priority)
        return self._replace_with(stuck, max_fee, priority, before_send)

    def bump(self, stuck: SubmittedTx, time_left: float | None = None,
             before_send: BeforeSend | None = None) -> SubmittedTx | None:
        """Re-send `stuck` with the fees the policy gives for `time_left` seconds to its deadline;
        None if it already offers (about) the cap, so there is nothing more to offer."""
        base_fee, suggested = self.backend.fee_basis()
        fees = self.fee_policy.next_fees(stuck, base_fee, suggested, time_left)
        if fees is None:
            return None
        return self._replace_with(stuck, fees[0], fees[1], before_send)

    def _replace_with(self, stuck: SubmittedTx, max_fee: int, priority: int,
                      before_send: BeforeSend | None) -> SubmittedTx:
        self._check_affordable(stuck.gas_limit * max_fee + stuck.request.value)
        with self._lock:
            versions = self._sent.get(stuck.nonce)
            if not versions:
                raise LocalFault(f"nonce {stuck.nonce} is not pending with this sender")
            newer = self._send(stuck.request, stuck.nonce, stuck.gas_limit, max_fee, priority, before_send)
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

    def adopt(self, versions: Sequence[SubmittedTx]) -> SubmittedTx:
        """Take back the versions of one nonce sent before a restart (oldest first), as persisted by a
        `before_send`: `check_receipt` looks at all of them, `bump` replaces the newest, fresh nonces
        go above it, and the newest is broadcast again in case the chain's node lost it. Returns the
        newest, its waiting time counted from now."""
        if not versions or len({tx.nonce for tx in versions}) != 1:
            raise LocalFault("adopt takes the versions of exactly one nonce")
        newest = replace(versions[-1], submitted_at=self._clock())
        with self._lock:
            self._sent[newest.nonce] = [*versions[:-1], newest]
            if self._peek_nonce() <= newest.nonce:
                self._next_nonce = newest.nonce + 1
        if self.mined_nonce() <= newest.nonce:
            self._rebroadcast(newest)
        return newest

    def _rebroadcast(self, tx: SubmittedTx) -> None:
        raw, tx_hash = self._sign(tx.request, tx.nonce, tx.gas_limit, tx.max_fee, tx.priority_fee)
        if tx_hash != tx.tx_hash:
            raise LocalFault(f"transaction 0x{tx.tx_hash.hex()} was not signed by this account")
        try:
            self.backend.send_raw(raw)
        except RpcFailed as error:
            # Already pooled or mined, or below today's base fee: the next `bump` re-sends the nonce at
            # today's fees in any case, so a refused re-broadcast is no reason to stop here.
            log.info("re-broadcast of 0x%s (nonce %d) refused: %s", tx.tx_hash.hex(), tx.nonce, error)

    def nonce_taken(self, submitted: SubmittedTx) -> bool:
        """Whether `submitted`'s nonce was used by a transaction other than its known versions."""
        if self.mined_nonce() <= submitted.nonce:
            return False
        return self.check_receipt(submitted) is None

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

    def _sign(self, request: TxRequest, nonce: int, gas: int, max_fee: int, priority: int
              ) -> tuple[bytes, bytes]:
        """The raw signed transaction and its hash (signing is deterministic: same fields, same hash)."""
        tx: dict[str, Any] = {
            "type": 2, "chainId": self.backend.chain_id(), "nonce": nonce, "gas": gas,
            "maxFeePerGas": max_fee, "maxPriorityFeePerGas": priority,
            "data": request.data, "value": request.value,
        }
        if request.to is not None:
            tx["to"] = request.to
        signed = self.account.sign_transaction(tx)
        return bytes(signed.raw_transaction), bytes(signed.hash)

    def _send(self, request: TxRequest, nonce: int, gas: int, max_fee: int, priority: int,
              before_send: BeforeSend | None = None) -> SubmittedTx:
        raw, tx_hash = self._sign(request, nonce, gas, max_fee, priority)
        submitted = SubmittedTx(request, nonce, tx_hash, gas, max_fee, priority, self._clock())
        if before_send is not None:
            before_send(submitted)
        try:
            self.backend.send_raw(raw)
        except RpcFailed as error:
            if _is_funds_error(error):
                raise InsufficientFunds(self.address, gas * max_fee + request.value,
                                        self.backend.balance(self.address)) from error
            if not _is_already_known(error):
                raise
            # the very same transaction is pooled already (re-derived after a restart): it is ours
        return submitted

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
    return "nonce too low" in text or "nonce has already been used" in text


def _is_already_known(error: RpcFailed) -> bool:
    text = str(error).lower()
    return "already known" in text or "already imported" in text or "known transaction" in text


def _is_underpriced(error: RpcFailed) -> bool:
    return "underpriced" in str(error).lower()


def _is_funds_error(error: RpcFailed) -> bool:
    return "insufficient funds" in str(error).lower()


__all__ = ["DEFAULT_FEE_CAP", "BeforeSend", "FeeCapReached", "FeePolicy", "NonceTaken", "SubmittedTx",
           "TransactionSender", "TxRequest", "bumped"]
