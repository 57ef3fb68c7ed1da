"""Payment requests on both sides: the requests this node issued, and the ones it paid.

Recipient: `create` makes a fresh preimage, signs a request for its sha256 and journals both. When a
direct payment arrives whose metadata names an open request and pays at least its amount, the request
is marked paid (event `request_paid`) and the preimage goes back to the payer in a `SecretReveal`.
That message may be lost with the connection, so it is sent again whenever the payer reconnects, for
each request it paid that has not yet expired (a payer ignores a preimage it already holds).

Payer: `pay` refuses a request it already paid or is paying (journaled before any money moves), pays
the request's node with the hash in the payment's metadata, and waits a moment for the preimage, which
is checked against the hash before it is kept as the receipt.

Every durable journal write here goes through the journal's writer thread (group commit), never an
fsync on the trio loop, and what depends on a record waits until it has landed: an issued request is
returned once durable, a paid request's secret is revealed once its paid mark is durable, a payment
starts once its "paying" mark is durable, and a receipt is reported once the preimage is.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import time
from typing import TYPE_CHECKING, Any

import trio

from channeld.client._payreq import PaymentRequest, hash_from_metadata, payment_metadata
from channeld.errors import LocalFault
from channeld.node._events import NodeEvent
from channeld.node._ops import OperationRefused
from channeld.wire import SecretReveal

if TYPE_CHECKING:
    from channeld.node._node import Node

ISSUED = "requests"
PAID = "paid"
MAX_EXPIRY = 365 * 24 * 3600
RECEIPT_WAIT = 10.0


class UnknownRequest(LocalFault):
    """No payment request with this hash was issued by this node."""


class PaymentRequestBook:
    def __init__(self, node: Node) -> None:
        self.node = node
        self._receipts: dict[bytes, trio.Event] = {}

    # --- recipient -----------------------------------------------------------------------------------

    def create(self, amount: int, description: str = "", expires_in: int = 3600) -> dict[str, Any]:
        """Issue a request, blocking until it is on disk (for callers outside trio; `issue` does not
        stall the loop)."""
        key, record = self._new_request(amount, description, expires_in)
        self.node.journal.put(ISSUED, key, record, sync=True)
        return _public(record)

    async def issue(self, amount: int, description: str = "", expires_in: int = 3600) -> dict[str, Any]:
        """Issue a request: signed, and durable in the journal before it is returned."""
        key, record = self._new_request(amount, description, expires_in)
        await self.node.journal.put_durable(ISSUED, key, record)
        return _public(record)

    def _new_request(self, amount: int, description: str, expires_in: int) -> tuple[str, dict[str, Any]]:
        if not 0 < expires_in <= MAX_EXPIRY:
            raise OperationRefused(f"expires_in must be 1-{MAX_EXPIRY} seconds")
        node = self.node
        preimage = secrets.token_bytes(32)
        request = PaymentRequest(node.chain_id, node.ns.contract, node.node_id, amount,
                                 hashlib.sha256(preimage).digest(), int(time.time()) + expires_in,
                                 description).signed(node.key.private_key)
        record = {**request.as_json(), "status": "open", "preimage": preimage.hex(), "paid_by": None}
        return request.payment_hash.hex(), record

    def get(self, payment_hash: bytes) -> dict[str, Any]:
        record = self.node.journal.get(ISSUED, payment_hash.hex())
        if record is None:
            raise UnknownRequest(f"no payment request 0x{payment_hash.hex()}")
        return _public(record)

    def on_event(self, event: NodeEvent) -> None:
        """Bus sink: settle an issued request when the payment that pays it arrives."""
        if event.kind == "peer_connected":
            self._reveal_again(str(event.data["node_id"]))
            return
        if event.kind != "payment_received" or event.channel_id is None:
            return
        payment_hash = hash_from_metadata(bytes.fromhex(str(event.data.get("metadata", ""))))
        if payment_hash is None:
            return
        record = self.node.journal.get(ISSUED, payment_hash.hex())
        if record is None or int(event.data["amount"]) < int(record["amount"]):
            return
        entry = self.node.channels.channels.get(event.channel_id)
        if entry is None:
            return
        if record["status"] == "open" and time.time() < record["expiry"]:
            record = {**record, "status": "paid", "paid_at": time.time(), "paid_by": entry.peer_id.hex(),
                      "payment_id": event.data["payment_id"]}
            # the secret is the payer's receipt: it leaves only once the paid mark is on disk
            self.node.journal.put_soon(ISSUED, payment_hash.hex(), record, functools.partial(
                self._paid, event.channel_id, entry.peer_id, payment_hash, record, str(event.data["amount"])))
        elif record["status"] == "paid" and record["paid_by"] == entry.peer_id.hex():
            self.node.peers.send(entry.peer_id, SecretReveal(bytes.fromhex(record["preimage"])))

    def _paid(self, channel_id: bytes, peer_id: bytes, payment_hash: bytes, record: dict[str, Any],
              amount: str) -> None:
        """An issued request's paid mark is durable: announce it and reveal its secret to the payer."""
        self.node.bus.publish("request_paid", channel_id, payment_hash="0x" + payment_hash.hex(),
                              amount=amount, payment_id=record["payment_id"])
        self.node.peers.send(peer_id, SecretReveal(bytes.fromhex(record["preimage"])))

    def _reveal_again(self, peer_hex: str) -> None:
        now = time.time()
        for _, record in self.node.journal.items(ISSUED):
            if record["status"] == "paid" and record["paid_by"] == peer_hex and now < record["expiry"]:
                self.node.peers.send(bytes.fromhex(peer_hex), SecretReveal(bytes.fromhex(record["preimage"])))

    # --- payer ---------------------------------------------------------------------------------------

    def check_payable(self, text: str) -> PaymentRequest:
        node = self.node
        request = PaymentRequest.decode(text)
        if (request.chain_id, request.contract) != (node.chain_id, node.ns.contract):
            raise OperationRefused("the request is for another chain or contract")
        if request.node_id == node.node_id:
            raise OperationRefused("the request is our own")
        if request.is_expired(time.time()):
            raise OperationRefused("the request has expired")
        if node.journal.get(PAID, request.payment_hash.hex()) is not None:
            raise OperationRefused(f"request 0x{request.payment_hash.hex()} was already paid "
                                   "(or is being paid)")
        return request

    async def pay(self, text: str, max_fee: int | None = None) -> dict[str, Any]:
        request = self.check_payable(text)
        key = request.payment_hash.hex()
        journal = self.node.journal
        waiter = self._receipts.setdefault(request.payment_hash, trio.Event())
        try:
            # `check_payable` sees the mark at once; no money moves before it is durable
            await journal.put_durable(PAID, key, {"status": "paying", "request": text})
            result = await self.node.pay(request.node_id, request.amount,
                                         metadata=payment_metadata(request.payment_hash),
                                         max_fee=max_fee)
        except BaseException:
            journal.delete_soon(PAID, key)
            raise
        if result["status"] == "refused":
            journal.delete_soon(PAID, key)
            return result
        with trio.move_on_after(RECEIPT_WAIT):
            await waiter.wait()
        self._receipts.pop(request.payment_hash, None)
        record = journal.get(PAID, key) or {}
        preimage = record.get("preimage")
        # the durable "paying" mark (and the preimage, once it came) already bar paying again: the final
        # status needs no fsync of its own before the answer
        status = "paid" if result["status"] == "accepted" else "pending"
        journal.put_soon(PAID, key, {**record, "status": status, "payment_id": result["payment_id"]})
        receipt = None if preimage is None else "0x" + preimage
        return {**result, "payment_hash": "0x" + key, "preimage": receipt}

    def on_secret(self, peer_id: bytes, secret: bytes) -> None:
        """A preimage from a peer: kept only if it opens a request we are paying or paid."""
        payment_hash = hashlib.sha256(secret).digest()
        record = self.node.journal.get(PAID, payment_hash.hex())
        if record is None or record.get("preimage"):
            return
        self.node.journal.put_soon(PAID, payment_hash.hex(), {**record, "preimage": secret.hex()},
                                   functools.partial(self._receipt_durable, payment_hash, secret))

    def _receipt_durable(self, payment_hash: bytes, secret: bytes) -> None:
        self.node.bus.publish("receipt", None, payment_hash="0x" + payment_hash.hex(),
                              preimage="0x" + secret.hex())
        waiter = self._receipts.get(payment_hash)
        if waiter is not None:
            waiter.set()


def _public(record: dict[str, Any]) -> dict[str, Any]:
    """A request as the API shows it: never the preimage."""
    return {k: v for k, v in record.items() if k != "preimage"}
