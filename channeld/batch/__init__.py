"""Batch withdraw, cooperative close and open/deposit of many channels in one transaction: entries, the
Merkle tree of a BLS batch, BLS12-381 keys, signatures and proofs of possession (py-ecc), the calls'
calldata, and the choice between ECDSA and BLS consent by batch size. Pure functions, plus `BlsWorker`
to keep py-ecc's slow work in worker processes. See docs/batch.md.
"""

from channeld.batch._bls import (
    SIGNATURE_DST,
    BlsSecretKey,
    aggregate_public_keys,
    aggregate_signatures,
    g1_to_eip2537,
    g2_to_eip2537,
    hash_to_g2_eip2537,
    partner_sign,
    verify_aggregate,
    verify_possession,
    verify_signature,
)
from channeld.batch._entries import (
    BatchEntry,
    BatchKind,
    BatchTerms,
    encode_batch_bls,
    encode_batch_cooperative_close,
    encode_batch_withdraw,
    encode_open_channels,
    encode_register_bls_key,
    encode_register_bls_signers,
    encode_set_total_deposits,
    entry_from_state,
    leaf,
    sender_withdrawn,
    signers_id,
)
from channeld.batch._errors import BatchRefused, InvalidBatch, InvalidBlsData
from channeld.batch._scheme import MEASURED, GasModel, Scheme, break_even, choose_scheme
from channeld.batch._tree import MerklePath, merkle_path, merkle_root, root_from_path, verify_path
from channeld.batch._workers import BlsWorker

__all__ = [
    "MEASURED",
    "SIGNATURE_DST",
    "BatchEntry",
    "BatchKind",
    "BatchRefused",
    "BatchTerms",
    "BlsSecretKey",
    "BlsWorker",
    "GasModel",
    "InvalidBatch",
    "InvalidBlsData",
    "MerklePath",
    "Scheme",
    "aggregate_public_keys",
    "aggregate_signatures",
    "break_even",
    "choose_scheme",
    "encode_batch_bls",
    "encode_batch_cooperative_close",
    "encode_batch_withdraw",
    "encode_open_channels",
    "encode_register_bls_key",
    "encode_register_bls_signers",
    "encode_set_total_deposits",
    "entry_from_state",
    "g1_to_eip2537",
    "g2_to_eip2537",
    "hash_to_g2_eip2537",
    "leaf",
    "merkle_path",
    "merkle_root",
    "partner_sign",
    "root_from_path",
    "sender_withdrawn",
    "signers_id",
    "verify_aggregate",
    "verify_path",
    "verify_possession",
    "verify_signature",
]
