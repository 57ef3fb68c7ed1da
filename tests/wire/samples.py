"""One valid instance of every catalogued message, with distinct recognisable field values."""

from __future__ import annotations

from channeld import wire

CONTRACT = bytes(range(20))
CHANNEL = bytes(range(32, 64))
A1 = bytes([0x11] * 20)
A2 = bytes([0x22] * 20)
SIG = bytes(range(65))
ROOT = bytes([0xAB] * 32)


def proof(nonce: int = 7, locked: int = 0) -> wire.BalanceProof:
    return wire.BalanceProof(31337, CONTRACT, CHANNEL, nonce, 2**200 + 5, locked,
                             ROOT if locked else wire.ZERO32, SIG)


SAMPLES: list[wire.Message] = [
    wire.Init(1, b"\x01", 31337, CONTRACT, wire.pack_chains([(10, A1), (8453, A2)])),
    wire.Error(wire.ZERO32, 3, "bad nonce ✗"),
    wire.Ping(16, b"\x00" * 4),
    wire.Pong(b"\x00" * 16),
    wire.ChannelOpened(31337, CONTRACT, CHANNEL, A1, A2, 3600),
    wire.Reestablish(31337, CONTRACT, CHANNEL, 12, 9),
    wire.Payment(proof(), 2**64 - 1, 10**18, b"order 42"),
    wire.PaymentAccepted(CHANNEL, 7, 99),
    wire.PaymentRefused(CHANNEL, 7, 99, 21, "transferred amount mismatch"),
    wire.WithdrawRequest(31337, CONTRACT, CHANNEL, A1, 2**255, 1_700_000_000, A2, SIG),
    wire.WithdrawSignature(31337, CONTRACT, CHANNEL, A1, 2**255, 1_700_000_000, A2, SIG),
    wire.SettleRequest(31337, CONTRACT, CHANNEL, A1, 5, A1, A2, 6, A2, SIG),
    wire.SettleSignature(31337, CONTRACT, CHANNEL, A1, 5, A1, A2, 6, A2, SIG),
    wire.LockedTransfer(proof(locked=300), wire.Lock(300, 1_700_000_600, ROOT), 5, A1, A2, b""),
    wire.SecretReveal(ROOT),
    wire.Unlock(proof(nonce=8), ROOT, 5),
    wire.LockExpired(proof(nonce=9), ROOT),
    wire.PushProof(proof(nonce=10), SIG),
    wire.PushAccepted(CHANNEL, 10),
    wire.PushRefused(CHANNEL, 10, 40, "the tower holds nonce 12"),
    wire.ProofQuery(CHANNEL),
    wire.ProofStatus(CHANNEL, 12),
    wire.ChannelGossip(31337, CONTRACT, CHANNEL, A1, A2, 10**18, A1, 1, 250, 60, 3, SIG),
    wire.ConversionGossip(A1, wire.AssetId(31337, CONTRACT, bytes(20)), wire.AssetId(10, CONTRACT, A2),
                          3000 * 10**6, 10**18, 5, 100, 900, 4, 1_700_000_000, SIG),
    wire.BatchConsentRequest(31337, CONTRACT, CHANNEL, ROOT, wire.BATCH_WITHDRAW, wire.SCHEME_BLS, A1, A2,
                             1_700_000_000, wire.EntryTerms(A1, 3600, 10, 2**255, 0, 3, 9), SIG,
                             wire.MerkleBranch(2, 5, ROOT, ROOT * 3)),
    wire.BatchConsent(CHANNEL, ROOT, SIG, bytes(range(96)), bytes(range(48))),
    wire.BatchRefusal(CHANNEL, ROOT, 30, "the entry's deposits are not this channel's"),
]
