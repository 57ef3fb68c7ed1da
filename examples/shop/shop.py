"""A merchant's small web shop, paid through its channeld node.

    python examples/shop/shop.py --node-api http://127.0.0.1:9741 --token-file invoice.token --port 8080

The shop holds an `invoice` token (`channeld token create --scope invoice`): it can create payment
requests and register a webhook, never send money. At start it registers its webhook; a buyer's order
becomes a payment request (string and QR code) from the node; the order is marked paid only when a
webhook call that verifies (signature, fresh timestamp, not seen before) reports the request paid.

Routes: GET / (the catalogue), POST /orders {"item"} -> {"order", "request", "amount", "qr"},
GET /orders/<id> (status), GET /orders/<id>/qr (SVG), POST /webhook (from the node only).
"""

from __future__ import annotations

import argparse
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from channeld.client import WebhookRejected, WebhookVerifier

CATALOGUE = {"coffee": 3 * 10**15, "cake": 5 * 10**15}  # prices in wei


class Shop:
    def __init__(self, node_api: str, token: str, public_url: str) -> None:
        self.node = httpx.Client(base_url=node_api.rstrip("/") + "/api/v1", timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})
        hook = self.node.post("/webhooks", json={"url": public_url + "/webhook"})
        hook.raise_for_status()
        self.verifier = WebhookVerifier(hook.json()["secret"])
        self.orders: dict[str, dict[str, Any]] = {}
        self.by_hash: dict[str, str] = {}
        self.lock = threading.Lock()

    def order(self, item: str) -> dict[str, Any]:
        if item not in CATALOGUE:
            raise KeyError(item)
        response = self.node.post("/requests", json={"amount": str(CATALOGUE[item]),
                                                     "description": f"order: one {item}", "expires_in": 900})
        response.raise_for_status()
        request = response.json()
        order_id = secrets.token_hex(6)
        with self.lock:
            self.orders[order_id] = {"order": order_id, "item": item, "amount": request["amount"],
                                     "request": request["request"], "payment_hash": request["payment_hash"],
                                     "paid": False, "qr": f"/orders/{order_id}/qr"}
            self.by_hash[request["payment_hash"]] = order_id
        return self.orders[order_id]

    def qr(self, order_id: str) -> bytes:
        response = self.node.get(f"/requests/{self.orders[order_id]['payment_hash']}/qr")
        response.raise_for_status()
        return response.content

    def webhook(self, headers: dict[str, str], body: bytes) -> None:
        event = self.verifier.verify(headers, body)  # raises WebhookRejected: forged, stale or replayed
        if event["kind"] == "request_paid":
            with self.lock:
                order_id = self.by_hash.get(event["payment_hash"])
                if order_id is not None and int(event["amount"]) >= int(self.orders[order_id]["amount"]):
                    self.orders[order_id]["paid"] = True


def handler_for(shop: Shop) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = self.path.strip("/").split("/")
            if self.path == "/":
                self._reply(200, {"catalogue": {k: str(v) for k, v in CATALOGUE.items()}})
            elif len(parts) == 2 and parts[0] == "orders" and parts[1] in shop.orders:
                self._reply(200, shop.orders[parts[1]])
            elif len(parts) == 3 and parts[0] == "orders" and parts[1] in shop.orders and parts[2] == "qr":
                self._send(200, shop.qr(parts[1]), "image/svg+xml")
            else:
                self._reply(404, {"error": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, 65536))
            if self.path == "/webhook":
                try:
                    shop.webhook(dict(self.headers), body)
                except (WebhookRejected, ValueError) as exc:
                    self._reply(401, {"error": str(exc)})
                    return
                self._reply(200, {"ok": True})
            elif self.path == "/orders":
                try:
                    self._reply(201, shop.order(str(json.loads(body)["item"])))
                except (ValueError, KeyError, TypeError):
                    self._reply(400, {"error": f"order one of {', '.join(CATALOGUE)}"})
            else:
                self._reply(404, {"error": "not found"})

        def _reply(self, status: int, document: Any) -> None:
            self._send(status, json.dumps(document).encode(), "application/json")

        def _send(self, status: int, payload: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="A small shop paid through channeld payment requests.")
    parser.add_argument("--node-api", required=True, help="the node's control API, http://host:port")
    parser.add_argument("--token-file", type=Path, required=True, help="an invoice-scoped token")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), BaseHTTPRequestHandler)
    shop = Shop(args.node_api, args.token_file.read_text().strip(), f"http://127.0.0.1:{args.port}")
    server.RequestHandlerClass = handler_for(shop)
    print(f"shop on http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
