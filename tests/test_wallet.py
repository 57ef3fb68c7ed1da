"""The wallet library: payment requests (encoding, checksum, signature), webhook verification, and a
`Wallet` against a real daemon on anvil that keeps its channel across a restart."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import coincurve
import pytest

from channeld.api._tokens import Scope, TokenBook
from channeld.chain import connect_rpc
from channeld.client import (
    BadPaymentRequest,
    PaymentRequest,
    WebhookRejected,
    WebhookVerifier,
    signed_headers,
)
from channeld.errors import ChanneldError
from channeld.keys import create_datadir
from channeld.wallet import Wallet
from tests.node.helpers import PASSWORD, Zygote, deploy_hub, make_daemon
from tests.tools import Anvil

KEY = coincurve.PrivateKey(b"\x07" * 32)


def _request(**changes: object) -> PaymentRequest:
    fields: dict[str, object] = {"chain_id": 31337, "contract": b"\x11" * 20,
                                 "node_id": KEY.public_key.format(), "amount": 12345,
                                 "payment_hash": hashlib.sha256(b"secret").digest(),
                                 "expiry": 2_000_000_000, "description": "a coffee ☕"}
    fields.update(changes)
    return PaymentRequest(**fields).signed(KEY)  # type: ignore[arg-type]


def test_a_request_survives_encoding_and_case() -> None:
    request = _request()
    text = request.encode()
    assert text.startswith("chpr1") and text == text.lower()
    assert PaymentRequest.decode(text) == request
    assert PaymentRequest.decode(text.upper()) == request  # QR codes carry it upper-case


def test_every_single_character_change_is_caught() -> None:
    text = _request().encode()
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    for index in range(len("chpr1"), len(text), 7):
        changed = alphabet[(alphabet.index(text[index]) + 1) % 32]
        with pytest.raises(BadPaymentRequest):
            PaymentRequest.decode(text[:index] + changed + text[index + 1:])
    for bad in (text[:-4], text + "a", "", "chpr1", "x" * 2000):
        with pytest.raises(BadPaymentRequest):
            PaymentRequest.decode(bad)


def test_a_request_signed_by_another_key_is_refused() -> None:
    other = coincurve.PrivateKey(b"\x08" * 32)
    with pytest.raises(BadPaymentRequest, match="signing key"):
        PaymentRequest(31337, b"\x11" * 20, KEY.public_key.format(), 1, bytes(32), 2_000_000_000,
                       "").signed(other)
    forged = PaymentRequest(31337, b"\x11" * 20, KEY.public_key.format(), 999_999, _request().payment_hash,
                            2_000_000_000, "a coffee ☕", _request().signature)
    with pytest.raises(BadPaymentRequest, match="not signed by its node"):
        PaymentRequest.decode(forged.encode())


@pytest.mark.parametrize(("field", "value"), [
    ("amount", 0), ("amount", 2**256), ("chain_id", 0), ("contract", b"\x11" * 19), ("node_id", b"\x05" * 33),
    ("payment_hash", b"\x00" * 31), ("expiry", 0), ("description", "x" * 257),
])
def test_fields_are_bounded(field: str, value: object) -> None:
    with pytest.raises(BadPaymentRequest):
        _request(**{field: value})


def test_expiry_and_qr_images() -> None:
    request = _request(expiry=int(time.time()) + 60)
    assert not request.is_expired(time.time()) and request.is_expired(time.time() + 61)
    assert request.qr("png").startswith(b"\x89PNG") and b"<svg" in request.qr("svg")


def test_webhook_verifier_accepts_genuine_and_refuses_forged_stale_and_replayed() -> None:
    body = b'{"seq": 5, "kind": "payment_received"}'
    headers = signed_headers("s3cret", body)
    verifier = WebhookVerifier("s3cret")
    assert verifier.verify(headers, body)["seq"] == 5
    with pytest.raises(WebhookRejected, match="replay"):
        verifier.verify(headers, body)
    with pytest.raises(WebhookRejected, match="signature"):
        WebhookVerifier("other").verify(headers, body)
    old = signed_headers("s3cret", body, now=time.time() - 1000)
    with pytest.raises(WebhookRejected, match="tolerance"):
        WebhookVerifier("s3cret").verify(old, body)
    with pytest.raises(WebhookRejected, match="missing"):
        WebhookVerifier("s3cret").verify({}, body)
    with pytest.raises(WebhookRejected, match="not an event"):
        WebhookVerifier("s3cret").verify(signed_headers("s3cret", b"[1]"), b"[1]")


async def test_wallet_pays_a_request_keeps_its_channel_across_a_restart(tmp_path: Path) -> None:
    anvil = Anvil()
    zygote = Zygote()
    try:
        contract = deploy_hub(anvil)
        node = make_daemon(tmp_path, "node", anvil, contract, zygote)
        node.start()
        directory = tmp_path / "wallet"
        key = create_datadir(directory, PASSWORD, scrypt_n=2)
        connect_rpc(anvil.url).rpc("anvil_setBalance", [key.address, hex(10**20)])
        token, _ = TokenBook(node.datadir).create(Scope.INVOICE, "test")
        import httpx

        request = httpx.post(f"http://127.0.0.1:{node.api}/api/v1/requests", json={"amount": "4000"},
                             headers={"Authorization": f"Bearer {token}"}).json()
        async with Wallet.open(directory, PASSWORD, rpc_url=anvil.url, contract=contract,
                               poll_interval=0.1) as wallet:
            assert wallet.address == key.address
            channel_id = await wallet.open_channel(node.uri, 10**16, challenge_period=30)
            paid = await wallet.pay_request(request["request"])
            assert paid["status"] == "accepted"
            preimage = bytes.fromhex(paid["preimage"][2:])
            assert hashlib.sha256(preimage).hexdigest() == request["payment_hash"][2:]
            with pytest.raises(ChanneldError, match="already paid"):
                await wallet.pay_request(request["request"])
            wallet.add_watchtower(f"02{'44' * 32}@127.0.0.1:9")
        async with Wallet.open(directory, PASSWORD, rpc_url=anvil.url, contract=contract,
                               poll_interval=0.1) as wallet:
            assert wallet.channel(channel_id)["our_balance"] == str(10**16 - 4000)
            await wallet.connect(node.uri)
            again = await wallet.pay(node.node_id, 1000)
            assert again["status"] == "accepted"
            assert [t["uri"] for t in wallet.watchtowers()] == [f"02{'44' * 32}@127.0.0.1:9"]
            await wallet.withdraw(channel_id, 10**15)
            assert wallet.channel(channel_id)["our_withdrawn"] == str(10**15)
        assert node.channel()["partner_balance"] == str(10**16 - 5000 - 10**15)  # paid 5000, withdrew 10**15
        assert node.channel()["partner_withdrawn"] == str(10**15)
    finally:
        zygote.stop()
        anvil.stop()
