"""Calls into the test Emitter contract."""

from __future__ import annotations

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from channeld.chain.backend import ChainBackend
from channeld.chain.records import RawLog
from channeld.chain.sender import TxRequest


def ping(address: str, ping_id: int, gas: int | None = None) -> TxRequest:
    data = function_signature_to_4byte_selector("ping(uint256)") + encode(["uint256"], [ping_id])
    return TxRequest(to=address, data=data, gas=gas)


def ping_id(log: RawLog) -> int:
    return int.from_bytes(log.topics[1], "big")


def set_automine(backend: ChainBackend, enabled: bool) -> None:
    backend.rpc("evm_setAutomine", [enabled])
