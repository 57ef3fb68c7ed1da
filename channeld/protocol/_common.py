"""Helpers every handler uses: binding checks, the partner's key, signing, and the persist rule."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

from channeld.protocol._errors import WrongChannel
from channeld.protocol._events import Effect, Persist
from channeld.protocol._signing import KnownKey, Signer, balance_proof_digest
from channeld.protocol._state import ChannelState
from channeld.wire import ZERO32, BalanceProof

Transition = tuple[ChannelState, list[Effect]]


def transition(old: ChannelState, new: ChannelState, effects: Sequence[Effect]) -> Transition:
    """(new, effects), with `Persist(new)` first whenever the state changed: store before acting."""
    if new is old:
        return old, list(effects)
    return new, [Persist(new.channel_id, new), *effects]


@lru_cache(maxsize=1024)
def partner_key(public_key: bytes) -> KnownKey:
    """The parsed partner key; parsing once per partner keeps verification on the fast path."""
    return KnownKey(public_key)


def check_binding(state: ChannelState, chain_id: int, contract: bytes, channel_id: bytes) -> None:
    """The message is about this channel on this chain and contract, or `WrongChannel`."""
    if channel_id != state.channel_id:
        raise WrongChannel(f"channel id {channel_id.hex()} is not this channel ({state.channel_id.hex()})")
    if chain_id != state.chain_id or contract != state.contract:
        raise WrongChannel(f"chain {chain_id} / contract {contract.hex()} is not this channel's "
                           f"(chain {state.chain_id} / contract {state.contract.hex()})")


def check_channel_id(state: ChannelState, channel_id: bytes) -> None:
    if channel_id != state.channel_id:
        raise WrongChannel(f"channel id {channel_id.hex()} is not this channel ({state.channel_id.hex()})")


# Digests of proofs just signed or checked: the node's audit log names each payment's proof by its digest,
# which the signature already needed. Keyed by identity (the entry holds the proof, so its id cannot be
# reused while cached); emptied when full.
_DIGESTS: dict[int, tuple[BalanceProof, bytes]] = {}
_DIGESTS_LIMIT = 4096


def _remember_digest(proof: BalanceProof, digest: bytes) -> None:
    if len(_DIGESTS) >= _DIGESTS_LIMIT:
        _DIGESTS.clear()
    _DIGESTS[id(proof)] = (proof, digest)


def proof_digest(proof: BalanceProof) -> bytes:
    """The EIP-712 digest of `proof` (taken from the cache when this proof was just signed or checked)."""
    found = _DIGESTS.get(id(proof))
    if found is not None and found[0] is proof:
        return found[1]
    digest = balance_proof_digest(proof.chain_id, proof.contract, proof.channel_id, proof.nonce,
                                  proof.transferred_amount, proof.locked_amount, proof.locks_root)
    _remember_digest(proof, digest)
    return digest


def check_partner_proof_signature(state: ChannelState, proof: BalanceProof) -> None:
    """(r, s) verify against the partner's key; `v` is made right by `partner_proof_for_chain` when used."""
    partner_key(state.partner_public_key).check_rs(proof_digest(proof), proof.signature)


def partner_proof_for_chain(state: ChannelState) -> BalanceProof | None:
    """The partner's latest proof with the `v` the contract's ecrecover needs (one recovery: on close,
    dispute or a watchtower push, never per payment). A proof is accepted on (r, s) alone, so its `v`
    as received may be the wrong one of 27 / 28; the partner's signature over the same fields stands."""
    proof = state.partner.proof
    if proof is None:
        return None
    signature = partner_key(state.partner_public_key).chain_signature(proof_digest(proof), proof.signature)
    return proof if signature == proof.signature else replace(proof, signature=signature)


def sign_our_proof(state: ChannelState, signer: Signer, nonce: int, transferred: int, locked: int,
                   locks_root: bytes, *, trusted: bool = False) -> BalanceProof:
    """Our proof with these figures, signed. `trusted`: the caller has range-checked every figure (the
    fast path), so the proof is built without the field checks of `BalanceProof`."""
    digest = balance_proof_digest(state.chain_id, state.contract, state.channel_id, nonce, transferred,
                                  locked, locks_root)
    build = BalanceProof.trusted if trusted else BalanceProof
    proof: BalanceProof = build(state.chain_id, state.contract, state.channel_id, nonce, transferred, locked,
                                locks_root, signer.sign(digest))
    _remember_digest(proof, digest)
    return proof


def locks_root_of(proof: BalanceProof | None) -> bytes:
    return ZERO32 if proof is None else proof.locks_root
