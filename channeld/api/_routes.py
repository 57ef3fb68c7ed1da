"""The REST routes under /api/v1: node, peers, channels, operations, payments, requests, towers, audit."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Annotated, Any, Literal

import trio
from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import Field

from channeld.api._app import Guard, NotFound
from channeld.api._models import (
    IDEMPOTENCY_KEY,
    U63,
    Address,
    Amount,
    AmountBody,
    BenchBody,
    BenchRequestsBody,
    Body,
    ChainRef,
    ChannelStatusName,
    CloseBody,
    ConnectBody,
    DecodeBody,
    NodeId,
    OpenBody,
    PathBody,
    PayBody,
    RequestBody,
    TowerBody,
    WithdrawBody,
    channel_id_param,
    field_error,
    hash_param,
)
from channeld.api._tokens import Scope, TokenRecord
from channeld.client._payreq import PaymentRequest
from channeld.node._bench import bench_pay, bench_pay_requests
from channeld.node._onchain import OperationStatus
from channeld.store import AuditEntry
from channeld.transport import BadPeerUri

NEXT_BEFORE_HEADER = "Next-Before"  # GET /payments: the `before` cursor of the next older page
ENTRIES_OF_ONE_PAYMENT = 1_000  # a payment has an entry per channel it crossed here: a few

if TYPE_CHECKING:
    from channeld.node import Node

IDEMPOTENCY_TABLE = "idempotency"


def _accepted(status: OperationStatus | None, waiting: str) -> JSONResponse:
    if status is None:
        return JSONResponse({"status": waiting, "operation_id": None, "tx_hash": None}, status_code=202)
    return JSONResponse(status.as_json(), status_code=202)


def _uri_error(exc: BadPeerUri) -> HTTPException:
    return field_error("body", "uri", str(exc))


def register_routes(api: FastAPI, node: Node, guard: Guard, idempotency: Idempotency) -> None:
    _node_routes(api, node, guard)
    _channel_routes(api, node, guard)
    _payment_routes(api, node, guard, idempotency)
    _request_routes(api, node, guard)
    _admin_routes(api, node, guard)
    _batch_routes(api, node, guard)


def _node_routes(api: FastAPI, node: Node, guard: Guard) -> None:
    read = [Depends(guard.need(Scope.READ))]

    @api.get("/info", dependencies=read)
    async def info() -> dict[str, Any]:
        return node.info()

    @api.get("/chains", dependencies=read)
    async def chains() -> list[dict[str, Any]]:
        return [room.as_json() for room in node.rooms]

    @api.get("/health", dependencies=read)
    async def health() -> dict[str, Any]:
        lag = node.watcher.head - node.watcher.follower.cursor.position.number
        failed = node.channels.failure is not None
        stalled = [room.name for room in node.rooms if room.status() == "stalled"]
        status = "failing" if failed else ("chain_stalled" if stalled else ("lagging" if lag > 10 else "ok"))
        return {"status": status, "chain_lag_blocks": lag, "stalled_chains": stalled,
                "pending_transactions": node.worker.pending_count(),
                "peers": len(node.peers.manager.sessions),
                "store_failed": failed, "last_event": node.bus.last_seq}

    @api.get("/peers", dependencies=read)
    async def peers() -> list[dict[str, Any]]:
        known = set(node.peers.uris) | set(node.peers.manager.sessions)
        return [{"node_id": p.hex(), "uri": node.peers.uris.get(p), "connected": node.peers.is_connected(p)}
                for p in sorted(known)]

    @api.post("/peers", dependencies=[Depends(guard.need(Scope.ADMIN))])
    async def connect(body: ConnectBody) -> dict[str, Any]:
        try:
            node_id = await node.connect(body.uri)
        except BadPeerUri as exc:
            raise _uri_error(exc) from None
        return {"node_id": node_id.hex(), "connected": True}

    @api.get("/operations/{operation_id}", dependencies=read)
    async def operation(operation_id: int = Path(ge=0, lt=U63)) -> dict[str, Any]:
        return node.operation(operation_id).as_json()


def _channel_routes(api: FastAPI, node: Node, guard: Guard) -> None:
    read = [Depends(guard.need(Scope.READ))]
    admin = [Depends(guard.need(Scope.ADMIN))]

    @api.get("/channels", dependencies=read)
    async def channels(status: ChannelStatusName | None = None, peer: NodeId | None = None,
                       token: Address | None = None) -> list[dict[str, Any]]:
        return [c for c in node.list_channels()
                if (status is None or c["status"] == status) and (peer is None or c["peer"] == peer)
                and (token is None or c["token"] == token)]

    @api.get("/channels/{channel_id}", dependencies=read)
    async def channel(channel_id: str) -> dict[str, Any]:
        return node.channel(channel_id_param(channel_id))

    @api.post("/channels", dependencies=admin, status_code=202)
    async def open_channel(body: OpenBody) -> JSONResponse:
        try:
            status = await node.open_channel(body.uri, int(body.deposit), body.token, body.challenge_period,
                                             body.chain)
        except BadPeerUri as exc:
            raise _uri_error(exc) from None
        return _accepted(status, "queued")

    @api.post("/channels/{channel_id}/deposit", dependencies=admin, status_code=202)
    async def deposit(channel_id: str, body: AmountBody) -> JSONResponse:
        return _accepted(await node.deposit(channel_id_param(channel_id), int(body.amount)), "queued")

    @api.post("/channels/{channel_id}/withdraw", dependencies=admin, status_code=202)
    async def withdraw(channel_id: str, body: WithdrawBody) -> JSONResponse:
        status = await node.withdraw(channel_id_param(channel_id), int(body.amount), body.to)
        return _accepted(status, "awaiting_partner")

    @api.post("/channels/{channel_id}/close", dependencies=admin, status_code=202)
    async def close(channel_id: str, body: CloseBody) -> JSONResponse:
        return _accepted(await node.close(channel_id_param(channel_id), body.force), "awaiting_partner")

    @api.post("/channels/{channel_id}/settle", dependencies=admin, status_code=202)
    async def settle(channel_id: str) -> JSONResponse:
        return _accepted(await node.settle(channel_id_param(channel_id)), "queued")

    @api.post("/bench/pay", dependencies=admin)
    async def bench(body: BenchBody) -> dict[str, Any]:
        """The node pays over one channel itself: the benchmarks' load path (docs/performance.md)."""
        result = await bench_pay(node.channels, bytes.fromhex(body.channel[2:]), body.count, int(body.amount),
                                 body.window)
        return result.as_json()

    @api.post("/bench/pay-requests", dependencies=admin)
    async def bench_requests(body: BenchRequestsBody) -> dict[str, Any]:
        """The node pays a list of payment requests itself: the routed benchmarks' load path."""
        max_fee = None if body.max_fee is None else int(body.max_fee)
        return (await bench_pay_requests(node, body.requests, body.window, max_fee)).as_json()


