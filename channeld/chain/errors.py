"""What can go wrong on the chain, each as its own `ChainError` so callers can tell them apart."""

from __future__ import annotations

from channeld.errors import ChainError


class RpcUnreachable(ChainError):
    """The JSON-RPC endpoint cannot be reached (bad URL, node down, connection refused)."""


class RpcFailed(ChainError):
    """The node answered a call with an error we do not classify further."""


class InsufficientFunds(ChainError):
    """The sending account cannot pay for gas (plus the value it sends)."""

    def __init__(self, account: str, needed: int, balance: int) -> None:
        super().__init__(
            f"account {account} cannot pay for this transaction: needs {needed} wei, has {balance} wei"
        )
        self.account = account
        self.needed = needed
        self.balance = balance


class TransactionReverted(ChainError):
    """The call reverted; `error_name` is the contract's custom error, decoded from its ABI."""

    def __init__(self, error_name: str, error_args: tuple[object, ...], tx_hash: bytes | None = None) -> None:
        shown = ", ".join(repr(arg) for arg in error_args)
        where = f" (transaction 0x{tx_hash.hex()})" if tx_hash else ""
        super().__init__(f"reverted with {error_name}({shown}){where}")
        self.error_name = error_name
        self.error_args = error_args
        self.tx_hash = tx_hash


class ConfirmationTimeout(ChainError):
    """A submitted transaction was not mined (or not confirmed deep enough) in the time allowed."""


class DeploymentMismatch(ChainError):
    """No contract, or a different contract, is deployed at the configured address."""


class ReorgTooDeep(ChainError):
    """The chain reorganised below every block the event follower still remembers."""
