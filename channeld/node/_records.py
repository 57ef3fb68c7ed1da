"""What the node stores besides the protocol's own record: the channel envelope and outbox operations.

A channel's row holds one envelope, `[1, protocol record, partner node id, on-chain view]`: the protocol
record (`channeld.protocol.to_record`), the partner's transport key (to route messages), and the channel as
the contract holds it (`channeld.chain.contract.OnChainChannel`, rebuilt from events), which every
transaction on the channel must quote. The on-chain view changes only with chain events, so its bytes are
cached and a payment re-encodes only the small outer list.

Outbox rows are `Operation`s: on-chain work the node decided to do, stored in the same batch as the state
that decided it, and removed once mined (or refused for good).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

from channeld.addresses import checksum_bytes
from channeld.chain import contract as hub
from channeld.protocol import CorruptRecord

ENVELOPE_VERSION = 1


def _u(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _i(raw: Any) -> int:
    if type(raw) is not bytes or len(raw) != 32:
        raise CorruptRecord("uint256 field is not 32 bytes")
    return int.from_bytes(raw, "big")


def _addr(raw: Any) -> str:
    if type(raw) is not bytes or len(raw) != 20:
        raise CorruptRecord("address field is not 20 bytes")
    return checksum_bytes(raw)


def addr_bytes(address: str) -> bytes:
    return bytes.fromhex(address.removeprefix("0x"))


def _proof(proof: hub.StoredProof) -> list[bytes]:
    return [_u(proof.nonce), _u(proof.transferred_amount), _u(proof.locked_amount), proof.locks_root]


def _proof_from(raw: list[Any]) -> hub.StoredProof:
    return hub.StoredProof(_i(raw[0]), _i(raw[1]), _i(raw[2]), bytes(raw[3]))


def encode_onchain(channel: hub.OnChainChannel) -> bytes:
    s = channel.state
    closing = None
    if channel.closing is not None:
        c = channel.closing
        closing = [addr_bytes(c.closer), _u(c.settle_time), _proof(c.proof1), _proof(c.proof2)]
    settled = None
    if channel.settled is not None:
        t = channel.settled
        settled = [_u(t.amount1), _u(t.locked1), _u(t.amount2), _u(t.locked2)]
    return msgpack.packb([
        channel.channel_id, addr_bytes(s.participant1), addr_bytes(s.participant2), addr_bytes(s.token),
        _u(s.challenge_period), _u(s.deposit1), _u(s.deposit2), _u(s.withdrawn1), _u(s.withdrawn2),
        closing, settled, channel.cooperative, [channel.unlocked1, channel.unlocked2],
    ])


def decode_onchain(raw: bytes) -> hub.OnChainChannel:
    try:
        fields = msgpack.unpackb(raw)
        # the unlocked flags came later: a view stored without them has released no locks
        (cid, p1, p2, token, period, d1, d2, w1, w2, closing, settled, coop), unlocked = (
            (fields, [False, False]) if len(fields) == 12 else (fields[:12], fields[12]))
        state = hub.ChannelState(_addr(p1), _addr(p2), _addr(token), _i(period), _i(d1), _i(d2), _i(w1),
                                 _i(w2))
        close = None if closing is None else hub.Closing(
            _addr(closing[0]), _i(closing[1]), _proof_from(closing[2]), _proof_from(closing[3]))
        paid = None if settled is None else hub.Settlement(*(_i(v) for v in settled))
        return hub.OnChainChannel(bytes(cid), state, close, paid, bool(coop), unlocked[0] is True,
                                  unlocked[1] is True)
    except (ValueError, TypeError, IndexError, msgpack.UnpackException) as exc:
        raise CorruptRecord(f"on-chain view does not decode: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Envelope:
    protocol_record: bytes
    peer_id: bytes
    onchain: bytes

    def encode(self) -> bytes:
        return msgpack.packb([ENVELOPE_VERSION, self.protocol_record, self.peer_id, self.onchain])

    @classmethod
    def decode(cls, raw: bytes) -> Envelope:
        try:
            version, record, peer_id, onchain = msgpack.unpackb(raw)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise CorruptRecord(f"channel envelope does not decode: {exc}") from exc
        if version != ENVELOPE_VERSION:
            raise CorruptRecord(f"channel envelope version {version} is not {ENVELOPE_VERSION}")
        return cls(bytes(record), bytes(peer_id), bytes(onchain))


# --- outbox operations ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Operation:
    """One on-chain action: `kind` names the contract call, `args` its values (bytes and ints).

    kinds and args: open (partner, token, challenge_period, salt, deposit), deposit (channel, total),
    withdraw (channel, participant, total, expiry, receiver, participant_sig, partner_sig),
    close (channel, nonce, transferred, locked, locks_root, signature) - nonce 0 for no proof,
    update (channel, nonce, transferred, locked, locks_root, signature, deadline), settle (channel),
    coop (channel, amount1, receiver1, amount2, receiver2, signature1, signature2).
    """

    kind: str
    args: tuple[bytes | int, ...]

    def encode(self) -> bytes:
        return msgpack.packb([self.kind, [_u(a) if isinstance(a, int) else [a] for a in self.args]])

    @classmethod
    def decode(cls, raw: bytes) -> Operation:
        try:
            kind, args = msgpack.unpackb(raw)
            values: list[bytes | int] = [bytes(a[0]) if isinstance(a, list) else _i(a) for a in args]
        except (ValueError, TypeError, IndexError, msgpack.UnpackException) as exc:
            raise CorruptRecord(f"outbox operation does not decode: {exc}") from exc
        if kind not in OPERATION_KINDS:
            raise CorruptRecord(f"unknown outbox operation {kind!r}")
        return cls(str(kind), tuple(values))

    @property
    def channel_id(self) -> bytes | None:
        first = self.args[0] if self.args else None
        return first if self.kind not in NO_CHANNEL_KINDS and isinstance(first, bytes) else None


# register_secret (secret, deadline) and unlock (channel, sender, receiver, packed_locks): multi-hop claims
# batch (calldata, expiry), register_bls_key (key, proof), register_bls_signers (addresses, keys): batches
OPERATION_KINDS = frozenset({"open", "deposit", "withdraw", "close", "update", "settle", "coop",
                             "register_secret", "unlock", "batch", "register_bls_key",
                             "register_bls_signers"})
NO_CHANNEL_KINDS = frozenset({"open", "register_secret", "batch", "register_bls_key", "register_bls_signers"})
