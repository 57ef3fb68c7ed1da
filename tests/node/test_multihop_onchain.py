"""Locks claimed on chain, between three separate daemons on anvil (line A-B-C, C the target).

* A mediator whose upstream stops answering: C claims B's lock with the secret, A (frozen) never unlocks
  its lock to B; B registers the secret in the SecretRegistry before A's lock expires, closes, settles and
  unlocks: the contract pays B the lock.
* A target whose upstream closes: B closes B-C while its lock to C is pending; C, which holds the secret,
  registers it, and after settlement the contract pays C the lock.

Each party's ether is checked to the wei: what settle and unlock paid, minus the gas it spent.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils import to_checksum_address

from channeld.chain import TransactionSender, TxRequest, connect_rpc, load_artifact
from channeld.chain import contract as hub
from channeld.keys import load_key
from tests.node.helpers import PASSWORD, Daemon, Zygote, wait_until
from tests.node.multihop import (
    ETH,
    advance_chain,
    balance,
    mine_until,
    open_to,
    pause,
    pay_request,
    request,
    resume,
    settled_off_chain,
    start,
    stop_all,
    view,
)
from tests.tools import Anvil

AMOUNT = ETH // 100
REVEAL_TIMEOUT = 600
CHALLENGE_PERIOD = 30  # what `open_to` asks for


class Ledger:
    """The chain as the tests read it: ether balances, gas spent, the contract's events."""

    def __init__(self, anvil: Anvil, contract: str) -> None:
        self.backend = connect_rpc(anvil.url)
        self.contract = contract
        self.start = self.backend.head() + 1

    def ether(self, daemon: Daemon) -> int:
        return int(self.backend.rpc("eth_getBalance", [daemon.address, "latest"]), 16)

    def gas_spent(self, daemon: Daemon) -> int:
        """Wei the daemon's account paid for gas since this ledger was made."""
        spent = 0
        for number in range(self.start, self.backend.head() + 1):
            block = self.backend.rpc("eth_getBlockByNumber", [hex(number), True])
            for tx in block["transactions"]:
                if to_checksum_address(tx["from"]) == to_checksum_address(daemon.address):
                    receipt = self.backend.rpc("eth_getTransactionReceipt", [tx["hash"]])
                    spent += int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
        return spent

    def registrations(self) -> int:
        """SecretRevealed logs of the hub's SecretRegistry since this ledger was made."""
        raw = self.backend.call({"to": self.contract, "data": hub.encode_secret_registry()})
        registry = to_checksum_address(raw[-20:])
        return len(self._logs(registry))

    def _logs(self, address: str, since: int | None = None) -> list[Any]:
        first, head = self.start if since is None else since, self.backend.head()
        return [] if head < first else list(self.backend.get_logs(address, first, head))

    def close_as(self, daemon: Daemon, cid: str) -> None:
        """Close the channel from the daemon's own account, with no proof of its partner's."""
        key = load_key(daemon.datadir, PASSWORD)
        channel = None
        for event in self.events(object, cid, since=0):
            channel = hub.apply_event(channel, event)
        assert channel is not None
        sender = TransactionSender(self.backend, Account.from_key(key.private_key.secret),
                                   load_artifact("ChannelHub").abi)
        sender.transact(TxRequest(self.contract, hub.encode_close_channel(channel.channel_id, channel.state)))

    def events(self, kind: type, cid: str, since: int | None = None) -> list[Any]:
        found = []
        for raw in self._logs(self.contract, self.start if since is None else since):
            try:
                event = hub.decode_event({"topics": raw.topics, "data": raw.data})
            except hub.UnknownEvent:
                continue
            if isinstance(event, kind) and getattr(event, "channel_id", None) == bytes.fromhex(cid[2:]):
                found.append(event)
        return found


@pytest.fixture
def line(tmp_path: Path, chain: tuple[Anvil, str], zygote: Zygote) -> Iterator[tuple[Daemon, ...]]:
    daemons = tuple(start(tmp_path, name, chain, zygote) for name in "abc")
    yield daemons
    stop_all(daemons)


def _pay_in_background(payer: Daemon, text: str) -> threading.Thread:
    def pay() -> None:
        try:
            payer.call("POST", "/payments", {"request": text})
        except Exception:  # the payer is frozen mid-call in one test: only the chain's outcome is checked
            return

    thread = threading.Thread(target=pay, daemon=True)
    thread.start()
    return thread


def _lock_at_c(a: Daemon, b: Daemon, c: Daemon, ab: str, bc: str) -> tuple[int, int]:
    """Start a payment A -> C with C frozen: the lock reaches B and waits, forwarded, in C's socket.
    Returns (A's lock to B, B's lock to C)."""
    a_before, b_before = balance(a, ab), balance(b, bc)
    text = request(c, AMOUNT)
    pause(c)
    _pay_in_background(a, text)
    wait_until(lambda: balance(b, bc) < b_before, what="B's lock toward C")
    return a_before - balance(a, ab), b_before - balance(b, bc)