class Idempotency:
    """Payments by idempotency key: a retried request (even a concurrent one) returns the first result.

    The key is journaled (synced) before the payment is made, so even across a crash a key is never
    paid twice; a key whose payment was cut short by a crash answers `unknown` (look it up in /payments).
    Keys are scoped by the calling token's id: two clients that happen to pick the same key neither see
    each other's payments nor block each other.
    """

    def __init__(self, node: Node) -> None:
        self.node = node
        self._running: dict[str, trio.Event] = {}

    async def run(self, token_id: str, given: str | None, body: PayBody) -> dict[str, Any]:
        if given is None:
            return await _pay(self.node, body)
        if not IDEMPOTENCY_KEY.fullmatch(given):
            raise field_error("header", "idempotency-key", "must be 1-64 characters of A-Z a-z 0-9 _ . : -")
        key = f"{token_id}/{given}"  # token ids hold no "/", so no two tokens' keys can collide
        fingerprint = hashlib.sha256(json.dumps(body.model_dump(), sort_keys=True).encode()).hexdigest()
        while key in self._running:
            await self._running[key].wait()
        stored = self.node.journal.get(IDEMPOTENCY_TABLE, key)
        if stored is not None:
            if stored["fingerprint"] != fingerprint:
                raise HTTPException(409, detail="this idempotency key was used for a different payment")
            return stored["result"] or {"status": "unknown", "idempotency_key": given}
        self._running[key] = done = trio.Event()  # before the first await: a retry waits for this one
        try:
            return await self._pay_once(key, fingerprint, body)
        finally:
            del self._running[key]
            done.set()

    async def _pay_once(self, key: str, fingerprint: str, body: PayBody) -> dict[str, Any]:
        # durable writes through the journal's writer thread: a synced put on the loop would stall every
        # other request and payment of the node for an fsync (grouped with other writes there)
        journal = self.node.journal
        await journal.put_durable(IDEMPOTENCY_TABLE, key, {"fingerprint": fingerprint, "result": None})
        try:
            result = await _pay(self.node, body)
        except Exception:
            # refused before paying: the key may be reused (reads miss it at once). A cancelled request
            # leaves the key answering `unknown`, as a crash does: it may have paid.
            journal.delete_soon(IDEMPOTENCY_TABLE, key)
            raise
        await journal.put_durable(IDEMPOTENCY_TABLE, key, {"fingerprint": fingerprint, "result": result})
        return result


