"""Raiden's TokenNetwork (raiden-contracts 0.50.2) gas, measured on a live chain beside channeld's.

`measure_raiden_gas(w3, token_address, keys)` deploys Raiden's own compiled SecretRegistry and
TokenNetwork (the artifacts shipped in the raiden-contracts wheel, `data_0.50.0/contracts.json`, pinned
by SHA-256) for an ERC-20 token with a public mint, runs every channel operation with real signatures and
returns each receipt's `gasUsed`. None of the wheel's Python is imported (its pinned dependencies are
old): only its data file is read, from the installed package or else from the wheel that
`pip download --no-deps` fetches into `.tools/raiden/`.

Raiden's signatures are not EIP-712. Each is an Ethereum signed message ("\\x19Ethereum Signed
Message:\\n" + decimal length) over tightly packed fields, exactly as TokenNetwork.sol rebuilds them:
balance proof (212 bytes) = token network address, chain id, message type 1, channel id, balance hash,
nonce, additional hash, where balance hash = keccak(transferred, locked, locksroot); its
counter-signature (277 bytes) is the same fields with type 1 (close) or 2 (update) followed by the
proof's 65-byte signature; withdraw (200 bytes) = token network, chain id, type 3, channel id,
participant, total withdraw, withdrawable until.

Funding pattern. A storage write from zero costs about 17,000 gas more than one to a non-zero slot, so
who holds tokens moves the figures. Raiden's own gas tests fund like this, and so do we: before every
measured step, participants A and B hold *exactly* the tokens the step takes from them, with an
allowance of exactly that amount to the token network (zero and no new approval when the step takes
none). So each deposit empties its sender's balance and allowance, and every payout (withdraw, settle,
cooperative close) lands on a zero balance. Surplus is swept to D by `transfer`, shortfall minted by D
(`mint(address,uint256)`, or `mintFor(uint256,address)` for Raiden's CustomToken: `mint_style`); none
of that is measured. Nothing else holds or moves tokens.

The sequence (keys[0] = deployer D, keys[1] = A, keys[2] = B; amounts in token base units; each
measured step is one transaction sent by the named account):

  Set-up   D deploys the SecretRegistry, then the TokenNetwork(token, registry, settle timeout 120 s,
           controller D, both deposit limits 2**256 - 1). The constructor refuses a token without
           supply, so if totalSupply is 0, D first mints 1 unit to itself.
  Phase 1  Brand-new network: channel counter 0, no tokens held. Channel A-B.
           A openChannelWithDeposit(A, B, 100)                     -> part of lifecycle_cooperative
           A cooperativeSettle: A gets 60, B gets 40, both messages withdrawable until 2**256 - 1
                                                                   -> cooperative_close
           lifecycle_cooperative = those two (so it includes the first channel and first deposit
           ever, as the reference figure does; in steady state the same pair costs
           open_with_deposit + cooperative_close, about 36,000 less). The network holds no tokens again.
  Phase 2  Channel A-D; it stays open, holding 70, until the end.
           A openChannelWithDeposit(A, D, 100)  (network held none) -> open_with_deposit_first
           A setTotalWithdraw(A, total 30, until 2**256 - 1), signed by A and D -> withdraw
  Phase 3  Channel A-B (steady state: counter non-zero, network holds tokens).
           A openChannel(A, B)                                     -> open
           A setTotalDeposit(A, 100)
           B setTotalDeposit(B, 50)  (partner's first deposit)    -> deposit
           A closeChannel with B's proof (transferred 5, nonce 3)  -> close
           B updateNonClosingBalanceProof with A's proof (transferred 20, nonce 5) -> update
           after the settle timeout, A settleChannel(B: 5, A: 20; no locks) -> settle (A gets 85, B 65)
           lifecycle_uncooperative = these six
  Phase 4  Channel A-B again: A openChannelWithDeposit(A, B, 100)   -> open_with_deposit

Measured on anvil 1.7.1 (default hardfork) with Raiden's CustomToken, all within 1% of the reference:
open 86,430; open_with_deposit 125,604; open_with_deposit_first 142,692; deposit 76,382; withdraw
115,069; close 138,113; update 90,922; settle 119,960; cooperative_close 167,435;
lifecycle_uncooperative 588,201; lifecycle_cooperative 327,239. Calldata (addresses, signatures) moves
each by a few tens of gas from one deployment to the next.
"""

