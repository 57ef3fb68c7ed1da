"""Backends: one blocking facade over web3 for a JSON-RPC URL or the embedded in-process EVM.

Every method blocks; trio code calls them through `trio.to_thread.run_sync` (see `channeld.chain.aio`).
web3 and eth-tester exceptions never leave this module: they become `ChainError` subclasses here.
"""

from __future__ import annotations

import ast
import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import requests
from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import (
    BlockNotFound,
    ContractLogicError,
    ProviderConnectionError,
    TransactionNotFound,
    Web3RPCError,
)
from web3.types import RPCEndpoint

from channeld.chain.artifact import decode_revert
from channeld.chain.errors import RpcFailed, RpcUnreachable
from channeld.chain.records import BlockMark, RawLog, Receipt
from channeld.errors import ConfigError

if TYPE_CHECKING:  # py-evm and eth-tester load (~150 ms) only for a node that runs the embedded chain
    from eth_tester import EthereumTester
    from eth_tester.exceptions import TransactionFailed

DEFAULT_PRIORITY_FEE = 10**9  # 1 gwei, used when the node has no fee oracle
_REVERT_PREFIX = "execution reverted: "


class _NeverRaised(Exception):
    """Stands for eth-tester's revert exception on an RPC chain, where that library is not loaded."""


class ChainBackend:
    """A chain reached through web3. Build one with `connect_rpc` or `start_embedded`."""

    def __init__(self, w3: Web3, tester: EthereumTester | None = None, label: str = "") -> None:
        self.w3 = w3
        self.label = label
        self._tester = tester
        # py-evm is not thread-safe; an HTTP endpoint is, so only the embedded chain is serialised.
        self._lock: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if tester is not None else contextlib.nullcontext()
        )
        self._chain_id: int | None = None
        self._tester_failure: type[Exception] = _NeverRaised
        if tester is not None:
            from eth_tester.exceptions import TransactionFailed

            self._tester_failure = TransactionFailed

    @property
    def is_embedded(self) -> bool:
        return self._tester is not None

    @contextlib.contextmanager
    def _calling(self, abi: Sequence[Mapping[str, Any]] = ()) -> Iterator[None]:
        with self._lock:
            try:
                yield
            except (requests.ConnectionError, requests.Timeout, ProviderConnectionError) as error:
                raise RpcUnreachable(f"cannot reach the chain at {self.label}: {error}") from error
            except ContractLogicError as error:
                raise decode_revert(abi, _hex_data(error.data)) from error
            except self._tester_failure as error:
                raise decode_revert(abi, _tester_revert_data(error)) from error
            except Web3RPCError as error:
                raise RpcFailed(f"{self.label}: {error.message}") from error

    def chain_id(self) -> int:
        if self._chain_id is None:
            with self._calling():
                self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    def head(self) -> int:
        with self._calling():
            return int(self.w3.eth.block_number)

    def block_at(self, number: int) -> BlockMark | None:
        """The canonical block at `number`, or None when the chain is not that long (any more)."""
        with self._calling():
            try:
                block = self.w3.eth.get_block(number)
            except BlockNotFound:
                return None
        return BlockMark(int(block["number"]), bytes(block["hash"]))

    def timestamp(self) -> int:
        with self._calling():
            return int(self.w3.eth.get_block("latest")["timestamp"])

    def fee_basis(self) -> tuple[int, int]:
        """(base fee of the latest block, suggested priority fee)."""
        with self._calling():
            base_fee = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
            try:
                priority = int(self.w3.eth.max_priority_fee)
            except (Web3RPCError, ValueError):
                priority = DEFAULT_PRIORITY_FEE
        return base_fee, priority

    def get_logs(self, address: str, from_block: int, to_block: int,
                 topics: Sequence[bytes | None] = ()) -> list[RawLog]:
        """`address`'s logs in the block range; `topics` (None matching any) narrows them on the node."""
        query: Any = {"address": to_checksum_address(address), "fromBlock": from_block, "toBlock": to_block}
        if topics:
            query["topics"] = [None if topic is None else "0x" + topic.hex() for topic in topics]
        with self._calling():
            entries = self.w3.eth.get_logs(query)
        return [_raw_log(entry) for entry in entries]

    def get_code(self, address: str, block: int | None = None) -> bytes:
        with self._calling():
            return bytes(self.w3.eth.get_code(to_checksum_address(address), block))

    def balance(self, address: str) -> int:
        with self._calling():
            return int(self.w3.eth.get_balance(to_checksum_address(address)))

    def pending_nonce(self, address: str) -> int:
        with self._calling():
            return int(self.w3.eth.get_transaction_count(to_checksum_address(address), "pending"))

    def estimate_gas(self, tx: Mapping[str, Any], abi: Sequence[Mapping[str, Any]] = ()) -> int:
        with self._calling(abi):
            return int(self.w3.eth.estimate_gas(dict(tx)))  # type: ignore[arg-type]

    def call(
        self, tx: Mapping[str, Any], abi: Sequence[Mapping[str, Any]] = (), block: int | str = "latest"
    ) -> bytes:
        with self._calling(abi):
            return bytes(self.w3.eth.call(dict(tx), block))  # type: ignore[arg-type]

    def send_raw(self, raw: bytes) -> bytes:
        with self._calling():
            return bytes(self.w3.eth.send_raw_transaction(raw))

    def receipt(self, tx_hash: bytes) -> Receipt | None:
        with self._calling():
            try:
                found = self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
            except TransactionNotFound:
                return None
        return _receipt(found)

    def rpc(self, method: str, params: Sequence[Any] = ()) -> Any:
        """A raw JSON-RPC call, for node-specific methods (anvil's evm_*)."""
        with self._calling():
            response = self.w3.provider.make_request(RPCEndpoint(method), list(params))
        if "error" in response:
            raise RpcFailed(f"{method}: {response['error']}")
        return response.get("result")

    def mine(self, blocks: int = 1) -> None:
        if self._tester is not None:
            with self._lock:
                self._tester.mine_blocks(blocks)
            return
        for _ in range(blocks):
            self.rpc("evm_mine")

    def advance_time(self, seconds: int) -> None:
        """Move the chain's clock forward and mine a block carrying the new time (dev chains only)."""
        if self._tester is not None:
            with self._lock:
                # eth-tester stamps the mined block one second before the time it is given.
                self._tester.time_travel(self.timestamp() + seconds + 1)
            return
        self.rpc("evm_increaseTime", [seconds])
        self.rpc("evm_mine")


