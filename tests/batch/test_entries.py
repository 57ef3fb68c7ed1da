"""Batch entries, leaves, the signed message, calldata encoders and the partner's check before signing."""

from __future__ import annotations

import pytest

from channeld.batch import (
    BatchEntry,
    BatchKind,
    BatchRefused,
    BatchTerms,
    BlsSecretKey,
    InvalidBatch,
    encode_batch_bls,
    encode_batch_withdraw,
    entry_from_state,
    leaf,
    merkle_path,
    merkle_root,
    partner_sign,
    sender_withdrawn,
    signers_id,
)
from channeld.chain.contract import ETHER, ChannelState

HUB, WALLET = "0x" + "11" * 20, "0x" + "22" * 20
CID = b"\x07" * 32


def _entry(amount: int, **changes: int) -> BatchEntry:
    fields = {"challenge_period": 100, "deposit1": 0, "deposit2": 50, "withdrawn1": 0, "withdrawn2": 0}
    fields.update(changes)
    return BatchEntry(CID, WALLET, amount=amount, **fields)


def test_entry_from_state_orders_the_participants_like_the_contract() -> None:
    state = ChannelState(HUB, WALLET, ETHER, 100, 70, 50, 5, 0)
    entry = entry_from_state(CID, state, HUB, 20)
    assert (entry.partner, entry.deposit1, entry.withdrawn1, entry.amount) == (
        state.participant2, 70, 5, 20)
    assert entry.held == 115 and sender_withdrawn(entry, HUB) == 5
    with pytest.raises(InvalidBatch):
        entry_from_state(CID, state, "0x" + "33" * 20, 20)


@pytest.mark.parametrize("bad", [{"amount": -1}, {"deposit1": 2**256}, {"challenge_period": True}])
def test_entries_validate_when_built(bad: dict[str, int]) -> None:
    fields = {"challenge_period": 1, "deposit1": 0, "deposit2": 0, "withdrawn1": 0, "withdrawn2": 0,
              "amount": 0} | bad
    with pytest.raises(InvalidBatch):
        BatchEntry(CID, WALLET, **fields)
    with pytest.raises(InvalidBatch):
        BatchEntry(b"\x00", WALLET, 1, 0, 0, 0, 0, 0)
    with pytest.raises(InvalidBatch):
        BatchEntry(CID, "not an address", 1, 0, 0, 0, 0, 0)


def test_leaves_differ_by_kind_and_amount_and_a_close_cannot_exceed_the_channel() -> None:
    assert leaf(BatchKind.WITHDRAW, _entry(10)) != leaf(BatchKind.WITHDRAW, _entry(11))
    assert leaf(BatchKind.WITHDRAW, _entry(10)) != leaf(BatchKind.CLOSE, _entry(10))
    with pytest.raises(InvalidBatch):
        leaf(BatchKind.CLOSE, _entry(51))


def test_the_signed_message_binds_chain_contract_and_terms() -> None:
    terms = BatchTerms(1, HUB, BatchKind.WITHDRAW, ETHER, HUB, WALLET, 99)
    root = b"\x01" * 32
    base = terms.message(3, root)
    variants = [BatchTerms(2, HUB, BatchKind.WITHDRAW, ETHER, HUB, WALLET, 99),
                BatchTerms(1, WALLET, BatchKind.WITHDRAW, ETHER, HUB, WALLET, 99),
                BatchTerms(1, HUB, BatchKind.CLOSE, ETHER, HUB, WALLET, 99),
                BatchTerms(1, HUB, BatchKind.WITHDRAW, ETHER, HUB, HUB, 99)]
    assert len({base, terms.message(4, root), terms.message(3, b"\x02" * 32),
                *(v.message(3, root) for v in variants)}) == 7


def test_a_partner_signs_only_its_own_entry_in_the_tree() -> None:
    key = BlsSecretKey.from_seed(b"partner seed".ljust(32, b"."))
    entries = [_entry(10), _entry(20), _entry(30)]
    leaves = [leaf(BatchKind.WITHDRAW, e) for e in entries]
    root = merkle_root(leaves)
    message = BatchTerms(1, HUB, BatchKind.WITHDRAW, ETHER, HUB, WALLET, 99).message(3, root)
    expected = leaf(BatchKind.WITHDRAW, _entry(20))
    with pytest.raises(BatchRefused):  # the hub put 20 in but gave the path of another leaf
        partner_sign(key, expected, merkle_path(leaves, 0), root, message)
    with pytest.raises(BatchRefused):  # the partner agreed to 19, not 20
        partner_sign(key, leaf(BatchKind.WITHDRAW, _entry(19)), merkle_path(leaves, 1), root, message)
    assert len(partner_sign(key, expected, merkle_path(leaves, 1), root, message)) == 96


def test_encoders_refuse_malformed_batches() -> None:
    with pytest.raises(InvalidBatch):
        encode_batch_withdraw(ETHER, HUB, 1, [], [])
    with pytest.raises(InvalidBatch):
        encode_batch_withdraw(ETHER, HUB, 1, [_entry(1)], [b"\x00" * 64])
    terms = BatchTerms(1, HUB, BatchKind.WITHDRAW, ETHER, HUB, WALLET, 99)
    with pytest.raises(InvalidBatch):
        encode_batch_bls(terms, [_entry(1)], b"\x00" * 96, b"\x00" * 256)
    assert signers_id([HUB, WALLET]) != signers_id([WALLET, HUB])


def test_the_batch_package_loads_no_io_libraries() -> None:
    import subprocess
    import sys

    probe = "import sys, channeld.batch; print(sorted({'trio', 'web3', 'plyvel'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