from __future__ import annotations

import enum
import hashlib
import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from typing import Any, cast

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils import keccak, to_canonical_address
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import Web3Exception
from web3.types import RPCEndpoint, TxParams, TxReceipt

from channeld.errors import ChainError, ConfigError, LocalFault

RAIDEN_CONTRACTS_VERSION = "0.50.2"
ARTIFACTS_MEMBER = "raiden_contracts/data_0.50.0/contracts.json"
# The figures below depend on the exact bytecode, so a different contracts.json must not slip in.
ARTIFACTS_SHA256 = "536995a2681148c0fa0291239d2137487d046ecba9a0314d68dd629f79bab5d5"
DOWNLOAD_DIR = Path(__file__).resolve().parent.parent / ".tools" / "raiden"

UINT256_MAX = 2**256 - 1
SETTLE_TIMEOUT = 120
RECEIPT_TIMEOUT = 30

# Raiden's MessageType.MessageTypeId values.
MSG_BALANCE_PROOF = 1
MSG_BALANCE_PROOF_UPDATE = 2
MSG_WITHDRAW = 3

RESULT_KEYS = (
    "open", "open_with_deposit", "open_with_deposit_first", "deposit", "close", "update", "settle",
    "cooperative_close", "withdraw", "lifecycle_uncooperative", "lifecycle_cooperative",
)


class RaidenArtifactError(ConfigError):
    """raiden-contracts' compiled artifacts are missing, unreachable or not the pinned ones."""


# ---------------------------------------------------------------- artifacts


