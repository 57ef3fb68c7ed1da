"""Fee bumps of disputes: the escalation rule, the persisted transactions in flight, and the sender taking
back a transaction it sent before a restart (real anvil, automine off)."""

from __future__ import annotations

import math

import pytest
from eth_account import Account

from channeld.chain import SubmittedTx, TxRequest, connect_rpc
from channeld.chain.sender import FeeCapReached, FeePolicy, TransactionSender, bumped
from channeld.errors import LocalFault
from channeld.watchtower._errors import CorruptTowerRecord
from channeld.watchtower._records import decode_flight, encode_flight
from tests.tools import Anvil
from tests.watchtower.kit import mine_at_high_base_fee, mined_nonce, pooled

GWEI = 10**9
REQUEST = TxRequest(to="0x" + "11" * 20, data=b"\x01\x02", value=0, gas=60_000)


def _tx(max_fee: int, tip: int, tx_hash: bytes = b"\xaa" * 32) -> SubmittedTx:
    return SubmittedTx(REQUEST, 7, tx_hash, 60_000, max_fee, tip, 0.0)


def test_far_from_the_deadline_a_bump_is_an_eighth_or_todays_level() -> None:
    policy = FeePolicy(bump_after=10, fee_cap=500 * GWEI)
    assert policy.next_fees(_tx(8 * GWEI, GWEI), GWEI, GWEI) == (9 * GWEI, 1_125_000_000)
    # the base fee rose since: the replacement offers twice today's base fee plus the tip
    assert policy.next_fees(_tx(8 * GWEI, GWEI), 20 * GWEI, GWEI) == (41_125_000_000, 1_125_000_000)
    # a day away, 10 s per step: the geometric path is flatter than 12.5%, so 12.5% it is
    assert policy.next_fees(_tx(8 * GWEI, GWEI), GWEI, GWEI, time_left=86_400) == (9 * GWEI, 1_125_000_000)


def test_the_fee_reaches_the_cap_by_the_deadline_less_the_margin() -> None:
    policy = FeePolicy(bump_after=10, fee_cap=512 * GWEI)
    fees = policy.next_fees(_tx(8 * GWEI, GWEI), GWEI, GWEI, time_left=25)  # two re-sends left
    assert fees is not None
    assert fees[0] == 32 * GWEI  # 8 * (512 / 8) ** (1/3): a third of the way, geometrically
    assert fees[1] == math.ceil(GWEI * 4.0)
    # at (or past) the deadline less the margin: the cap at once
    assert policy.next_fees(_tx(8 * GWEI, GWEI), GWEI, GWEI, time_left=3) == (512 * GWEI, 64 * GWEI)
    assert policy.next_fees(_tx(8 * GWEI, GWEI), GWEI, GWEI, time_left=-60)[0] == 512 * GWEI  # type: ignore[index]


def test_the_cap_is_never_passed_and_at_the_cap_there_is_no_bump() -> None:
    policy = FeePolicy(bump_after=10, fee_cap=100 * GWEI)
    assert policy.next_fees(_tx(95 * GWEI, 2 * GWEI), 300 * GWEI, GWEI) is None  # +12.5% would pass it
    fees = policy.next_fees(_tx(80 * GWEI, 2 * GWEI), 300 * GWEI, GWEI)
    assert fees == (100 * GWEI, bumped(2 * GWEI))
    with pytest.raises(LocalFault):
        FeePolicy(bump_after=0)
    with pytest.raises(LocalFault):
        FeePolicy(fee_cap=0)


def test_a_flight_record_keeps_every_version_and_refuses_damage() -> None:
    versions = (_tx(8 * GWEI, GWEI, b"\x01" * 32), _tx(9 * GWEI, 2 * GWEI, b"\x02" * 32))
    decoded = decode_flight(encode_flight(versions))
    assert decoded == versions
    contract_creation = (SubmittedTx(TxRequest(None, b"\x60"), 0, b"\x03" * 32, 100_000, 5, 1, 0.0),)
    assert decode_flight(encode_flight(contract_creation))[0].request.to is None
    for damaged in (b"\xc1", encode_flight(versions)[:-5], encode_flight(versions).replace(b"\x01" * 32,
                                                                                          b"\x01" * 31)):
        with pytest.raises(CorruptTowerRecord):
            decode_flight(damaged)