def test_a_mediator_whose_payer_stops_answering_claims_on_chain(line: tuple[Daemon, ...],
                                                                 chain: tuple[Anvil, str]) -> None:
    a, b, c = line
    anvil = chain[0]
    ab, bc = open_to(a, b), open_to(b, c)
    assert pay_request(a, c, ETH // 1000)["status"] == "accepted"  # gossip reached A; the line works
    ledger = Ledger(anvil, chain[1])
    a_side, b_side = balance(a, ab), balance(b, ab)
    ether_a, ether_b = ledger.ether(a), ledger.ether(b)
    c_before = balance(c, bc)
    lock_ab, lock_bc = _lock_at_c(a, b, c, ab, bc)
    pause(a)  # from here on A answers nothing: it never unlocks its lock to B
    try:
        resume(c)
        wait_until(lambda: balance(c, bc) == c_before + lock_bc, what="B unlocked its lock to C")
        # B must register before A's lock expires (at the latest a reveal timeout before it)
        advance_chain(anvil, 2 * REVEAL_TIMEOUT + 10)
        mine_until(anvil, lambda: ledger.events(hub.ChannelClosed, ab), "B closing A-B")
        assert b.call("GET", f"/channels/{ab}")["status"] == "closed"
        advance_chain(anvil, CHALLENGE_PERIOD + 1)
        mine_until(anvil, lambda: ledger.events(hub.ChannelUnlocked, ab), "B unlocking A's lock")
        assert ledger.registrations() == 1
        # A sent nothing: its ether grew by exactly its side minus the lock; B got its side and the lock
        assert ledger.gas_spent(a) == 0
        assert ledger.ether(a) - ether_a == a_side - lock_ab
        assert ledger.ether(b) - ether_b + ledger.gas_spent(b) == b_side + lock_ab
    finally:
        resume(a)
    (unlocked,) = ledger.events(hub.ChannelUnlocked, ab)
    assert (to_checksum_address(unlocked.sender), unlocked.claimed, unlocked.returned) == (
        to_checksum_address(a.address), lock_ab, 0)


def test_a_target_whose_payer_closes_claims_on_chain(line: tuple[Daemon, ...],
                                                      chain: tuple[Anvil, str]) -> None:
    """C accepts B's lock and reveals, but B is frozen and does not unlock; B's account closes B-C (as a
    node that restarted from an old backup might). C registers the secret at once and after settlement
    the contract pays it the lock; B, woken, is paid upstream by A with the secret C revealed to it."""
    a, b, c = line
    anvil = chain[0]
    ab, bc = open_to(a, b), open_to(b, c)
    assert pay_request(a, c, ETH // 1000)["status"] == "accepted"
    ledger = Ledger(anvil, chain[1])
    b_side, c_side = balance(b, bc), balance(c, bc)
    ether_b, ether_c = ledger.ether(b), ledger.ether(c)
    try:
        _, lock_bc = _lock_at_c(a, b, c, ab, bc)
        pause(b)
        resume(c)
        wait_until(lambda: int(view(c, bc)["partner_balance"]) == b_side - lock_bc, what="C holding the lock")
        ledger.close_as(b, bc)  # B has no proof of C's: C never paid it
        mine_until(anvil, ledger.registrations, "C registering the secret")
    finally:
        resume(b)
        resume(c)
    advance_chain(anvil, CHALLENGE_PERIOD + 1)
    mine_until(anvil, lambda: ledger.events(hub.ChannelUnlocked, bc), "the lock unlocked on chain")
    (unlocked,) = ledger.events(hub.ChannelUnlocked, bc)
    assert (to_checksum_address(unlocked.sender), unlocked.claimed, unlocked.returned) == (
        to_checksum_address(b.address), lock_bc, 0)
    assert ledger.ether(c) - ether_c + ledger.gas_spent(c) == c_side + lock_bc
    assert ledger.ether(b) - ether_b + ledger.gas_spent(b) == b_side - lock_bc
    # B was paid upstream: C's reveal reached it, and A unlocked off-chain
    wait_until(lambda: settled_off_chain(a, b, ab), what="A-B agreeing, without locks")


def test_a_mediator_whose_payer_closes_claims_on_chain(line: tuple[Daemon, ...],
                                                       chain: tuple[Anvil, str]) -> None:
    """A closes A-B while its lock to B is pending; B then learns the secret from C: it registers at
    once (the channel is closed, A can no longer unlock), and the contract pays it the lock."""
    a, b, c = line
    anvil = chain[0]
    ab, bc = open_to(a, b), open_to(b, c)
    assert pay_request(a, c, ETH // 1000)["status"] == "accepted"
    ledger = Ledger(anvil, chain[1])
    a_side, b_side = balance(a, ab), balance(b, ab)
    ether_a, ether_b = ledger.ether(a), ledger.ether(b)
    c_before = balance(c, bc)
    try:
        lock_ab, lock_bc = _lock_at_c(a, b, c, ab, bc)
        a.call("POST", f"/channels/{ab}/close", {"force": True})
        wait_until(lambda: b.call("GET", f"/channels/{ab}")["status"] == "closed", what="B sees A's close")
    finally:
        resume(c)
    wait_until(lambda: balance(c, bc) == c_before + lock_bc, what="B unlocked its lock to C")
    mine_until(anvil, ledger.registrations, "B registering the secret")
    advance_chain(anvil, CHALLENGE_PERIOD + 1)
    mine_until(anvil, lambda: ledger.events(hub.ChannelUnlocked, ab), "the lock unlocked on chain")
    (unlocked,) = ledger.events(hub.ChannelUnlocked, ab)
    assert (to_checksum_address(unlocked.sender), unlocked.claimed, unlocked.returned) == (
        to_checksum_address(a.address), lock_ab, 0)
    assert ledger.ether(a) - ether_a + ledger.gas_spent(a) == a_side - lock_ab
    assert ledger.ether(b) - ether_b + ledger.gas_spent(b) == b_side + lock_ab
