"""BLS keys, proofs of possession, aggregation and the EIP-2537 encodings, and the worker pool."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache

import pytest
from py_ecc.bls import G2ProofOfPossession

from channeld.batch import (
    BlsSecretKey,
    BlsWorker,
    InvalidBlsData,
    aggregate_public_keys,
    aggregate_signatures,
    g1_to_eip2537,
    g2_to_eip2537,
    hash_to_g2_eip2537,
    verify_aggregate,
    verify_possession,
    verify_signature,
)

MESSAGE = b"\x42" * 32


@cache
def _key(n: int) -> BlsSecretKey:
    return BlsSecretKey.from_seed(bytes([n]) * 32)


@cache
def _signature(n: int) -> bytes:
    return _key(n).sign(MESSAGE)


def test_keys_come_from_at_least_32_bytes_and_are_not_printed() -> None:
    with pytest.raises(InvalidBlsData):
        BlsSecretKey.from_seed(b"short")
    assert str(_key(1).scalar) not in repr(_key(1))


def test_a_proof_of_possession_verifies_only_for_its_own_key() -> None:
    proof = _key(1).prove_possession()
    assert verify_possession(_key(1).public_key(), proof)
    assert not verify_possession(_key(2).public_key(), proof)


def test_an_aggregate_verifies_against_all_keys_and_not_a_subset() -> None:
    keys = [_key(n).public_key() for n in (1, 2)]
    aggregate = aggregate_signatures([_signature(1), _signature(2)])
    assert verify_aggregate(keys, MESSAGE, aggregate)
    assert not verify_aggregate(keys[:1], MESSAGE, aggregate)
    assert verify_signature(keys[0], MESSAGE, _signature(1))
    assert len(aggregate_public_keys(keys)) == 48


def test_eip2537_encodings_pad_each_coordinate_to_64_bytes() -> None:
    public = g1_to_eip2537(_key(1).public_key())
    signature = g2_to_eip2537(_signature(1))
    assert len(public) == 128 and len(signature) == 256
    assert all(public[i:i + 16] == bytes(16) for i in (0, 64))
    assert all(signature[i:i + 16] == bytes(16) for i in (0, 64, 128, 192))
    assert len(hash_to_g2_eip2537(MESSAGE)) == 256


def test_malformed_points_are_refused() -> None:
    with pytest.raises(InvalidBlsData):
        g1_to_eip2537(b"\x00" * 48)
    with pytest.raises(InvalidBlsData):
        g2_to_eip2537(b"\x01" * 96)
    with pytest.raises(InvalidBlsData):
        aggregate_signatures([])
    with pytest.raises(InvalidBlsData):
        aggregate_public_keys([b"\x00" * 48])


def test_the_worker_signs_and_aggregates_like_the_direct_calls() -> None:
    with BlsWorker(ThreadPoolExecutor(max_workers=2)) as worker:
        aggregate = worker.aggregate([_signature(1), _signature(2)]).result()
        assert aggregate == bytes(G2ProofOfPossession.Aggregate([_signature(1), _signature(2)]))
        keys = [_key(n).public_key() for n in (1, 2)]
        assert worker.verify_aggregate(keys, MESSAGE, aggregate).result()


def test_the_default_worker_signs_in_another_process() -> None:
    with BlsWorker(workers=1) as worker:
        assert worker.sign(_key(1), MESSAGE).result(timeout=60) == _signature(1)