def test_a_restarted_sender_adopts_its_pooled_transaction_and_bumps_it_at_the_same_nonce(
    fresh_anvil: Anvil,
) -> None:
    backend = connect_rpc(fresh_anvil.url)
    account = Account.create()
    backend.rpc("anvil_setBalance", [account.address, hex(10**21)])
    backend.rpc("evm_setAutomine", [False])
    persisted: list[SubmittedTx] = []
    first = TransactionSender(backend, account).submit(TxRequest(account.address, b"", 1, 21_000),
                                                       persisted.append)
    assert persisted == [first] and pooled(backend, account.address) == {first.nonce: first.tx_hash}

    restarted = TransactionSender(backend, account, fee_policy=FeePolicy(bump_after=1))
    backend.rpc("anvil_dropTransaction", ["0x" + first.tx_hash.hex()])  # the chain's node lost it, too
    adopted = restarted.adopt(persisted)
    assert pooled(backend, account.address) == {first.nonce: first.tx_hash}  # broadcast again
    assert restarted.next_nonce() == first.nonce + 1
    mine_at_high_base_fee(backend)
    assert restarted.check_receipt(adopted) is None  # below the base fee: it cannot be mined
    replacement = restarted.bump(adopted, time_left=0)
    assert replacement is not None and replacement.nonce == first.nonce
    assert replacement.max_fee == restarted.fee_policy.fee_cap  # no time left: straight to the cap
    backend.mine()
    receipt = restarted.check_receipt(adopted)  # any version of the nonce counts
    assert receipt is not None and receipt.tx_hash == replacement.tx_hash
    assert mined_nonce(backend, account.address) == first.nonce + 1


def test_a_nonce_used_by_an_unknown_transaction_is_reported_taken(fresh_anvil: Anvil) -> None:
    backend = connect_rpc(fresh_anvil.url)
    account = Account.create()
    backend.rpc("anvil_setBalance", [account.address, hex(10**21)])
    backend.rpc("evm_setAutomine", [False])
    ours = TransactionSender(backend, account).submit(TxRequest(account.address, b"", 1, 21_000))
    other = TransactionSender(backend, account)
    other.take_over_pool()  # starts at the mined nonce, so it replaces ours with something else
    theirs = other.submit(TxRequest(account.address, b"", 2, 21_000))
    assert theirs.nonce == ours.nonce
    sender = TransactionSender(backend, account)
    sender.adopt([ours])
    assert not sender.nonce_taken(ours)  # not mined yet: still ours to bump
    backend.mine()
    assert sender.nonce_taken(ours)


def test_taking_over_a_nonce_held_above_the_cap_fails_and_keeps_the_nonce(fresh_anvil: Anvil) -> None:
    backend = connect_rpc(fresh_anvil.url)
    account = Account.create()
    backend.rpc("anvil_setBalance", [account.address, hex(10**21)])
    backend.rpc("evm_setAutomine", [False])
    held = TransactionSender(backend, account).submit(TxRequest(account.address, b"", 1, 21_000))
    capped = TransactionSender(backend, account, fee_policy=FeePolicy(fee_cap=held.max_fee))
    capped.take_over_pool()
    with pytest.raises(FeeCapReached):
        capped.submit(TxRequest(account.address, b"", 2, 21_000))
    assert capped.next_nonce() == held.nonce and capped.pending() == ()
    assert pooled(backend, account.address) == {held.nonce: held.tx_hash}


def test_a_zero_fee_transaction_still_escalates_to_the_cap() -> None:
    policy = FeePolicy(bump_after=10, fee_cap=GWEI)
    assert policy.next_fees(_tx(0, 0), 0, 0, time_left=0) == (GWEI, 1)
    assert policy.next_fees(_tx(0, 0), 0, 0) == (1, 1)