@dataclass(frozen=True, slots=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes


@cache
def load_artifacts() -> dict[str, Artifact]:
    """Every contract in raiden-contracts 0.50.2's contracts.json, checked against the pinned hash."""
    raw = _installed_artifacts_json() or _downloaded_artifacts_json()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != ARTIFACTS_SHA256:
        raise RaidenArtifactError(f"contracts.json has sha256 {digest}, expected {ARTIFACTS_SHA256}")
    contracts = json.loads(raw)["contracts"]
    return {
        name: Artifact(name=name, abi=entry["abi"], bytecode=bytes.fromhex(entry["bin"]))
        for name, entry in contracts.items()
    }


def _installed_artifacts_json() -> bytes | None:
    # The package's __init__ is empty, so locating it imports none of its old dependencies.
    if find_spec("raiden_contracts") is None:
        return None
    member = resources.files("raiden_contracts").joinpath(ARTIFACTS_MEMBER.split("/", 1)[1])
    return member.read_bytes() if member.is_file() else None


def _downloaded_artifacts_json() -> bytes:
    wheel = _wheel_path() or _download_wheel()
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(ARTIFACTS_MEMBER)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise RaidenArtifactError(f"{wheel} holds no {ARTIFACTS_MEMBER}: {exc}") from exc


def _wheel_path() -> Path | None:
    wheels = sorted(DOWNLOAD_DIR.glob(f"raiden_contracts-{RAIDEN_CONTRACTS_VERSION}-*.whl"))
    return wheels[0] if wheels else None


def _download_wheel() -> Path:
    DOWNLOAD_DIR.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
        "--dest", str(DOWNLOAD_DIR), f"raiden-contracts=={RAIDEN_CONTRACTS_VERSION}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wheel = _wheel_path()
    if done.returncode != 0 or wheel is None:
        raise RaidenArtifactError(f"pip download of raiden-contracts failed: {done.stderr.strip()}")
    return wheel


# ---------------------------------------------------------------- Raiden's signed messages


def balance_hash(transferred_amount: int, locked_amount: int, locksroot: bytes) -> bytes:
    return keccak(_uint(transferred_amount) + _uint(locked_amount) + _bytes32(locksroot))


@dataclass(frozen=True, slots=True)
class BalanceProof:
    """The four balance-proof arguments of closeChannel / updateNonClosingBalanceProof."""

    balance_hash: bytes
    nonce: int
    additional_hash: bytes
    signature: bytes


def balance_proof_fields(
    token_network: str, chain_id: int, message_type: int, channel_id: int, proof_hash: bytes,
    nonce: int, additional_hash: bytes,
) -> bytes:
    """The 212 packed bytes shared by a balance proof and its counter-signature."""
    return (
        to_canonical_address(token_network) + _uint(chain_id) + _uint(message_type) + _uint(channel_id)
        + _bytes32(proof_hash) + _uint(nonce) + _bytes32(additional_hash)
    )


def sign_balance_proof(
    key: bytes, token_network: str, chain_id: int, channel_id: int, proof_hash: bytes, nonce: int,
    additional_hash: bytes,
) -> BalanceProof:
    message = balance_proof_fields(
        token_network, chain_id, MSG_BALANCE_PROOF, channel_id, proof_hash, nonce, additional_hash,
    )
    return BalanceProof(proof_hash, nonce, additional_hash, _sign(key, message))


def counter_sign(
    key: bytes, token_network: str, chain_id: int, message_type: int, channel_id: int,
    proof: BalanceProof,
) -> bytes:
    """The closer's (type 1) or the updater's (type 2) signature over the partner's proof (277 bytes)."""
    fields = balance_proof_fields(
        token_network, chain_id, message_type, channel_id, proof.balance_hash, proof.nonce,
        proof.additional_hash,
    )
    return _sign(key, fields + proof.signature)


def sign_withdraw(
    key: bytes, token_network: str, chain_id: int, channel_id: int, participant: str,
    total_withdraw: int, withdrawable_until: int,
) -> bytes:
    message = (
        to_canonical_address(token_network) + _uint(chain_id) + _uint(MSG_WITHDRAW) + _uint(channel_id)
        + to_canonical_address(participant) + _uint(total_withdraw) + _uint(withdrawable_until)
    )
    return _sign(key, message)


def _sign(key: bytes, message: bytes) -> bytes:
    # encode_defunct prepends "\x19Ethereum Signed Message:\n" + decimal length, as the contract does.
    signed = Account.sign_message(encode_defunct(primitive=message), private_key=key)
    return bytes(signed.signature)


def _uint(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _bytes32(value: bytes) -> bytes:
    if len(value) != 32:
        raise LocalFault(f"expected 32 bytes, got {len(value)}")
    return value


# ---------------------------------------------------------------- chain access


class MintStyle(enum.Enum):
    """How the token's public mint is spelled."""

    TO_AMOUNT = "mint(address,uint256)"
    AMOUNT_TO = "mintFor(uint256,address)"  # Raiden's CustomToken


def _function_abi(name: str, inputs: list[tuple[str, str]], outputs: list[str]) -> dict[str, Any]:
    return {
        "type": "function", "name": name, "stateMutability": "nonpayable",
        "inputs": [{"name": arg, "type": kind} for arg, kind in inputs],
        "outputs": [{"name": "", "type": kind} for kind in outputs],
    }


TOKEN_ABI = [
    _function_abi("balanceOf", [("owner", "address")], ["uint256"]),
    _function_abi("totalSupply", [], ["uint256"]),
    _function_abi("transfer", [("to", "address"), ("value", "uint256")], ["bool"]),
    _function_abi("approve", [("spender", "address"), ("value", "uint256")], ["bool"]),
    _function_abi("mint", [("to", "address"), ("amount", "uint256")], []),
    _function_abi("mintFor", [("num", "uint256"), ("target", "address")], []),
]


class _Chain:
    """Signs with local keys and sends one transaction at a time, waiting for each receipt."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        self.chain_id = int(w3.eth.chain_id)

    def transact(self, sender: LocalAccount, call: ContractFunction, step: str) -> TxReceipt:
        return self._send(sender, call.build_transaction, step)

    def deploy(self, sender: LocalAccount, artifact: Artifact, *args: Any) -> ChecksumAddress:
        constructor = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode).constructor(*args)
        step = f"deploy {artifact.name}"
        address = self._send(sender, constructor.build_transaction, step)["contractAddress"]
        if address is None:
            raise ChainError(f"{step}: the receipt names no contract")
        return Web3.to_checksum_address(address)

    def advance_time(self, seconds: int) -> None:
        for method, params in (("evm_increaseTime", [seconds]), ("evm_mine", [])):
            response = self.w3.provider.make_request(RPCEndpoint(method), params)
            if "error" in response:
                raise ChainError(f"{method} refused (the node must be anvil): {response['error']}")

    def _send(self, sender: LocalAccount, build: Callable[[TxParams], TxParams], step: str) -> TxReceipt:
        try:
            tx = build({"from": sender.address, "chainId": self.chain_id,
                        "nonce": self.w3.eth.get_transaction_count(sender.address)})
            signed = sender.sign_transaction(cast(dict[str, Any], tx))
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT)
        except Web3Exception as exc:
            raise ChainError(f"{step}: {exc}") from exc
        if receipt["status"] != 1:
            raise ChainError(f"{step}: transaction {tx_hash.hex()} reverted")
        return receipt


ANVIL_MNEMONIC = "test test test test test test test test test test test junk"


def anvil_dev_keys(count: int = 3) -> list[bytes]:
    """Private keys of anvil's first `count` pre-funded dev accounts (its default mnemonic)."""
    Account.enable_unaudited_hdwallet_features()
    return [
        bytes(Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}").key)
        for index in range(count)
    ]


def deploy_custom_token(w3: Web3, deployer_key: bytes) -> str:
    """Raiden's own CustomToken test ERC-20 (public `mintFor(uint256,address)`), with supply 1."""
    account: LocalAccount = Account.from_key(deployer_key)
    return _Chain(w3).deploy(account, load_artifacts()["CustomToken"], 1, 18, "Reference", "REF")


# ---------------------------------------------------------------- the measured sequence

ADDITIONAL_HASH = keccak(b"channeld benchmark: Raiden additional hash")
EMPTY_LOCKSROOT = bytes(32)


def _accounts(keys: list[bytes]) -> tuple[LocalAccount, LocalAccount, LocalAccount]:
    if len(keys) < 3:
        raise ConfigError(f"need 3 funded keys (deployer, A, B), got {len(keys)}")
    try:
        deployer, a, b = (Account.from_key(key) for key in keys[:3])
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"not a secp256k1 private key: {exc}") from exc
    if len({deployer.address, a.address, b.address}) != 3:
        raise ConfigError("deployer, A and B must be three different accounts")
    return deployer, a, b


def _token_address(w3: Web3, address: str) -> ChecksumAddress:
    if not Web3.is_address(address):
        raise ConfigError(f"not an address: {address!r}")
    checksummed = Web3.to_checksum_address(address)
    if not w3.eth.get_code(checksummed):
        raise ConfigError(f"no contract at token address {checksummed}")
    return checksummed


class _RaidenRun:
    """One pass of the documented sequence against a freshly deployed TokenNetwork."""

    def __init__(self, w3: Web3, token_address: str, keys: list[bytes], mint_style: MintStyle) -> None:
        self.chain = _Chain(w3)
        self.deployer, self.a, self.b = _accounts(keys)
        self.token = w3.eth.contract(address=_token_address(w3, token_address), abi=TOKEN_ABI)
        self.mint_style = mint_style
        self.gas: dict[str, int] = {}
        artifacts = load_artifacts()
        # TokenNetwork's constructor refuses a token without supply; D's balance is never measured.
        if int(self.token.functions.totalSupply().call()) == 0:
            self.chain.transact(self.deployer, self._mint(self.deployer.address, 1), "mint supply")
        registry = self.chain.deploy(self.deployer, artifacts["SecretRegistry"])
        network = self.chain.deploy(
            self.deployer, artifacts["TokenNetwork"], self.token.address, registry, SETTLE_TIMEOUT,
            self.deployer.address, UINT256_MAX, UINT256_MAX,
        )
        self.network = w3.eth.contract(address=network, abi=artifacts["TokenNetwork"].abi)

    def measure(self, step: str, sender: LocalAccount, call: ContractFunction) -> int:
        used = int(self.chain.transact(sender, call, step)["gasUsed"])
        self.gas[step] = used
        return used

    def hold_exactly(self, holder: LocalAccount, amount: int) -> None:
        """Leave `holder` with exactly `amount` tokens, approved to the network if non-zero (not measured)."""
        balance = int(self.token.functions.balanceOf(holder.address).call())
        if balance > amount:
            sweep = self.token.functions.transfer(self.deployer.address, balance - amount)
            self.chain.transact(holder, sweep, "sweep tokens")
        elif balance < amount:
            self.chain.transact(self.deployer, self._mint(holder.address, amount - balance), "mint")
        if amount > 0:
            self.chain.transact(holder, self.token.functions.approve(self.network.address, amount), "approve")

    def _mint(self, to: str, amount: int) -> ContractFunction:
        if self.mint_style is MintStyle.AMOUNT_TO:
            return self.token.functions.mintFor(amount, to)
        return self.token.functions.mint(to, amount)

    def channel_id(self, first: LocalAccount, second: LocalAccount) -> int:
        return int(self.network.functions.getChannelIdentifier(first.address, second.address).call())

    def withdraw_signatures(
        self, channel: int, withdrawer: LocalAccount, partner: LocalAccount, total: int,
    ) -> tuple[bytes, bytes]:
        """(withdrawer's, partner's) signature over the same withdraw message, valid forever."""
        def signed_by(signer: LocalAccount) -> bytes:
            return sign_withdraw(signer.key, self.network.address, self.chain.chain_id, channel,
                                 withdrawer.address, total, UINT256_MAX)
        return signed_by(withdrawer), signed_by(partner)

    def balance_proof(self, sender: LocalAccount, channel: int, transferred: int, nonce: int) -> BalanceProof:
        proof_hash = balance_hash(transferred, 0, EMPTY_LOCKSROOT)
        return sign_balance_proof(sender.key, self.network.address, self.chain.chain_id, channel,
                                  proof_hash, nonce, ADDITIONAL_HASH)

    def counter_sign(
        self, signer: LocalAccount, message_type: int, channel: int, proof: BalanceProof,
    ) -> bytes:
        return counter_sign(
            signer.key, self.network.address, self.chain.chain_id, message_type, channel, proof)

    def expect_balances(self, step: str, expected: dict[str, int]) -> None:
        """Receipts only say a call did not revert; the payouts say it did what the step claims."""
        for name, amount in expected.items():
            holder = {"A": self.a, "B": self.b}[name]
            held = int(self.token.functions.balanceOf(holder.address).call())
            if held != amount:
                raise ChainError(f"{step}: {name} holds {held} tokens, expected {amount}")

    # -- the four phases, in the order measure_raiden_gas runs them

    def cooperative_lifecycle(self) -> None:
        """Phase 1, brand-new network, channel A-B: A opens with 100; both settle at once, 60/40."""
        a, b, net = self.a, self.b, self.network.functions
        self.hold_exactly(a, 100)
        self.hold_exactly(b, 0)
        self.measure("open_with_deposit_new_network", a,
                     net.openChannelWithDeposit(a.address, b.address, 100))
        channel = self.channel_id(a, b)
        a_own, a_partner = self.withdraw_signatures(channel, a, b, 60)
        b_own, b_partner = self.withdraw_signatures(channel, b, a, 40)
        self.measure("cooperative_close", a, net.cooperativeSettle(
            channel, (a.address, 60, UINT256_MAX, a_own, a_partner),
            (b.address, 40, UINT256_MAX, b_own, b_partner)))
        self.expect_balances("cooperative_close", {"A": 60, "B": 40})

    def anchor_channel(self) -> None:
        """Phase 2, channel A-D: first deposit into the empty network, then A's withdraw; stays open."""
        a, d = self.a, self.deployer
        self.hold_exactly(a, 100)
        self.hold_exactly(self.b, 0)
        self.measure("open_with_deposit_first", a,
                     self.network.functions.openChannelWithDeposit(a.address, d.address, 100))
        channel = self.channel_id(a, d)
        own, partner = self.withdraw_signatures(channel, a, d, 30)
        self.measure("withdraw", a, self.network.functions.setTotalWithdraw(
            channel, a.address, 30, UINT256_MAX, own, partner))
        self.expect_balances("withdraw", {"A": 30})

    def uncooperative_lifecycle(self) -> None:
        """Phase 3, channel A-B: open, A deposits 100, B 50, A closes, B updates, settle after the timeout."""
        a, b, net = self.a, self.b, self.network.functions
        self.hold_exactly(a, 0)
        self.measure("open", a, net.openChannel(a.address, b.address))
        channel = self.channel_id(a, b)
        self.hold_exactly(a, 100)
        self.measure("deposit_opener", a, net.setTotalDeposit(channel, a.address, 100, b.address))
        self.hold_exactly(b, 50)
        self.measure("deposit", b, net.setTotalDeposit(channel, b.address, 50, a.address))
        proof_a = self.balance_proof(a, channel, transferred=20, nonce=5)
        proof_b = self.balance_proof(b, channel, transferred=5, nonce=3)
        closing = self.counter_sign(a, MSG_BALANCE_PROOF, channel, proof_b)
        self.measure("close", a, net.closeChannel(
            channel, b.address, a.address, proof_b.balance_hash, proof_b.nonce, proof_b.additional_hash,
            proof_b.signature, closing))
        updating = self.counter_sign(b, MSG_BALANCE_PROOF_UPDATE, channel, proof_a)
        self.measure("update", b, net.updateNonClosingBalanceProof(
            channel, a.address, b.address, proof_a.balance_hash, proof_a.nonce, proof_a.additional_hash,
            proof_a.signature, updating))
        self.chain.advance_time(SETTLE_TIMEOUT + 1)
        # Raiden wants the participant who sent less named first: B sent 5, A sent 20.
        self.measure("settle", a, net.settleChannel(
            channel, b.address, 5, 0, EMPTY_LOCKSROOT, a.address, 20, 0, EMPTY_LOCKSROOT))
        self.expect_balances("settle", {"A": 100 - 20 + 5, "B": 50 + 20 - 5})

    def open_with_deposit(self) -> None:
        """Phase 4, channel A-B (the pair is free again): A opens with 100 while the network holds tokens."""
        a, b = self.a, self.b
        self.hold_exactly(a, 100)
        self.hold_exactly(b, 0)
        self.measure("open_with_deposit", a,
                     self.network.functions.openChannelWithDeposit(a.address, b.address, 100))


def measure_raiden_gas(
    w3: Web3, token_address: str, keys: list[bytes], *, mint_style: MintStyle = MintStyle.TO_AMOUNT,
) -> dict[str, int]:
    """gasUsed of each Raiden TokenNetwork operation in the documented sequence (see module doc).

    keys: [deployer D, participant A, participant B, ...], each funded with ether; the token must have
    a public mint spelled as `mint_style` says.
    """
    run = _RaidenRun(w3, token_address, keys, mint_style)
    run.cooperative_lifecycle()
    run.anchor_channel()
    run.uncooperative_lifecycle()
    run.open_with_deposit()
    gas = run.gas
    gas["lifecycle_uncooperative"] = sum(
        gas[step] for step in ("open", "deposit_opener", "deposit", "close", "update", "settle"))
    gas["lifecycle_cooperative"] = gas["open_with_deposit_new_network"] + gas["cooperative_close"]
    return {key: gas[key] for key in RESULT_KEYS}
