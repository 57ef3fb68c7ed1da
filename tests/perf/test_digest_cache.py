"""The digest a payment's signature needed is reused for its audit entry, and equals a fresh one."""

from __future__ import annotations

from channeld import protocol as p
from tests.protocol.pair import deliver, make_pair


def _fresh(proof: p.BalanceProof) -> bytes:
    return p.balance_proof_digest(proof.chain_id, proof.contract, proof.channel_id, proof.nonce,
                                  proof.transferred_amount, proof.locked_amount, proof.locks_root)


def test_signed_and_checked_proofs_have_their_true_digests() -> None:
    alice, bob = make_pair()
    for n in range(1, 4):
        alice.feed(p.ActionPay(n, n))
        assert not deliver(alice, bob)
        signed, checked = alice.state.our.proof, bob.state.partner.proof
        assert signed is not None and checked is not None
        assert p.proof_digest(signed) == _fresh(signed) == p.proof_digest(checked) == _fresh(checked)


def test_a_proof_never_seen_is_digested_fresh() -> None:
    alice, _ = make_pair()
    alice.feed(p.ActionPay(1, 5))
    proof = alice.state.our.proof
    assert proof is not None
    copy = p.from_record(p.to_record(alice.state)).our.proof  # an equal proof, another object
    assert copy is not None and copy is not proof
    assert p.proof_digest(copy) == _fresh(proof)
