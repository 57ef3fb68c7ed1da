"""Test helpers: participants with keys, a deployed hub on anvil, channels, signed proofs, the tower
as a subprocess. Built on the chain binding and the protocol signer directly (no node daemon)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import coincurve
from eth_account import Account
from eth_account.signers.local import LocalAccount

from channeld.chain import ChainBackend, Receipt, TransactionSender, TxRequest, connect_rpc, deploy
from channeld.chain.artifact import load_artifact
from channeld.chain.contract import (
    ETHER,
    NO_PROOF,
    ChannelOpened,
    OnChainChannel,
    StoredProof,
    UnknownEvent,
    apply_event,
    decode_event,
    encode_close_channel,
    encode_open_channel,
    encode_settle_channel,
)
from channeld.chain.sender import FeePolicy
from channeld.keys import NodeKey, create_datadir
from channeld.protocol import Signer, balance_proof_digest
from channeld.wire import ZERO32, BalanceProof
from tests.tools import REPO

PASSWORD = "tower test password"


@dataclass
class Party:
    secret: bytes

    @classmethod
    def new(cls) -> Party:
        return cls(secrets.token_bytes(32))

    @property
    def signer(self) -> Signer:
        return Signer(self.secret)

    @property
    def account(self) -> LocalAccount:
        return Account.from_key(self.secret)

    @property
    def address(self) -> str:
        return str(self.account.address)

    @property
    def node_key(self) -> coincurve.PrivateKey:
        return coincurve.PrivateKey(self.secret)


class Chain:
    """One deployed hub on an anvil; parties funded with anvil_setBalance."""

    def __init__(self, url: str, period_bounds: tuple[int, int] = (1, 10**6)) -> None:
        self.backend: ChainBackend = connect_rpc(url)
        self.chain_id = self.backend.chain_id()
        deployer = Party.new()
        self.fund(deployer.address)
        hub = load_artifact("ChannelHub")
        self.abi = hub.abi
        self.deployment = deploy(self.sender(deployer), hub, list(period_bounds))
        self.contract = self.deployment.address
        self.contract_bytes = bytes.fromhex(self.contract[2:])

    def fund(self, address: str, wei: int = 10**22) -> None:
        self.backend.rpc("anvil_setBalance", [address, hex(wei)])

    def sender(self, party: Party, fee_policy: FeePolicy | None = None) -> TransactionSender:
        return TransactionSender(self.backend, party.account, self.abi, fee_policy=fee_policy)

    def transact(self, party: Party, data: bytes, value: int = 0) -> Receipt:
        return self.sender(party).transact(TxRequest(self.contract, data, value))

    def open(self, opener: Party, partner: Party, deposit: int, period: int) -> OnChainChannel:
        data = encode_open_channel(partner.address, ETHER, period, secrets.randbelow(2**64), deposit)
        receipt = self.transact(opener, data, deposit)
        opened = [e for e in self.events(receipt) if isinstance(e, ChannelOpened)]
        return apply_event(None, opened[0])

    def events(self, receipt: Receipt) -> list[object]:
        found: list[object] = []
        for log in receipt.logs:
            try:
                found.append(decode_event({"topics": log.topics, "data": log.data}))
            except UnknownEvent:
                continue
        return found

    def follow(self, channel: OnChainChannel, receipt: Receipt) -> OnChainChannel:
        for event in self.events(receipt):
            if getattr(event, "channel_id", None) == channel.channel_id:
                channel = apply_event(channel, event)  # type: ignore[arg-type]
        return channel

    def close(self, closer: Party, channel: OnChainChannel, partner_proof: BalanceProof | None
              ) -> tuple[OnChainChannel, Receipt]:
        stored, signature = NO_PROOF, b""
        if partner_proof is not None:
            stored = StoredProof(partner_proof.nonce, partner_proof.transferred_amount,
                                 partner_proof.locked_amount, partner_proof.locks_root)
            signature = partner_proof.signature
        receipt = self.transact(closer, encode_close_channel(channel.channel_id, channel.state, stored,
                                                             signature))
        return self.follow(channel, receipt), receipt

    def settle(self, party: Party, channel: OnChainChannel) -> Receipt:
        assert channel.closing is not None
        return self.transact(party, encode_settle_channel(channel.channel_id, channel.state, channel.closing))


def sign_proof(chain_id: int, contract: bytes, channel_id: bytes, signer: Signer, nonce: int,
               transferred: int) -> BalanceProof:
    digest = balance_proof_digest(chain_id, contract, channel_id, nonce, transferred, 0, ZERO32)
    return BalanceProof(chain_id, contract, channel_id, nonce, transferred, 0, ZERO32, signer.sign(digest))


def tower_datadir(root: Path, tower: Party) -> Path:
    """A data directory holding the tower's key in a cheap keystore (low scrypt cost: tests only)."""
    create_datadir(root / "watchtower", PASSWORD, NodeKey(tower.secret), scrypt_n=2**4)
    return root


class TowerProcess:
    """`channeld --datadir DIR watchtower run ...` (the real command) as a separate process."""

    def __init__(self, datadir: Path, chain: Chain, port: int, extra: tuple[str, ...] = ()) -> None:
        self.log_path = datadir / "tower.log"
        args = [sys.executable, "-m", "channeld.cli", "--datadir", str(datadir),
                "watchtower", "run", "--rpc-url", chain.backend.label, "--contract", chain.contract,
                "--listen", f"127.0.0.1:{port}",
                "--confirmations", "0", "--poll-interval", "0.2",
                "--deploy-block", str(chain.deployment.block), *extra]
        env = {**os.environ, "CHANNELD_PASSWORD": PASSWORD}
        self._stderr = self.log_path.open("ab")
        self.process = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=self._stderr)
        self.uri = self._read_ready_line()

    def _read_ready_line(self, timeout: float = 30.0) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        os.set_blocking(self.process.stdout.fileno(), False)
        buffer = b""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tower exited: {self.log_path.read_text()[-3000:]}")
            chunk = self.process.stdout.read() or b""
            buffer += chunk
            if b"\n" in buffer:
                line = buffer.split(b"\n", 1)[0].decode()
                return line.split()[1]
            time.sleep(0.05)
        raise RuntimeError(f"tower not ready: {self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as a crash or power loss."""
        self.process.kill()
        self.process.wait()
        self._stderr.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stderr.close()


HIGH_BASE_FEE = 50 * 10**9  # far above a first submission's 2 x base fee + tip (base about 1 gwei)


def pooled(backend: ChainBackend, address: str) -> dict[int, bytes]:
    """Nonce -> hash of the account's transactions waiting in anvil's pool."""
    content = backend.rpc("txpool_content", [])["pending"]
    found = next((txs for sender, txs in content.items() if sender.lower() == address.lower()), {})
    return {int(nonce): bytes.fromhex(tx["hash"][2:]) for nonce, tx in found.items()}


def mined_nonce(backend: ChainBackend, address: str) -> int:
    return int(backend.rpc("eth_getTransactionCount", [address, "latest"]), 16)


def mine_at_high_base_fee(backend: ChainBackend) -> None:
    """One block whose base fee no first submission made at about 1 gwei can pay."""
    backend.rpc("anvil_setNextBlockBaseFeePerGas", [hex(HIGH_BASE_FEE)])
    backend.mine()
