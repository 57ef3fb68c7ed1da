"""The transaction sender on real anvil: nonces, replacement, funds and revert errors."""

from __future__ import annotations

import time

import pytest
import trio
from eth_account import Account
from eth_account.signers.local import LocalAccount

from channeld.chain.aio import AsyncSender
from channeld.chain.artifact import ContractArtifact
from channeld.chain.backend import ChainBackend
from channeld.chain.deploy import Deployment, deploy
from channeld.chain.errors import ConfirmationTimeout, InsufficientFunds, TransactionReverted
from channeld.chain.sender import SubmittedTx, TransactionSender, TxRequest, bumped
from tests.chain.conftest import LIMIT
from tests.chain.helpers import ping, set_automine
from tests.tools import Anvil

Fresh = tuple[Anvil, ChainBackend, LocalAccount]


def test_bump_is_at_least_an_eighth_and_one_wei() -> None:
    assert bumped(8) == 9
    assert bumped(1) == 2
    assert bumped(10**9) == 1_125_000_000
    assert bumped(10**9 + 1) == 1_125_000_002  # rounded up, never below 12.5%


def test_submit_returns_before_mining(fresh: Fresh, emitter_artifact: ContractArtifact) -> None:
    _, backend, account = fresh
    sender = TransactionSender(backend, account, emitter_artifact.abi)
    deployment = deploy(sender, emitter_artifact, [LIMIT])
    set_automine(backend, False)
    submitted = sender.submit(ping(deployment.address, 1))
    assert sender.check_receipt(submitted) is None
    with pytest.raises(ConfirmationTimeout):
        sender.wait_for_receipt(submitted, timeout=0.2, poll_interval=0.05)
    backend.mine()
    receipt = sender.wait_for_receipt(submitted, timeout=5)
    assert receipt.tx_hash == submitted.tx_hash and receipt.succeeded


def test_confirmations_are_counted_in_blocks_on_top(
    backend: ChainBackend, account: LocalAccount, emitter: Deployment
) -> None:
    sender = TransactionSender(backend, account)
    submitted = sender.submit(ping(emitter.address, 1))
    # anvil's automine may hand out the hash a moment before the block exists
    deadline = time.monotonic() + 5
    while backend.receipt(submitted.tx_hash) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sender.check_receipt(submitted, confirmations=2) is None
    backend.mine(2)
    assert sender.check_receipt(submitted, confirmations=2) is not None


async def test_concurrent_submissions_get_distinct_consecutive_nonces(
    backend: ChainBackend, account: LocalAccount, emitter: Deployment
) -> None:
    sender = AsyncSender(TransactionSender(backend, account))
    first = sender.sender.next_nonce()
    submitted: list[SubmittedTx] = []

    async def submit_one(ping_id: int) -> None:
        submitted.append(await sender.submit(ping(emitter.address, ping_id)))

    async with trio.open_nursery() as nursery:
        for ping_id in range(12):
            nursery.start_soon(submit_one, ping_id)
    assert sorted(tx.nonce for tx in submitted) == list(range(first, first + 12))
    for tx in submitted:
        receipt = await sender.wait_for_receipt(tx, timeout=10)
        assert receipt.succeeded
    assert backend.pending_nonce(account.address) == first + 12


def test_a_restarted_sender_continues_after_queued_transactions(
    fresh: Fresh, emitter_artifact: ContractArtifact
) -> None:
    _, backend, account = fresh
    sender = TransactionSender(backend, account)
    deployment = deploy(sender, emitter_artifact, [LIMIT])
    set_automine(backend, False)
    queued = [sender.submit(ping(deployment.address, n)) for n in range(3)]
    restarted = TransactionSender(backend, account)
    assert restarted.next_nonce() == queued[-1].nonce + 1
    follow_up = restarted.submit(ping(deployment.address, 99))
    backend.mine()
    assert restarted.wait_for_receipt(follow_up, timeout=5).succeeded
    assert all(sender.wait_for_receipt(tx, timeout=5).succeeded for tx in queued)


def test_a_sender_resyncs_when_another_used_its_nonce(
    backend: ChainBackend, account: LocalAccount, emitter: Deployment
) -> None:
    sender = TransactionSender(backend, account)
    sender.next_nonce()
    TransactionSender(backend, account).transact(ping(emitter.address, 1))
    again = sender.submit(ping(emitter.address, 2))
    assert sender.wait_for_receipt(again).succeeded


def test_stuck_transaction_is_replaced_with_bumped_fees(
    fresh: Fresh, emitter_artifact: ContractArtifact
) -> None:
    _, backend, account = fresh
    clock = [0.0]
    sender = TransactionSender(backend, account, clock=lambda: clock[0])
    deployment = deploy(sender, emitter_artifact, [LIMIT])
    set_automine(backend, False)
    stuck = sender.submit(ping(deployment.address, 5))
    assert sender.replace_stuck(older_than=30) == []
    clock[0] = 31.0
    (replacement,) = sender.replace_stuck(older_than=30)
    assert replacement.nonce == stuck.nonce and replacement.tx_hash != stuck.tx_hash
    assert replacement.priority_fee * 8 >= stuck.priority_fee * 9
    assert replacement.max_fee * 8 >= stuck.max_fee * 9
    backend.mine()
    receipt = sender.wait_for_receipt(stuck, timeout=5)
    assert receipt.tx_hash == replacement.tx_hash
    assert backend.receipt(stuck.tx_hash) is None
    assert receipt.effective_gas_price >= replacement.priority_fee


def test_unfunded_account_gets_insufficient_funds_and_keeps_its_nonce(
    backend: ChainBackend, emitter: Deployment
) -> None:
    pauper: LocalAccount = Account.create()
    sender = TransactionSender(backend, pauper)
    with pytest.raises(InsufficientFunds, match=pauper.address) as caught:
        sender.submit(ping(emitter.address, 1))
    assert caught.value.balance == 0 and caught.value.needed > 0
    assert sender.next_nonce() == 0 and sender.pending() == ()


def test_value_beyond_balance_is_insufficient_funds(backend: ChainBackend, account: LocalAccount) -> None:
    sender = TransactionSender(backend, account)
    with pytest.raises(InsufficientFunds):
        sender.submit(TxRequest(to=Account.create().address, value=backend.balance(account.address) + 1))


def test_revert_at_estimation_names_the_custom_error(
    backend: ChainBackend, account: LocalAccount, emitter: Deployment, emitter_artifact: ContractArtifact
) -> None:
    sender = TransactionSender(backend, account, emitter_artifact.abi)
    before = sender.next_nonce()
    with pytest.raises(TransactionReverted) as caught:
        sender.submit(ping(emitter.address, LIMIT + 5))
    assert caught.value.error_name == "TooBig"
    assert caught.value.error_args == (LIMIT + 5, LIMIT)
    assert sender.next_nonce() == before


def test_revert_on_chain_is_decoded_with_its_hash(
    backend: ChainBackend, account: LocalAccount, emitter: Deployment, emitter_artifact: ContractArtifact
) -> None:
    sender = TransactionSender(backend, account, emitter_artifact.abi)
    submitted = sender.submit(ping(emitter.address, LIMIT + 1, gas=100_000))  # skips estimation
    with pytest.raises(TransactionReverted, match="TooBig") as caught:
        sender.wait_for_receipt(submitted)
    assert caught.value.tx_hash == submitted.tx_hash
    assert caught.value.error_args == (LIMIT + 1, LIMIT)