def connect_rpc(url: str, timeout: float = 10.0) -> ChainBackend:
    """A backend on a JSON-RPC URL; fails with `RpcUnreachable` unless the node answers."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"--rpc-url must be an http:// or https:// URL, got {url!r}")
    provider = Web3.HTTPProvider(url, request_kwargs={"timeout": timeout})
    backend = ChainBackend(Web3(provider), label=url)
    backend.chain_id()
    return backend


EMBEDDED_CHAIN_ID = 131277322940537  # eth-tester's own


def start_embedded(accounts: int = 4, chain_id: int | None = None) -> tuple[ChainBackend, list[bytes]]:
    """An in-process EVM (py-evm, Prague rules) and the private keys of its funded accounts.

    `chain_id` gives the chain another id than eth-tester's, for a node (or the demo) that serves two
    embedded chains: a cross-chain route needs distinct ids, since every signature binds one.
    """
    from eth_tester import EthereumTester, PyEVMBackend
    from web3.providers.eth_tester import EthereumTesterProvider
    from web3.providers.eth_tester.defaults import API_ENDPOINTS, static_return

    evm = PyEVMBackend(genesis_state=PyEVMBackend.generate_genesis_state(num_accounts=accounts))
    endpoints = None
    if chain_id is not None and chain_id != EMBEDDED_CHAIN_ID:
        if not 0 < chain_id < 1 << 64:
            raise ConfigError(f"an embedded chain id must be a positive uint64, got {chain_id}")
        _rebuild_with_chain_id(evm, chain_id)
        # the provider answers eth_chainId with a constant of its own; CHAINID in the EVM reads the chain
        endpoints = {**API_ENDPOINTS, "eth": {**API_ENDPOINTS["eth"], "chainId": static_return(chain_id)}}
    tester = EthereumTester(evm)
    provider = EthereumTesterProvider(tester, api_endpoints=endpoints)
    backend = ChainBackend(Web3(provider), tester=tester, label="embedded EVM")
    return backend, [key.to_bytes() for key in evm.account_keys]


def _rebuild_with_chain_id(evm: Any, chain_id: int) -> None:
    """Replace `evm`'s chain by the same genesis under a chain class whose id is `chain_id` (py-evm reads
    the id from the class when the chain is built; eth-tester fixes it there)."""
    from eth.db.atomic import AtomicDB
    from eth_tester.backends.pyevm.main import generate_genesis_state_for_keys, get_default_genesis_params

    chain_class: Any = type(f"EmbeddedChain{chain_id}", (type(evm.chain),), {"chain_id": chain_id})
    genesis_state = generate_genesis_state_for_keys(evm.account_keys)
    evm.chain = chain_class.from_genesis(AtomicDB(), get_default_genesis_params(), genesis_state)


def embedded_fork_name(backend: ChainBackend) -> str:
    """The py-evm VM class running the embedded chain (proves which fork rules apply)."""
    if backend._tester is None:
        raise ConfigError("only the embedded chain runs a py-evm VM in this process")
    return type(backend._tester.backend.chain.get_vm()).__name__


def _hex_data(data: object) -> bytes:
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return b""
    return b""


def _tester_revert_data(error: TransactionFailed) -> bytes:
    """eth-tester reports revert data as the repr of a bytes object inside its message."""
    message = str(error.args[0]) if error.args else ""
    literal = message.removeprefix(_REVERT_PREFIX)
    if literal.startswith(("b'", 'b"')):
        with contextlib.suppress(ValueError, SyntaxError):
            value = ast.literal_eval(literal)
            if isinstance(value, bytes):
                return value
    if literal:
        # A plain-text reason already decoded by eth-tester from Error(string).
        return bytes.fromhex("08c379a0") + _encode_string(literal)
    return b""


def _encode_string(text: str) -> bytes:
    return abi_encode(["string"], [text])


def _raw_log(entry: Mapping[str, Any]) -> RawLog:
    return RawLog(
        address=to_checksum_address(entry["address"]),
        topics=tuple(bytes(topic) for topic in entry["topics"]),
        data=bytes(entry["data"]),
        block_number=int(entry["blockNumber"]),
        block_hash=bytes(entry["blockHash"]),
        tx_hash=bytes(entry["transactionHash"]),
        log_index=int(entry["logIndex"]),
    )


def _receipt(found: Mapping[str, Any]) -> Receipt:
    created = found.get("contractAddress")
    return Receipt(
        tx_hash=bytes(found["transactionHash"]),
        block_number=int(found["blockNumber"]),
        block_hash=bytes(found["blockHash"]),
        succeeded=int(found["status"]) == 1,
        gas_used=int(found["gasUsed"]),
        effective_gas_price=int(found.get("effectiveGasPrice", 0)),
        contract_address=to_checksum_address(created) if created else None,
        logs=tuple(_raw_log(entry) for entry in found["logs"]),
    )

