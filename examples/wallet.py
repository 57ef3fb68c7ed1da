"""A wallet without a daemon: connect to a node, open a channel, pay, get paid, close cooperatively.

    python examples/wallet.py WALLET_DIR --password-file PW --rpc-url URL --contract 0xHub \
        --node NODE_ID@HOST:PORT --node-api http://127.0.0.1:9741 --node-token-file TOKEN

The wallet's key lives (encrypted) in WALLET_DIR, created on first use; its address needs ether for the
deposit and gas. To be paid, the wallet makes a payment request and, standing in for a customer who
pays it, asks the node's API (a `pay`-scoped token) to pay it. Prints one line per step.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import httpx
import trio

from channeld.wallet import Wallet

DEPOSIT = 10**17  # 0.1 ether
PAYMENT = 3 * 10**15
REFUND = 10**15


async def main(args: argparse.Namespace) -> None:
    password = args.password_file.read_text().strip()
    async with Wallet.open(args.directory, password, rpc_url=args.rpc_url, contract=args.contract) as wallet:
        print(f"wallet {wallet.address} ({wallet.node_id[:16]}…)")
        node_id = await wallet.connect(args.node)
        channel_id = await wallet.open_channel(args.node, DEPOSIT)
        print(f"opened channel {channel_id} with {node_id[:16]}…, deposit {DEPOSIT}")
        paid = await wallet.pay(node_id, PAYMENT)
        print(f"paid {PAYMENT}: {paid['status']}")
        request = wallet.create_request(REFUND, "refund")
        token = args.node_token_file.read_text().strip()
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
            answer = await api.post(f"{args.node_api}/api/v1/payments", json={"request": request})
            answer.raise_for_status()
        record = await wallet.wait_payment(request)
        print(f"received {record['amount']} for request {record['payment_hash']}")
        await wallet.close(channel_id)
        print(f"closed cooperatively: {wallet.channel(channel_id)['status']}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--password-file", type=Path, required=True)
    parser.add_argument("--rpc-url", required=True)
    parser.add_argument("--contract", required=True)
    parser.add_argument("--node", required=True, help="the node's URI, NODE_ID@HOST:PORT")
    parser.add_argument("--node-api", required=True, help="the node's control API base URL")
    parser.add_argument("--node-token-file", type=Path, required=True, help="a pay-scoped token for it")
    return parser.parse_args(argv)


if __name__ == "__main__":
    trio.run(main, parse())
