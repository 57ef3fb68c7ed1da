"""The tower's decisions, pure and IO-free: is a push acceptable, does a close need a dispute, is a
dispute finished. The service reads records, asks these functions, and writes what they return."""

from __future__ import annotations

import enum

from channeld.chain.contract import OnChainChannel, encode_update_balance_proof
from channeld.protocol import (
    InvalidSignature,
    balance_proof_digest,
    balance_proof_update_digest,
    recover_address,
)
from channeld.watchtower._errors import PushRefusal, RefusalCode
from channeld.watchtower._records import Dispute, HeldProof
from channeld.wire import PushProof


def address_bytes(address: str) -> bytes:
    return bytes.fromhex(address[2:])


def participants(channel: OnChainChannel) -> tuple[bytes, bytes]:
    return address_bytes(channel.state.participant1), address_bytes(channel.state.participant2)


def partner_of(channel: OnChainChannel, pusher: bytes) -> bytes:
    first, second = participants(channel)
    if pusher == first:
        return second
    if pusher == second:
        return first
    raise PushRefusal(RefusalCode.NOT_PARTICIPANT, f"0x{pusher.hex()} is not a participant of this channel")


def is_watchable(channel: OnChainChannel, now: int) -> bool:
    """Open, or closed and still inside its challenge period."""
    if channel.settled is not None or channel.cooperative:
        return False
    return channel.closing is None or now <= channel.closing.settle_time


def check_push(
    chain_id: int, contract: bytes, pusher: bytes, push: PushProof, channel: OnChainChannel | None,
    held: HeldProof | None, now: int,
) -> HeldProof | None:
    """The record to store for `push` from `pusher`, or None when it repeats exactly what is held.

    Raises `PushRefusal` for anything else; cheap checks come before the two signature recoveries so
    that stale or misaddressed pushes cost the tower almost nothing.
    """
    proof = push.balance_proof
    if proof.chain_id != chain_id or proof.contract != contract:
        raise PushRefusal(RefusalCode.WRONG_CHANNEL, "the proof is for another chain or contract")
    if channel is None:
        raise PushRefusal(RefusalCode.UNKNOWN_CHANNEL, "no such channel on the tower's contract")
    partner = partner_of(channel, pusher)
    if not is_watchable(channel, now):
        raise PushRefusal(RefusalCode.NOT_WATCHABLE, "the channel is settled or past its challenge period")
    candidate = HeldProof(pusher, proof.nonce, proof.transferred_amount, proof.locked_amount,
                          proof.locks_root, proof.signature, push.authorization)
    if held is not None and proof.nonce <= held.nonce:
        if held == candidate:
            return None
        if proof.nonce == held.nonce:
            raise PushRefusal(RefusalCode.CONFLICTING_PROOF, f"another proof with nonce {held.nonce} is held")
        raise PushRefusal(RefusalCode.STALE, f"the tower holds nonce {held.nonce}")
    fields = (proof.channel_id, proof.nonce, proof.transferred_amount, proof.locked_amount, proof.locks_root)
    _expect_signer(balance_proof_digest(chain_id, contract, *fields), proof.signature, partner,
                   RefusalCode.INVALID_SIGNATURE, "the proof is not signed by the pusher's partner")
    _expect_signer(balance_proof_update_digest(chain_id, contract, *fields), push.authorization, pusher,
                   RefusalCode.BAD_AUTHORIZATION, "the authorization is not signed by the pusher")
    return candidate


def _expect_signer(digest: bytes, signature: bytes, expected: bytes, code: RefusalCode, text: str) -> None:
    try:
        signer = recover_address(digest, signature)
    except InvalidSignature as exc:
        raise PushRefusal(code, f"{text}: {exc}") from None
    if signer != expected:
        raise PushRefusal(code, text)


def non_closer(channel: OnChainChannel) -> bytes | None:
    """The participant a close works against (whose delegated proof the tower submits), if closed."""
    if channel.closing is None:
        return None
    first, second = participants(channel)
    return second if address_bytes(channel.closing.closer) == first else first


def closer_nonce_on_chain(channel: OnChainChannel) -> int:
    """The nonce of the closer's own proof as the contract holds it (0 until someone updates it)."""
    closing = channel.closing
    if closing is None:
        return 0
    return closing.proof1.nonce if closing.closer == channel.state.participant1 else closing.proof2.nonce


def dispute_needed(channel: OnChainChannel, held: HeldProof | None, now: int) -> Dispute | None:
    """A dispute when the channel's closer holds less on chain than the non-closer delegated to us."""
    if held is None or channel.closing is None or not is_watchable(channel, now):
        return None
    if held.pusher != non_closer(channel) or held.nonce <= closer_nonce_on_chain(channel):
        return None
    return Dispute(channel.channel_id, held.nonce, channel.closing.settle_time)


class DisputeStatus(enum.Enum):
    PENDING = "pending"  # submit (or wait for) our update
    DONE = "done"  # the chain holds our nonce or a higher one, or the channel settled
    EXPIRED = "expired"  # the challenge period ended first


def dispute_status(channel: OnChainChannel | None, dispute: Dispute, now: int) -> DisputeStatus:
    if channel is None or channel.closing is None or channel.settled is not None or channel.cooperative:
        return DisputeStatus.DONE
    if closer_nonce_on_chain(channel) >= dispute.nonce:
        return DisputeStatus.DONE
    if now > channel.closing.settle_time:
        return DisputeStatus.EXPIRED
    return DisputeStatus.PENDING


def dispute_calldata(channel: OnChainChannel, held: HeldProof) -> bytes:
    """`updateBalanceProof` with the closer's proof and the non-closer's authorization, against the
    channel's current on-chain state (the contract checks it against its stored commitment)."""
    assert channel.closing is not None
    return encode_update_balance_proof(channel.channel_id, channel.state, channel.closing, held.proof,
                                       held.signature, held.authorization)
