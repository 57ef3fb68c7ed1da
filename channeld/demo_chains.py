"""The demo's embedded chains: each with its own ChannelHub and funded accounts, and its ledger at the end.

`launch` starts one in-process EVM under a chain id of its own, deploys a ChannelHub and funds the named
accounts. `DemoChain.balance_rows` reads back every wei the contract took in and paid out (its logs) and
every fee each account paid, and checks that each account's balance adds up to the wei and that the
contract holds nothing once every channel on it is settled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import trio
from eth_account import Account

from channeld.chain import TransactionSender, TxRequest, deploy, load_artifact, start_embedded
from channeld.chain import contract as hub
from channeld.chain.backend import ChainBackend
from channeld.errors import LocalFault
from channeld.node import ChainSetup

ETH = 10**18
CHALLENGE_BOUNDS = [60, 30 * 24 * 3600]  # the hub's least and greatest challenge period, seconds


class DemoFailed(LocalFault):
    """A step did not happen in time, or the balances did not add up."""


def coins(wei: int, symbol: str = "ETH") -> str:
    text = f"{Decimal(wei) / ETH:f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + f" {symbol}"


# ------------------------------------------------------------------------------------ the chain ledger


@dataclass(slots=True)
class Ledger:
    """Every wei the contract took in and paid out, per account, folded from its logs."""

    deposited: dict[str, int] = field(default_factory=dict)
    withdrawn: dict[str, int] = field(default_factory=dict)
    paid_out: dict[str, int] = field(default_factory=dict)
    _participants: dict[bytes, tuple[str, str]] = field(default_factory=dict)
    _deposits: dict[tuple[bytes, str], int] = field(default_factory=dict)
    _withdrawals: dict[tuple[bytes, str], int] = field(default_factory=dict)

    def fold(self, event: object) -> None:
        if isinstance(event, hub.ChannelOpened):
            self._participants[event.channel_id] = (event.participant1, event.participant2)
            self._deposit(event.channel_id, event.participant1, event.deposit1)
            self._deposit(event.channel_id, event.participant2, event.deposit2)
        elif isinstance(event, hub.ChannelDeposit):
            self._deposit(event.channel_id, event.participant, event.total_deposit)
        elif isinstance(event, hub.ChannelWithdraw):
            key = (event.channel_id, event.participant)
            _add(self.withdrawn, event.receiver, event.total_withdraw - self._withdrawals.get(key, 0))
            self._withdrawals[key] = event.total_withdraw
        elif isinstance(event, hub.ChannelSettled):
            first, second = self._participants[event.channel_id]
            _add(self.paid_out, first, event.amount1)
            _add(self.paid_out, second, event.amount2)
        elif isinstance(event, hub.ChannelCooperativelySettled):
            _add(self.paid_out, event.receiver1, event.amount1)
            _add(self.paid_out, event.receiver2, event.amount2)

    def _deposit(self, cid: bytes, who: str, total: int) -> None:
        _add(self.deposited, who, total - self._deposits.get((cid, who), 0))
        self._deposits[(cid, who)] = total


def _add(totals: dict[str, int], who: str, amount: int) -> None:
    totals[who] = totals.get(who, 0) + amount


def read_ledger(backend: ChainBackend, contract: str, from_block: int) -> Ledger:
    ledger = Ledger()
    for log in backend.get_logs(contract, from_block, backend.head()):
        ledger.fold(hub.decode_event({"topics": log.topics, "data": log.data}))
    return ledger


def gas_spent(backend: ChainBackend, address: str, from_block: int) -> int:
    """Wei `address` paid in fees since `from_block` (the embedded chain is short: read every block)."""
    spent = 0
    for number in range(from_block, backend.head() + 1):
        block = backend.w3.eth.get_block(number, full_transactions=True)
        for tx in block["transactions"]:
            if not isinstance(tx, bytes) and tx["from"] == address:
                receipt = backend.w3.eth.get_transaction_receipt(tx["hash"])
                spent += receipt["gasUsed"] * receipt["effectiveGasPrice"]
    return spent


# ------------------------------------------------------------------------------------------ the chains


@dataclass(frozen=True, slots=True)
class DemoChain:
    """One embedded chain: its name, the hub the nodes share on it, and the accounts funded on it
    (name -> address) with their balances before the story."""

    name: str
    chain_id: int
    setup: ChainSetup
    accounts: dict[str, str]
    first_block: int
    start_balances: dict[str, int]

    @property
    def backend(self) -> ChainBackend:
        return self.setup.backend

    def balance_rows(self) -> tuple[list[dict[str, Any]], Ledger]:
        """One row per funded account (start, deposited, withdrawn, paid out, gas, end), each checked to
        add up to the wei, and the contract checked empty and paying out all it took in."""
        ledger = read_ledger(self.backend, self.setup.contract, self.setup.deploy_block)
        rows = []
        for name, address in self.accounts.items():
            row = {"start": self.start_balances[name], "deposited": ledger.deposited.get(address, 0),
                   "withdrawn": ledger.withdrawn.get(address, 0), "paid_out": ledger.paid_out.get(address, 0),
                   "gas": gas_spent(self.backend, address, self.first_block),
                   "end": self.backend.balance(address)}
            expected = row["start"] - row["deposited"] + row["withdrawn"] + row["paid_out"] - row["gas"]
            if expected != row["end"]:
                raise DemoFailed(f"{name}'s balance on {self.name} does not add up: expected {expected}, "
                                 f"found {row['end']}")
            rows.append({"chain": self.name, "account": f"{name} {address[:10]}…",
                         **{k: str(v) for k, v in row.items()}})
        held = self.backend.balance(self.setup.contract)
        total_in = sum(ledger.deposited.values())
        total_out = sum(ledger.withdrawn.values()) + sum(ledger.paid_out.values())
        if held != 0 or total_in != total_out:
            raise DemoFailed(f"the contract on {self.name} holds {held} wei; {total_in} in, {total_out} out")
        return rows, ledger


def launch(name: str, chain_id: int | None, accounts: dict[str, str], funding: int) -> DemoChain:
    """An embedded chain (`chain_id`, None: eth-tester's own) with a ChannelHub and `accounts` funded."""
    backend, funded = start_embedded(accounts=1, chain_id=chain_id)
    artifact = load_artifact("ChannelHub")
    deployer = TransactionSender(backend, Account.from_key(funded[0]), artifact.abi)
    deployment = deploy(deployer, artifact, CHALLENGE_BOUNDS)
    # each chain has its own limiter: one thread at a time per in-process EVM, the chains side by side
    setup = ChainSetup(backend, deployment.address, deployment.block, trio.CapacityLimiter(1))
    for address in accounts.values():
        deployer.transact(TxRequest(to=address, value=funding, gas=21000))
    return DemoChain(name, backend.chain_id(), setup, dict(accounts), backend.head() + 1,
                     {who: backend.balance(address) for who, address in accounts.items()})
