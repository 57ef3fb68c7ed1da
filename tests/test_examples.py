"""Each example in examples/ runs against real daemons on a real anvil and does what it says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from channeld.api._tokens import Scope, TokenBook
from channeld.chain import connect_rpc
from channeld.client import signed_headers
from channeld.keys import create_datadir
from tests.node.helpers import PASSWORD, Zygote, deploy_hub, make_daemon, open_channel, wait_until
from tests.tools import REPO, Anvil, free_port


@pytest.fixture(scope="module")
def chain() -> tuple[Anvil, str]:
    anvil = Anvil()
    yield anvil, deploy_hub(anvil)  # type: ignore[misc]
    anvil.stop()


def test_wallet_example_opens_pays_receives_and_closes(tmp_path: Path, chain: tuple[Anvil, str]) -> None:
    anvil, contract = chain
    zygote = Zygote()
    try:
        node = make_daemon(tmp_path, "node", anvil, contract, zygote)
        node.start()
        wallet_dir = tmp_path / "wallet"
        key = create_datadir(wallet_dir, PASSWORD, scrypt_n=2)
        connect_rpc(anvil.url).rpc("anvil_setBalance", [key.address, hex(10**20)])
        (tmp_path / "pw").write_text(PASSWORD)
        token, _ = TokenBook(node.datadir).create(Scope.PAY, "wallet example")
        (tmp_path / "token").write_text(token)
        run = subprocess.run(
            [sys.executable, str(REPO / "examples" / "wallet.py"), str(wallet_dir), "--password-file",
             str(tmp_path / "pw"), "--rpc-url", anvil.url, "--contract", contract, "--node", node.uri,
             "--node-api", f"http://127.0.0.1:{node.api}", "--node-token-file", str(tmp_path / "token")],
            capture_output=True, text=True, timeout=120, cwd=REPO)
        assert run.returncode == 0, run.stdout + run.stderr + node.log()[-2000:]
        lines = run.stdout.splitlines()
        assert lines[0].startswith(f"wallet {key.address}")
        assert "paid 3000000000000000: accepted" in lines
        assert any(line.startswith("received 1000000000000000 for request 0x") for line in lines)
        assert lines[-1] == "closed cooperatively: settled"
        channel = node.channel()
        assert channel["status"] == "settled"
    finally:
        zygote.stop()


def test_shop_example_marks_an_order_paid_only_from_a_verified_webhook(
        tmp_path: Path, chain: tuple[Anvil, str]) -> None:
    anvil, contract = chain
    zygote = Zygote()
    shop = None
    try:
        merchant = make_daemon(tmp_path, "merchant", anvil, contract, zygote)
        buyer = make_daemon(tmp_path, "buyer", anvil, contract, zygote)
        merchant.start()
        buyer.start()
        open_channel(buyer, merchant, 10**17)
        token, _ = TokenBook(merchant.datadir).create(Scope.INVOICE, "shop")
        (tmp_path / "invoice.token").write_text(token)
        port = free_port()
        shop = subprocess.Popen(
            [sys.executable, str(REPO / "examples" / "shop" / "shop.py"), "--node-api",
             f"http://127.0.0.1:{merchant.api}", "--token-file", str(tmp_path / "invoice.token"),
             "--port", str(port)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert shop.stdout is not None and shop.stdout.readline().startswith("shop on")
        url = f"http://127.0.0.1:{port}"
        order = httpx.post(url + "/orders", json={"item": "coffee"}).json()
        assert order["paid"] is False and order["request"].startswith("chpr1")
        assert b"<svg" in httpx.get(url + order["qr"]).content
        forged_body = b'{"seq": 999999, "kind": "request_paid", "payment_hash": "%s", "amount": "%s"}' % (
            order["payment_hash"].encode(), order["amount"].encode())
        forged = httpx.post(url + "/webhook", content=forged_body,
                            headers=signed_headers("guess", forged_body))
        assert forged.status_code == 401
        assert httpx.get(url + f"/orders/{order['order']}").json()["paid"] is False
        paid = buyer.call("POST", "/payments", {"request": order["request"]})
        assert paid["status"] == "accepted" and paid["preimage"].startswith("0x")
        wait_until(lambda: httpx.get(url + f"/orders/{order['order']}").json()["paid"], what="order paid")
        assert httpx.post(url + "/orders", json={"item": "caviar"}).status_code == 400
    finally:
        if shop is not None:
            shop.terminate()
            shop.wait(timeout=10)
        zygote.stop()


def test_operator_example_config_loads_and_names_its_commands() -> None:
    from channeld.config import load_config

    folder = REPO / "examples" / "operator"
    config = load_config(folder / "node", {})
    assert config.chain.confirmations >= 3 and config.node.api.host == "127.0.0.1"
    text = (folder / "README.md").read_text()
    for command in ("channeld --datadir", "channeld watchtower", "watchtower add", "--password-file"):
        assert command in text
