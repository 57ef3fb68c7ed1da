"""Helpers every handler uses: binding checks, the partner's key, signing, and the persist rule."""

from __future__ import annotations

from collections.abc import Sequence
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


def proof_digest(proof: BalanceProof) -> bytes:
    return balance_proof_digest(proof.chain_id, proof.contract, proof.channel_id, proof.nonce,
                                proof.transferred_amount, proof.locked_amount, proof.locks_root)


def check_partner_proof_signature(state: ChannelState, proof: BalanceProof) -> None:
    partner_key(state.partner_public_key).check(proof_digest(proof), proof.signature)


def sign_our_proof(state: ChannelState, signer: Signer, nonce: int, transferred: int, locked: int,
                   locks_root: bytes) -> BalanceProof:
    digest = balance_proof_digest(state.chain_id, state.contract, state.channel_id, nonce, transferred,
                                  locked, locks_root)
    return BalanceProof(state.chain_id, state.contract, state.channel_id, nonce, transferred, locked,
                        locks_root, signer.sign(digest))


def locks_root_of(proof: BalanceProof | None) -> bytes:
    return ZERO32 if proof is None else proof.locks_root
