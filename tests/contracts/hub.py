"""A small driver for ChannelHub on a real anvil, shared by the contract tests and benchmarks/gas.py.

It sends every call through the binding's encoders and rebuilds each channel's state from the receipts'
events alone (`apply_event`), so every test that uses it also checks that events suffice for a follower.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import HTTPProvider, Web3
from web3.exceptions import ContractLogicError

from channeld.chain import contract as hub_abi
from channeld.chain.contract import (
    ETHER,
    ChannelEvent,
    ContractRevert,
    OnChainChannel,
    StoredProof,
    apply_event,
    decode_event,
)

UINT256_MAX = 2**256 - 1


def account(name: str) -> LocalAccount:
    """A deterministic test account per name."""
    key: LocalAccount = Account.from_key(keccak(text=f"channeld test account {name}"))
    return key


def sign(signer: LocalAccount, document: dict[str, Any]) -> bytes:
    return bytes(signer.sign_message(encode_typed_data(full_message=document)).signature)


class Chain:
    """One anvil over JSON-RPC; any address may send (auto-impersonation), receipts are awaited."""

    def __init__(self, url: str) -> None:
        self.w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": 30}))
        self.chain_id = int(self.w3.eth.chain_id)
        self.rpc("anvil_autoImpersonateAccount", [True])

    @property
    def block_gas_limit(self) -> int:
        return int(self.w3.eth.get_block("latest")["gasLimit"])

    def rpc(self, method: str, params: list[Any]) -> Any:
        response = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        if "error" in response:
            raise RuntimeError(f"{method}: {response['error']}")
        return response["result"]

    def fund(self, address: str, wei: int = 10**24) -> None:
        self.rpc("anvil_setBalance", [address, hex(wei)])

    def send(self, sender: str, to: str | None, data: bytes, value: int = 0) -> dict[str, Any]:
        """Mine one transaction; a revert raises the contract's decoded error (nothing is mined)."""
        tx: dict[str, Any] = {"from": sender, "data": data, "value": value}
        if to is not None:
            tx["to"] = to
        try:
            gas = self.w3.eth.estimate_gas(tx)  # type: ignore[arg-type]
        except ContractLogicError as error:
            raise hub_abi.decode_revert(bytes.fromhex(str(error.data or "0x")[2:])) from None
        tx["gas"] = min(gas + 100_000, self.block_gas_limit)
        tx_hash = self.w3.eth.send_transaction(tx)  # type: ignore[arg-type]
        receipt = dict(self.w3.eth.wait_for_transaction_receipt(tx_hash))
        if receipt["status"] != 1:
            raise RuntimeError(f"transaction reverted on chain but not in estimation: {receipt}")
        return receipt

    def deploy(self, sender: str, code: bytes) -> str:
        address = self.send(sender, None, code)["contractAddress"]
        return to_checksum_address(address)

    def call(self, to: str, data: bytes) -> bytes:
        return bytes(self.w3.eth.call({"to": to, "data": data}))  # type: ignore[typeddict-item]

    def snapshot(self) -> str:
        return str(self.rpc("evm_snapshot", []))

    def revert(self, snapshot: str) -> None:
        if not self.rpc("evm_revert", [snapshot]):
            raise RuntimeError(f"evm_revert refused snapshot {snapshot}")

    def advance(self, seconds: int) -> None:
        self.rpc("evm_increaseTime", [seconds])
        self.rpc("evm_mine", [])

    def timestamp(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def balance(self, token: str, holder: str) -> int:
        if token == ETHER:
            return int(self.w3.eth.get_balance(holder))  # type: ignore[arg-type]
        data = keccak(text="balanceOf(address)")[:4] + bytes(12) + bytes.fromhex(holder[2:])
        return int.from_bytes(self.call(token, data), "big")


class Token:
    """A deployed TestToken (or one of its hostile variants)."""

    def __init__(self, chain: Chain, deployer: str, name: str = "TestToken", args: bytes = b"") -> None:
        self.chain = chain
        self.deployer = deployer
        self.address = chain.deploy(deployer, hub_abi.bytecode(name) + args)

    @classmethod
    def plain(cls, chain: Chain, deployer: str) -> Token:
        from eth_abi import encode

        return cls(chain, deployer, "TestToken", encode(["string", "string"], ["Test Token", "TST"]))

    def _call(self, signature: str, types: list[str], values: list[Any]) -> bytes:
        from eth_abi import encode

        return keccak(text=signature)[:4] + encode(types, values)

    def mint(self, to: str, amount: int) -> None:
        self.chain.send(
            self.deployer,
            self.address,
            self._call("mint(address,uint256)", ["address", "uint256"], [to, amount]),
        )

    def approve(self, owner: str, spender: str, amount: int) -> None:
        self.chain.send(
            owner,
            self.address,
            self._call("approve(address,uint256)", ["address", "uint256"], [spender, amount]),
        )

    def transfer(self, sender: str, to: str, amount: int) -> None:
        self.chain.send(
            sender,
            self.address,
            self._call("transfer(address,uint256)", ["address", "uint256"], [to, amount]),
        )

    def arm(self, target: str, payload: bytes) -> None:
        """ReentrantToken only: call `target` with `payload` during the next transfer."""
        self.chain.send(
            self.deployer,
            self.address,
            self._call("arm(address,bytes)", ["address", "bytes"], [target, payload]),
        )

    def balance(self, holder: str) -> int:
        return self.chain.balance(self.address, holder)


@dataclass
class Hub:
    """A deployed ChannelHub and the channels rebuilt from its events."""

    chain: Chain
    address: str
    channels: dict[bytes, OnChainChannel] = field(default_factory=dict)
    events: list[ChannelEvent] = field(default_factory=list)
    secrets: list[hub_abi.SecretRevealed] = field(default_factory=list)
    _registry: str = ""

    @classmethod
    def deploy(cls, chain: Chain, deployer: str, min_period: int = 1, max_period: int = 10**8) -> Hub:
        return cls(chain, chain.deploy(deployer, hub_abi.encode_deploy(min_period, max_period)))

    def transact(self, sender: str, data: bytes, value: int = 0, to: str | None = None) -> dict[str, Any]:
        receipt = self.chain.send(sender, to or self.address, data, value)
        for log in receipt["logs"]:
            if to_checksum_address(log["address"]) == self.registry:
                self.secrets.append(hub_abi.decode_registry_event(log))
            if to_checksum_address(log["address"]) != self.address:
                continue
            event = decode_event(log)
            self.events.append(event)
            cid = getattr(event, "channel_id", None)
            if cid is not None:
                self.channels[cid] = apply_event(self.channels.get(cid), event)
        return receipt

    def attach_batch(self, sender: str) -> str:
        """Deploy the batch extension (ChannelBatch) and attach it; returns its address."""
        extension = self.chain.deploy(sender, hub_abi.bytecode("ChannelBatch"))
        self.transact(sender, hub_abi.encode_attach_extension(extension))
        return extension

    @property
    def registry(self) -> str:
        """The SecretRegistry this hub created."""
        if not self._registry:
            answer = self.chain.call(self.address, hub_abi.encode_secret_registry())
            self._registry = to_checksum_address(answer[12:])
        return self._registry

    def slot(self, cid: bytes) -> bytes:
        return self.chain.call(self.address, hub_abi.encode_channels(cid))

    def view(self, cid: bytes) -> OnChainChannel:
        return self.channels[cid]

    # -- signatures

    def sign_proof(
        self, signer: LocalAccount, cid: bytes, proof: StoredProof, *, update: bool = False
    ) -> bytes:
        document = hub_abi.balance_proof_typed_data(
            self.chain.chain_id, self.address, cid, proof, update=update
        )
        return sign(signer, document)

    def sign_withdraw(
        self, signer: LocalAccount, cid: bytes, participant: str, total: int, expiry: int, receiver: str
    ) -> bytes:
        document = hub_abi.withdraw_typed_data(
            self.chain.chain_id, self.address, cid, participant, total, expiry, receiver
        )
        return sign(signer, document)

    def sign_cooperative(
        self, signer: LocalAccount, cid: bytes, amount1: int, receiver1: str, amount2: int, receiver2: str
    ) -> bytes:
        document = hub_abi.cooperative_settle_typed_data(
            self.chain.chain_id,
            self.address,
            cid,
            self.view(cid).state,
            amount1,
            receiver1,
            amount2,
            receiver2,
        )
        return sign(signer, document)

    # -- calls (each returns the receipt)

    def open(
        self, opener: str, partner: str, token: str, period: int, salt: int, deposit: int = 0
    ) -> tuple[bytes, dict[str, Any]]:
        data = hub_abi.encode_open_channel(partner, token, period, salt, deposit)
        receipt = self.transact(opener, data, deposit if token == ETHER else 0)
        opened = self.events[-1]
        assert isinstance(opened, hub_abi.ChannelOpened)
        block = self.chain.w3.eth.get_block(receipt["blockNumber"])
        assert opened.channel_id == hub_abi.channel_id(opener, partner, salt, int(block["timestamp"]))
        return opened.channel_id, receipt

    def deposit(
        self, sender: str, cid: bytes, participant: str, total: int, value: int | None = None
    ) -> dict[str, Any]:
        state = self.view(cid).state
        if value is None:
            current = state.deposit1 if state.is_first(participant) else state.deposit2
            value = total - current if state.token == ETHER else 0
        return self.transact(sender, hub_abi.encode_set_total_deposit(cid, state, participant, total), value)

    def withdraw(
        self,
        sender: str,
        cid: bytes,
        participant: str,
        total: int,
        expiry: int,
        receiver: str,
        signature1: bytes,
        signature2: bytes,
    ) -> dict[str, Any]:
        data = hub_abi.encode_set_total_withdraw(
            cid, self.view(cid).state, participant, total, expiry, receiver, signature1, signature2
        )
        return self.transact(sender, data)

    def close(
        self, closer: str, cid: bytes, proof: StoredProof = hub_abi.NO_PROOF, signature: bytes = b""
    ) -> dict[str, Any]:
        return self.transact(
            closer, hub_abi.encode_close_channel(cid, self.view(cid).state, proof, signature)
        )

    def update(
        self, sender: str, cid: bytes, proof: StoredProof, signature: bytes, authorization: bytes = b""
    ) -> dict[str, Any]:
        view = self.view(cid)
        assert view.closing is not None
        data = hub_abi.encode_update_balance_proof(
            cid, view.state, view.closing, proof, signature, authorization
        )
        return self.transact(sender, data)

    def settle(self, sender: str, cid: bytes) -> dict[str, Any]:
        view = self.view(cid)
        assert view.closing is not None
        return self.transact(sender, hub_abi.encode_settle_channel(cid, view.state, view.closing))

    def register_secret(self, sender: str, secret: bytes) -> dict[str, Any]:
        return self.transact(sender, hub_abi.encode_register_secret(secret), to=self.registry)

    def register_secrets(self, sender: str, secrets: list[bytes]) -> dict[str, Any]:
        return self.transact(sender, hub_abi.encode_register_secret_batch(secrets), to=self.registry)

    def registration_time(self, secrethash: bytes) -> int:
        answer = self.chain.call(self.registry, hub_abi.encode_registration_time(secrethash))
        return int.from_bytes(answer, "big")

    def unlock(self, sender: str, cid: bytes, locks_sender: str, packed_locks: bytes) -> dict[str, Any]:
        data = hub_abi.encode_unlock(cid, self.view(cid).settled_locks(), locks_sender, packed_locks)
        return self.transact(sender, data)

    def cooperative_settle(
        self,
        sender: str,
        cid: bytes,
        amount1: int,
        receiver1: str,
        amount2: int,
        receiver2: str,
        signature1: bytes,
        signature2: bytes,
    ) -> dict[str, Any]:
        data = hub_abi.encode_cooperative_settle(
            cid, self.view(cid).state, amount1, receiver1, amount2, receiver2, signature1, signature2
        )
        return self.transact(sender, data)


__all__ = ["UINT256_MAX", "Chain", "ContractRevert", "Hub", "Token", "account", "sign"]
