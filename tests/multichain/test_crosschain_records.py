"""What a cross-chain payment stores and hands around: the converter's record, requests naming a token."""

from __future__ import annotations

import coincurve
import msgpack
import pytest

from channeld import protocol as p
from channeld.client._payreq import TOKEN_VERSION, VERSION, BadPaymentRequest, PaymentRequest
from channeld.protocol._crosschain import (
    ConversionState,
    conversion_to_record,
    payment_from_record,
    payment_to_record,
    start_conversion,
)
from channeld.protocol._record import CorruptRecord
from tests.protocol.test_crosschain_converter import EXPIRY, ROUTE, converter, received_lock

KEY = coincurve.PrivateKey(p.keccak256(b"recipient"))
TOKEN = bytes([0x42] * 20)


def _converting() -> ConversionState:
    payer_channel, received = received_lock(672, EXPIRY, ROUTE)
    state, _ = start_conversion(received, payer_channel, converter()[0])
    return state


def test_a_converter_record_round_trips_and_other_machines_keep_their_own_layout() -> None:
    state = _converting()
    assert payment_from_record(conversion_to_record(state)) == state
    assert payment_to_record(state) == conversion_to_record(state)
    mediator = state.inner
    assert payment_from_record(payment_to_record(mediator)) == mediator
    assert payment_to_record(mediator) == p.transfer_to_record(mediator)


@pytest.mark.parametrize("damage", [
    lambda f: f[:5],                       # fields missing
    lambda f: [*f[:3], "alpha", *f[4:]],   # a chain id that is not an integer
    lambda f: [*f[:5], b"\x00" * 32, *f[6:]],  # a zero rate numerator
    lambda f: [*f[:2], p.transfer_to_record(p.issue_request(b"\x01" * 32, 5, 10, 1)), *f[3:]],  # no mediator
])
def test_a_damaged_converter_record_is_corrupt_not_a_crash(damage: object) -> None:
    fields = msgpack.unpackb(conversion_to_record(_converting()), raw=False)
    raw = msgpack.packb(damage(fields), use_bin_type=True)  # type: ignore[operator]
    with pytest.raises(CorruptRecord):
        payment_from_record(raw)


def _request(token: bytes = bytes(20)) -> PaymentRequest:
    return PaymentRequest(5252, bytes([0x11] * 20), KEY.public_key.format(), 100_000, bytes([0x22] * 32),
                          2_000_000_000, "across", token=token).signed(KEY)


def test_a_request_in_the_native_coin_stays_version_1_and_a_token_request_is_version_2() -> None:
    native, token = _request(), _request(TOKEN)
    assert (native.version, token.version) == (VERSION, TOKEN_VERSION)
    assert PaymentRequest.decode(native.encode()) == native
    assert PaymentRequest.decode(token.encode()) == token
    assert PaymentRequest.decode(token.encode()).token == TOKEN
    assert token.as_json()["token"] == "0x" + TOKEN.hex()  # checksummed: all digits here


def test_a_token_is_signed_a_request_relabelled_to_another_token_fails() -> None:
    relabelled = PaymentRequest(*[getattr(_request(TOKEN), f) for f in (
        "chain_id", "contract", "node_id", "amount", "payment_hash", "expiry", "description", "signature")],
        token=bytes([0x43] * 20))
    with pytest.raises(BadPaymentRequest, match="not signed by its node"):
        PaymentRequest.decode(relabelled.encode())