async def _pay(node: Node, body: PayBody) -> dict[str, Any]:
    max_fee = None if body.max_fee is None else int(body.max_fee)
    if body.request is not None:
        max_spend = None if body.max_spend is None else int(body.max_spend)
        return await node.requests.pay(body.request, max_fee, max_spend, body.chain)
    assert body.node_id is not None and body.amount is not None  # the model checks one form is given
    return await node.pay(bytes.fromhex(body.node_id), int(body.amount), max_fee=max_fee, chain=body.chain)


def _payment_routes(api: FastAPI, node: Node, guard: Guard, idempotency: Idempotency) -> None:
    read = [Depends(guard.need(Scope.READ))]

    @api.post("/payments")
    async def pay(body: PayBody, idempotency_key: str | None = Header(default=None, max_length=64),
                  caller: TokenRecord = Depends(guard.need(Scope.PAY))) -> dict[str, Any]:  # noqa: B008
        return await idempotency.run(caller.id, idempotency_key, body)

    @api.get("/payments", dependencies=read)
    async def payments(response: Response, limit: int = Query(default=100, ge=1, le=10_000),
                       before: int | None = Query(default=None, ge=1, lt=U63),
                       after: int | None = Query(default=None, ge=0, lt=U63)) -> list[dict[str, Any]]:
        if after is not None:  # following new payments: the oldest `limit` past the last seq seen
            return await node.list_payments(limit, before=before, after=after)
        found = await node.list_payments(limit + 1, before=before)  # one more says whether older exist
        if len(found) > limit:
            found = found[1:]
            response.headers[NEXT_BEFORE_HEADER] = str(found[0]["seq"])
        return found

    @api.get("/payments/{payment_id}", dependencies=read)
    async def payment(payment_id: int = Path(ge=0, lt=U63)) -> list[dict[str, Any]]:
        found = await node.list_payments(ENTRIES_OF_ONE_PAYMENT, payment_id=payment_id)
        if not found:
            raise NotFound(f"no payment {payment_id}")
        return found


def _request_routes(api: FastAPI, node: Node, guard: Guard) -> None:
    read = [Depends(guard.need(Scope.READ))]

    @api.post("/requests", dependencies=[Depends(guard.need(Scope.INVOICE))], status_code=201)
    async def create(body: RequestBody) -> dict[str, Any]:
        token = bytes(20) if body.token is None else bytes.fromhex(body.token[2:])
        return await node.requests.issue(int(body.amount), body.description, body.expires_in, body.chain,
                                         token)

    @api.get("/requests/{payment_hash}", dependencies=read)
    async def get(payment_hash: str) -> dict[str, Any]:
        return node.requests.get(hash_param(payment_hash))

    @api.get("/requests/{payment_hash}/qr", dependencies=read, response_class=Response,
             responses={200: {"content": {"image/svg+xml": {}, "image/png": {}}}})
    async def qr(payment_hash: str, format: str = Query(default="svg", pattern="^(svg|png)$")) -> Response:
        record = node.requests.get(hash_param(payment_hash))
        image = PaymentRequest.decode(record["request"]).qr(format)
        return Response(image, media_type="image/svg+xml" if format == "svg" else "image/png")

    @api.post("/requests/decode", dependencies=read)
    async def decode(body: DecodeBody) -> dict[str, Any]:
        request = PaymentRequest.decode(body.request)
        return {**request.as_json(), "expired": request.is_expired(time.time())}


def _admin_routes(api: FastAPI, node: Node, guard: Guard) -> None:
    admin = [Depends(guard.need(Scope.ADMIN))]

    @api.get("/watchtowers", dependencies=[Depends(guard.need(Scope.READ))])
    async def towers() -> list[dict[str, Any]]:
        return node.towers.list()

    @api.post("/watchtowers", dependencies=admin, status_code=201)
    async def add_tower(body: TowerBody) -> dict[str, Any]:
        try:
            added = node.towers.add(body.uri, body.chain)
        except BadPeerUri as exc:
            raise _uri_error(exc) from None
        node.bus.publish("watchtower_added", None, uri=added["uri"])
        return added

    @api.post("/backup", dependencies=admin)
    async def backup(body: PathBody) -> dict[str, Any]:
        return {"path": body.path, "records": await node.backup(FilePath(body.path))}

    @api.get("/audit/verify", dependencies=admin)
    async def audit_verify() -> dict[str, Any]:
        return await trio.to_thread.run_sync(node.audit_verify)  # reads the whole log: not on the loop

    @api.post("/audit/export", dependencies=admin)
    async def audit_export(body: PathBody) -> dict[str, Any]:
        return {"path": body.path, "entries": await node.audit_export(FilePath(body.path))}

    @api.get("/audit/export", dependencies=admin, response_class=StreamingResponse,
             responses={200: {"content": {"application/x-ndjson": {}}}})
    async def audit_download() -> StreamingResponse:
        return StreamingResponse(_off_the_loop(_export_chunks(node.store.iter_audit())),
                                 media_type="application/x-ndjson")


EXPORT_CHUNK = 64 << 10  # bytes of JSON lines read per thread hop


def _export_chunks(entries: Iterator[AuditEntry]) -> Iterator[bytes]:
    """The export's lines, joined into chunks of about `EXPORT_CHUNK` bytes (blocking file reads)."""
    chunk: list[bytes] = []
    size = 0
    for entry in entries:
        line = json.dumps(_audit_json(entry)).encode() + b"\n"
        chunk.append(line)
        size += len(line)
        if size >= EXPORT_CHUNK:
            yield b"".join(chunk)
            chunk, size = [], 0
    if chunk:
        yield b"".join(chunk)


async def _off_the_loop(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Each chunk produced in a worker thread, so reading the log never blocks the trio loop."""
    while True:
        chunk = await trio.to_thread.run_sync(next, chunks, None)
        if chunk is None:
            return
        yield chunk


def _audit_json(entry: Any) -> dict[str, Any]:
    r = entry.record
    return {"seq": entry.seq, "at_ms": entry.timestamp_ms, "kind": r.kind,
            "channel_id": "0x" + r.channel_id.hex(),
            "who": "0x" + r.who.hex(), "amount": str(r.amount), "proof_hash": "0x" + r.proof_hash.hex(),
            "payment_id": "0x" + r.payment_id.hex()}


class BatchWithdrawBody(Body):
    min_amount: Amount = "0"
    to: Address | None = None
    scheme: Literal["auto", "ecdsa", "bls"] = "auto"
    timeout: float = Field(default=10.0, gt=0, le=120)
    chain: ChainRef | None = None


class BatchCloseBody(Body):
    to: Address | None = None
    scheme: Literal["auto", "ecdsa", "bls"] = "auto"
    timeout: float = Field(default=10.0, gt=0, le=120)
    chain: ChainRef | None = None


class BatchOpenBody(Body):
    uris: list[Annotated[str, Field(max_length=300)]] = Field(min_length=1, max_length=400)
    deposit: Amount
    token: Address | None = None
    challenge_period: int = Field(default=3600, ge=1, lt=2**64)
    chain: ChainRef | None = None


class BatchDepositBody(Body):
    amount: Amount
    token: Address | None = None
    chain: ChainRef | None = None


def _batch_routes(api: FastAPI, node: Node, guard: Guard) -> None:
    """Batch settlement (docs/batch.md): answered once each batch's transaction is mined or refused."""
    admin = [Depends(guard.need(Scope.ADMIN))]

    @api.post("/batch/withdraw", dependencies=admin)
    async def batch_withdraw(body: BatchWithdrawBody) -> dict[str, Any]:
        batches = await node.batch_withdraw(int(body.min_amount), body.to, body.scheme, body.timeout,
                                            body.chain)
        return {"batches": batches}

    @api.post("/batch/close", dependencies=admin)
    async def batch_close(body: BatchCloseBody) -> dict[str, Any]:
        return {"batches": await node.batch_close(body.scheme, body.to, body.timeout, body.chain)}

    @api.post("/batch/open", dependencies=admin)
    async def batch_open(body: BatchOpenBody) -> dict[str, Any]:
        return await node.batch_open(body.uris, int(body.deposit), body.token, body.challenge_period,
                                     body.chain)

    @api.post("/batch/deposit", dependencies=admin)
    async def batch_deposit(body: BatchDepositBody) -> dict[str, Any]:
        return await node.batch_deposit(int(body.amount), body.token, body.chain)
