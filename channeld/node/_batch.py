"""Batch settlement in the node (docs/batch.md): the hub's batch withdraw and batch cooperative close over
all its eligible channels, and every node's consent when a hub asks it.

Hub: ask every eligible channel's partner at once (`BatchConsentRequest`), wait for answers up to a
timeout (a partner that does not answer is left out, never waited for), record each verified consent in
the channel's state (so the hub's own capacity counts it), build the one transaction for those who
agreed, with the scheme `choose_scheme` picks for that N, and hand it to the transaction worker through
the outbox, written in the same round as the consents it relies on. A BLS batch needs every signer's key
registered on chain and a tree over exactly the signers: when a partner drops out the hub asks the rest
again over the smaller tree (same terms, so their reservations stand), then registers the signer list
once (`registerBlsSigners`) and aggregates the signatures in `BlsWorker` processes.

Partner: the pure rules are `protocol.handle_batch_request`; the consent goes out once the reservation
is durable. A BLS consent is signed in a worker process, never on the trio loop, and the first one
registers the node's BLS key on chain (`registerBlsKey`, from its own address, with its proof of
possession). The BLS key is derived from the node key: `KeyGen(sha256("channeld/bls-key/v1" || node
secret))`, so a restored node key restores its BLS key too.

Every chain the node serves batches on its own: a batch groups the eligible channels of one chain and
one token, its terms name that chain and contract, its chain reads, BLS key registrations and
transaction go to that chain's room, and a partner's consent registers its key on the channel's chain.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

import trio
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from channeld.batch import (
    BatchEntry,
    BatchKind,
    BatchTerms,
    BlsSecretKey,
    BlsWorker,
    Scheme,
    aggregate_public_keys,
    choose_scheme,
    encode_batch_bls,
    encode_batch_cooperative_close,
    encode_batch_withdraw,
    encode_register_bls_key,
    encode_register_bls_signers,
    g1_to_eip2537,
    g2_to_eip2537,
    leaf,
    merkle_path,
    merkle_root,
    signers_id,
)
from channeld.chain import TxRequest
from channeld.errors import ChanneldError, LocalFault, PeerFault
from channeld.node._batch_funding import approve_operation, funding_transaction, is_funding
from channeld.node._channels import operation_of
from channeld.node._records import Operation
from channeld.protocol import (
    ActionBatchConsented,
    ChannelStatus,
    ContractSendCooperativeSettle,
    batch_consent_of,
    batch_message_of,
    batch_request,
    refusal_code,
)
from channeld.wire import (
    BATCH_CLOSE,
    BATCH_WITHDRAW,
    NO_BRANCH,
    SCHEME_BLS,
    SCHEME_ECDSA,
    BatchConsent,
    BatchConsentRequest,
    BatchRefusal,
    MerkleBranch,
    Message,
)

if TYPE_CHECKING:
    from channeld.node._node import Node
    from channeld.node._onchain import OperationStatus, TransactionWorker
    from channeld.node._rooms import ChainRoom
    from channeld.store import Namespace

log = logging.getLogger("channeld.node")
T = TypeVar("T")

BATCH_OPERATIONS = frozenset({"batch", "register_bls_key", "register_bls_signers"})
BLS_KEY_DOMAIN = b"channeld/bls-key/v1"
CONSENT_TIMEOUT = 10.0
BATCH_WINDOW = 3600  # seconds a consent (and so the batch transaction) stays valid
MINED_TIMEOUT = 120.0
BLS_ROUNDS = 3  # asks over ever smaller trees before a BLS batch gives up on partners who drop out
NO_EXPIRY = 2**64 - 1
UNKNOWN_CHANNEL = 18
REFUSED = 16


class BatchFailed(LocalFault):
    """The batch could not be built or its transaction was not mined (nothing was paid)."""


def derive_bls_key(node_secret: bytes) -> BlsSecretKey:
    """The node's BLS key, a function of its node key alone (so a key backup covers it)."""
    return BlsSecretKey.from_seed(hashlib.sha256(BLS_KEY_DOMAIN + node_secret).digest())


def batch_transaction(worker: TransactionWorker, op: Operation) -> TxRequest | None:
    """The transaction of a batch outbox row (None: its consents expired, nothing to send)."""
    if is_funding(op):
        return funding_transaction(worker, op)
    if op.kind == "batch":
        calldata, expiry = op.args
        if int(expiry) <= worker.chain_time():
            return None
        return TxRequest(worker.contract, bytes(calldata))
    if op.kind == "register_bls_key":
        public_key, proof = op.args
        return TxRequest(worker.contract, encode_register_bls_key(bytes(public_key), bytes(proof)))
    packed_signers, keys = (a for a in op.args if isinstance(a, bytes))
    signers = [to_checksum_address(packed_signers[i:i + 20]) for i in range(0, len(packed_signers), 20)]
    key_list = [keys[i:i + 128] for i in range(0, len(keys), 128)]
    return TxRequest(worker.contract, encode_register_bls_signers(signers, key_list))


@dataclass(slots=True)
class _Gathering:
    """One round of asking: the requests sent, and the answers as they arrive."""

    requests: dict[bytes, BatchConsentRequest]
    consents: dict[bytes, BatchConsent] = field(default_factory=dict)
    left_out: dict[bytes, str] = field(default_factory=dict)
    done: trio.Event = field(default_factory=trio.Event)

    def answer(self, cid: bytes, consent: BatchConsent | None, reason: str = "") -> None:
        if cid not in self.requests or cid in self.consents or cid in self.left_out:
            return
        if consent is None:
            self.left_out[cid] = reason
        else:
            self.consents[cid] = consent
        if len(self.consents) + len(self.left_out) == len(self.requests):
            self.done.set()


@dataclass(slots=True)
class _Stopwatch:
    """Where a batch's wall time went (the summary's `seconds`): asking and answers, waiting for keys,
    aggregating, registering the signer list, mining; laps of the same name add up (BLS rounds)."""

    laps: dict[str, float] = field(default_factory=dict)
    last: float = field(default_factory=time.monotonic)

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.laps[name] = round(self.laps.get(name, 0.0) + now - self.last, 4)
        self.last = now


@dataclass(frozen=True, slots=True)
class _Plan:
    kind: int
    room: ChainRoom  # the chain every channel of the batch is on, and its transaction goes to
    token: bytes
    receiver: bytes
    expiry: int


class BatchService:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.bls_key = derive_bls_key(node.key.private_key.secret)
        self._bls_public: bytes | None = None
        self._worker: BlsWorker | None = None
        self._gatherings: dict[bytes, _Gathering] = {}
        self._lock = trio.Lock()
        self._key_registered: set[int] = set()  # chains our BLS key is (being) registered on
        # partners' key hashes seen registered, by (chain id, address): a key is set once (no rotation),
        # so a later batch need not read it again
        self._registered_keys: dict[tuple[int, str], bytes] = {}
        self._nursery: trio.Nursery | None = None

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            if self._worker is not None:
                self._worker.close()

    def bls_worker(self) -> BlsWorker:
        if self._worker is None:
            self._worker = BlsWorker(workers=2)
        return self._worker

    async def _off_loop(self, future: Future[T]) -> T:
        return await trio.to_thread.run_sync(future.result)

    async def bls_public_key(self) -> bytes:
        if self._bls_public is None:
            self._bls_public = await trio.to_thread.run_sync(self.bls_key.public_key)
        return self._bls_public

    # --- messages from peers -------------------------------------------------------------------------

    def on_message(self, peer_id: bytes, message: Message) -> None:
        if isinstance(message, BatchConsentRequest):
            assert self._nursery is not None
            self._nursery.start_soon(self._consent, peer_id, message)
        elif isinstance(message, BatchConsent | BatchRefusal):
            self._collect(peer_id, message)

    def _collect(self, peer_id: bytes, message: BatchConsent | BatchRefusal) -> None:
        gathering = self._gatherings.get(message.batch_id)
        request = None if gathering is None else gathering.requests.get(message.channel_id)
        entry = self.node.channels.channels.get(message.channel_id)
        if gathering is None or request is None or entry is None or entry.peer_id != peer_id:
            return  # an answer to a round that is over, or not from the channel's partner
        if isinstance(message, BatchRefusal):
            gathering.answer(message.channel_id, None, f"refused ({message.code}): {message.reason}")
            return
        if (request.scheme == SCHEME_BLS) != bool(message.bls_signature):
            gathering.answer(message.channel_id, None, "answered without the scheme's signature")
            return
        try:
            self.node.channels.apply(message.channel_id, ActionBatchConsented(request, message))
        except ChanneldError as exc:
            gathering.answer(message.channel_id, None, f"invalid consent: {exc}")
            return
        gathering.answer(message.channel_id, message)

    # --- the partner ---------------------------------------------------------------------------------

    async def _consent(self, peer_id: bytes, msg: BatchConsentRequest) -> None:
        node = self.node
        entry = node.channels.channels.get(msg.channel_id)
        if entry is None or entry.peer_id != peer_id:
            node.peers.send(peer_id, BatchRefusal(msg.channel_id, msg.batch_id, UNKNOWN_CHANNEL,
                                                  "unknown channel"))
            return
        try:
            await node.channels.handle(msg.channel_id, msg)
            consent = batch_consent_of(entry.state, msg)
            if msg.scheme == SCHEME_BLS:
                room = node.room_of(entry.ns)
                consent = await self._bls_consent(consent, batch_message_of(entry.state, msg), room)
        except (ChanneldError, BrokenProcessPool) as exc:
            # ours (a chain read failed, the BLS workers died): refused with the generic code, node intact
            code = refusal_code(exc) if isinstance(exc, PeerFault) else REFUSED
            log.info("refused batch consent for 0x%s: %s", msg.channel_id.hex()[:16], exc)
            node.peers.send(peer_id, BatchRefusal(msg.channel_id, msg.batch_id, code, str(exc)[:1000]))
            return
        node.peers.send(peer_id, consent)

    async def _bls_consent(self, consent: BatchConsent, message: bytes, room: ChainRoom) -> BatchConsent:
        await self._register_key_once(room)
        signature = await self._off_loop(self.bls_worker().sign(self.bls_key, message))
        return replace(consent, bls_signature=signature, bls_public_key=await self.bls_public_key())

    async def _register_key_once(self, room: ChainRoom) -> None:
        """Queue registerBlsKey on `room`'s chain the first time a BLS consent is given there, unless that
        chain has our key."""
        if room.chain_id in self._key_registered:
            return
        self._key_registered.add(room.chain_id)
        if await self.key_hash(self.node.key.address, room) != bytes(32):
            return
        public = g1_to_eip2537(await self.bls_public_key())
        proof = await self._off_loop(self.bls_worker().prove_possession(self.bls_key))
        op = Operation("register_bls_key", (public, g2_to_eip2537(proof)))
        await self.node.channels.wait_round(self.node.channels.enqueue_operation(op, room.ns))

    # --- chain reads ---------------------------------------------------------------------------------

    async def _view(self, room: ChainRoom, signature: str, types: Sequence[str], values: Sequence[Any]
                    ) -> bytes:
        data = keccak(text=signature)[:4] + abi_encode(list(types), list(values))
        return await room.chain.run(room.chain.backend.call, {"to": room.contract, "data": data})

    async def key_hash(self, participant: str, room: ChainRoom) -> bytes:
        return (await self._view(room, "blsKeyHash(address)", ["address"], [participant]))[:32]

    async def signers_hash(self, signers: Sequence[str], room: ChainRoom) -> bytes:
        return (await self._view(room, "blsSignersKeyHash(bytes32)", ["bytes32"],
                                 [signers_id(signers)]))[:32]

    # --- the hub -------------------------------------------------------------------------------------

    def eligible(self, kind: int, min_amount: int,
                 chain: Namespace | None = None) -> dict[tuple[Namespace, bytes], list[bytes]]:
        """Channel ids by chain and token (of one chain, if named): open, nothing pending, and
        (withdraw) at least `min_amount` to take."""
        found: dict[tuple[Namespace, bytes], list[bytes]] = {}
        for cid, entry in self.node.channels.channels.items():
            s = entry.state
            if chain is not None and entry.ns != chain:
                continue
            if s.status is not ChannelStatus.OPEN or s.settle is not None:
                continue
            if s.our.withdraw is not None or s.partner.withdraw is not None:
                continue
            if kind == BATCH_WITHDRAW and s.our_balance() < max(min_amount, 1):
                continue
            token = bytes.fromhex(entry.onchain.state.token[2:])
            found.setdefault((entry.ns, token), []).append(cid)
        return found

    async def run_batches(self, kind: int, *, scheme: str = "auto", min_amount: int = 0,
                          receiver: bytes | None = None, timeout: float = CONSENT_TIMEOUT,
                          chain: ChainRoom | None = None) -> list[dict[str, Any]]:
        """One batch per chain and token over every eligible channel (on `chain` only, if given); a
        summary of each."""
        async with self._lock:
            groups = self.eligible(kind, min_amount, None if chain is None else chain.ns)
            if not groups:
                where = "" if chain is None else f" on chain {chain.name} ({chain.chain_id})"
                raise BatchFailed(f"no channel{where} is eligible for this batch")
            to = bytes.fromhex(self.node.key.address[2:]) if receiver is None else receiver
            return [await self._one_batch(self._plan(kind, ns, token, to, cids), cids, scheme, timeout)
                    for (ns, token), cids in groups.items()]

    def _plan(self, kind: int, ns: Namespace, token: bytes, receiver: bytes, cids: list[bytes]) -> _Plan:
        """A batch over `cids` of chain `ns`, valid for `BATCH_WINDOW` from that chain's time."""
        room = self.node.room_of(ns)
        now = max(room.watcher.chain_time, *(self.node.channels.entry(c).state.now for c in cids))
        return _Plan(kind, room, token, receiver, now + BATCH_WINDOW)

    async def _one_batch(self, plan: _Plan, cids: list[bytes], scheme_name: str, timeout: float
                         ) -> dict[str, Any]:
        batch_kind = BatchKind.WITHDRAW if plan.kind == BATCH_WITHDRAW else BatchKind.CLOSE
        scheme = choose_scheme(batch_kind, len(cids)) if scheme_name == "auto" else Scheme(scheme_name)
        wire_scheme = SCHEME_ECDSA if scheme is Scheme.ECDSA else SCHEME_BLS
        requests, left_out = self._requests(plan, wire_scheme, cids)
        seconds = _Stopwatch()
        if scheme is Scheme.ECDSA:
            gathering = await self._gather(requests, timeout)
            seconds.lap("gather")
            left_out.update(gathering.left_out)
            included = [c for c in requests if c in gathering.consents]
            calldata = self._ecdsa_calldata(plan, included, requests, gathering.consents)
            seconds.lap("aggregate")
        else:
            included, more, calldata = await self._bls_batch(plan, requests, timeout, seconds)
            left_out.update(more)
        summary = {"kind": "withdraw" if plan.kind == BATCH_WITHDRAW else "close", "scheme": scheme.value,
                   "chain": plan.room.name, "token": to_checksum_address(plan.token),
                   "receiver": to_checksum_address(plan.receiver),
                   "included": ["0x" + c.hex() for c in included],
                   "left_out": {"0x" + c.hex(): why for c, why in left_out.items()}}
        summary["closed_singly"] = await self._close_consented_singly(plan, requests, included)
        if not included:
            return {**summary, "amount": "0", "operation": None}
        amount = sum(self._paid(plan.kind, requests[c]) for c in included)
        expiry = NO_EXPIRY if plan.kind == BATCH_CLOSE and scheme is Scheme.ECDSA else plan.expiry
        status = await self._submit(Operation("batch", (calldata, expiry)), plan.room)
        seconds.lap("mine")
        return {**summary, "amount": str(amount), "operation": status.as_json(), "seconds": seconds.laps}

    async def _close_consented_singly(self, plan: _Plan, requests: dict[bytes, BatchConsentRequest],
                                      included: list[bytes]) -> list[str]:
        """A partner who consented to a close that did not make it into the batch (its BLS key was not
        registered in time, say) has stopped paying on its channel: close it on its own, with the
        CooperativeSettle both already signed, rather than leave it waiting."""
        if plan.kind != BATCH_CLOSE:
            return []  # a withdraw consent just expires
        queued: list[str] = []
        for cid in requests:
            s = self.node.channels.entry(cid).state.settle
            if cid in included or s is None or not s.requested_by_us:
                continue
            if s.signature1 is None or s.signature2 is None:
                continue
            effect = ContractSendCooperativeSettle(cid, s.participant1, s.amount1, s.receiver1,
                                                   s.participant2, s.amount2, s.receiver2, s.signature1,
                                                   s.signature2)
            op = operation_of(effect)
            assert op is not None  # a cooperative settle is a transaction
            await self.node.channels.wait_round(self.node.channels.enqueue_operation(op))
            queued.append("0x" + cid.hex())
        return queued

    def _paid(self, kind: int, request: BatchConsentRequest) -> int:
        """What the batch pays the hub's receiver from this entry's channel."""
        e = request.entry
        if kind == BATCH_CLOSE:
            return e.amount
        hub_first = self.node.channels.signer.address < e.partner
        return e.amount - (e.withdrawn1 if hub_first else e.withdrawn2)

    def _requests(self, plan: _Plan, scheme: int, cids: list[bytes]
                  ) -> tuple[dict[bytes, BatchConsentRequest], dict[bytes, str]]:
        """Our signed request per channel (a BLS one's branch is filled in per round), and the channels
        whose state refuses one, with why."""
        node = self.node
        placeholder = NO_BRANCH if scheme == SCHEME_ECDSA else MerkleBranch(0, 1, bytes(32), b"")
        requests: dict[bytes, BatchConsentRequest] = {}
        refused: dict[bytes, str] = {}
        for cid in cids:
            try:
                requests[cid] = batch_request(node.channels.entry(cid).state, node.channels.signer,
                                              batch_id=bytes(32), kind=plan.kind, scheme=scheme,
                                              token=plan.token, receiver=plan.receiver, expiry=plan.expiry,
                                              branch=placeholder)
            except ChanneldError as exc:
                refused[cid] = str(exc)
        return requests, refused

    async def _gather(self, requests: dict[bytes, BatchConsentRequest], timeout: float) -> _Gathering:
        """Send each request (under a fresh batch id); return once all are answered or `timeout` passed."""
        node, batch_id = self.node, secrets.token_bytes(32)
        gathering = _Gathering({c: replace(r, batch_id=batch_id) for c, r in requests.items()})
        self._gatherings[batch_id] = gathering
        try:
            for cid, request in gathering.requests.items():
                peer_id = node.channels.entry(cid).peer_id
                if node.peers.is_connected(peer_id):
                    node.peers.send(peer_id, request)
                else:
                    gathering.answer(cid, None, "partner offline")
            if not gathering.requests:
                gathering.done.set()
            with trio.move_on_after(timeout):
                await gathering.done.wait()
        finally:
            del self._gatherings[batch_id]
        for cid in gathering.requests:
            gathering.answer(cid, None, f"no answer within {timeout:g} s")
        return gathering

    @staticmethod
    def _entry(request: BatchConsentRequest) -> BatchEntry:
        e = request.entry
        return BatchEntry(request.channel_id, to_checksum_address(e.partner), e.challenge_period, e.deposit1,
                          e.deposit2, e.withdrawn1, e.withdrawn2, e.amount)

    def _ecdsa_calldata(self, plan: _Plan, included: list[bytes], requests: dict[bytes, BatchConsentRequest],
                        consents: dict[bytes, BatchConsent]) -> bytes:
        if not included:
            return b""
        entries = [self._entry(requests[c]) for c in included]
        signatures = [consents[c].signature for c in included]
        token, receiver = to_checksum_address(plan.token), to_checksum_address(plan.receiver)
        if plan.kind == BATCH_WITHDRAW:
            return encode_batch_withdraw(token, receiver, plan.expiry, entries, signatures)
        return encode_batch_cooperative_close(token, receiver, entries, signatures)

    # --- BLS -----------------------------------------------------------------------------------------

    def _terms(self, plan: _Plan) -> BatchTerms:
        kind = BatchKind.WITHDRAW if plan.kind == BATCH_WITHDRAW else BatchKind.CLOSE
        return BatchTerms(plan.room.chain_id, plan.room.contract, kind, to_checksum_address(plan.token),
                          self.node.key.address, to_checksum_address(plan.receiver), plan.expiry)

    def _tree(self, plan: _Plan, cids: list[bytes], requests: dict[bytes, BatchConsentRequest]
              ) -> tuple[bytes, dict[bytes, MerkleBranch]]:
        """The Merkle root over `cids`' entries, in order, and each one's branch."""
        kind = BatchKind.WITHDRAW if plan.kind == BATCH_WITHDRAW else BatchKind.CLOSE
        leaves = [leaf(kind, self._entry(requests[c])) for c in cids]
        root = merkle_root(leaves)
        return root, {c: MerkleBranch(i, len(cids), root, b"".join(merkle_path(leaves, i).siblings))
                      for i, c in enumerate(cids)}

    async def _bls_batch(self, plan: _Plan, requests: dict[bytes, BatchConsentRequest], timeout: float,
                         seconds: _Stopwatch) -> tuple[list[bytes], dict[bytes, str], bytes]:
        """Ask over a tree of every channel, then again over the partners who answered with registered
        keys, until one round's signers are exactly its tree (their reservations stand: same terms)."""
        left_out: dict[bytes, str] = {}
        signers = list(requests)
        for _ in range(BLS_ROUNDS):
            root, branches = self._tree(plan, signers, requests)
            asked = {c: replace(requests[c], branch=branches[c]) for c in signers}
            gathering = await self._gather(asked, timeout)
            seconds.lap("gather")
            left_out.update(gathering.left_out)
            answered = [c for c in signers if c in gathering.consents]
            ready = await self._with_registered_keys(plan.room, answered, gathering.consents, left_out,
                                                     timeout)
            seconds.lap("keys")
            if not ready:
                return [], left_out, b""
            if ready == signers:
                return ready, left_out, await self._bls_calldata(plan, ready, requests, gathering.consents,
                                                                 root, seconds)
            signers = ready
        raise BatchFailed(f"partners kept dropping out of the BLS batch after {BLS_ROUNDS} rounds")

    async def _with_registered_keys(self, room: ChainRoom, signers: list[bytes],
                                    consents: dict[bytes, BatchConsent], left_out: dict[bytes, str],
                                    timeout: float) -> list[bytes]:
        """The signers whose consent's BLS key is the one registered on `room`'s chain for them (a key
        registered with the first consent may take a few blocks: waited for up to `timeout`)."""
        ready: list[bytes] = []
        with trio.move_on_after(timeout):
            pending = list(signers)
            while pending:
                for cid in list(pending):
                    key = g1_to_eip2537(consents[cid].bls_public_key)
                    partner = (room.chain_id, self._partner(cid))
                    registered = self._registered_keys.get(partner) or await self.key_hash(partner[1], room)
                    if registered == keccak(key):
                        self._registered_keys[partner] = registered
                        ready.append(cid)
                        pending.remove(cid)
                    elif registered != bytes(32):
                        left_out[cid] = "the partner's BLS key is not the one registered on chain"
                        pending.remove(cid)
                if pending:
                    await trio.sleep(0.5)
        for cid in signers:
            if cid not in ready:
                left_out.setdefault(cid, "the partner's BLS key was not registered on chain in time")
        return [c for c in signers if c in ready]

    def _partner(self, cid: bytes) -> str:
        return to_checksum_address(self.node.channels.entry(cid).state.partner.address)

    async def _bls_calldata(self, plan: _Plan, signers: list[bytes],
                            requests: dict[bytes, BatchConsentRequest], consents: dict[bytes, BatchConsent],
                            root: bytes, seconds: _Stopwatch) -> bytes:
        keys = [consents[c].bls_public_key for c in signers]
        addresses = [self._partner(c) for c in signers]
        terms = self._terms(plan)
        message = terms.message(len(signers), root)
        worker = self.bls_worker()
        signature = await self._off_loop(worker.aggregate([consents[c].bls_signature for c in signers]))
        if not await self._off_loop(worker.verify_aggregate(keys, message, signature)):
            raise BatchFailed("the partners' BLS signatures do not aggregate to a valid signature")
        seconds.lap("aggregate")
        encoded = [g1_to_eip2537(k) for k in keys]
        if await self.signers_hash(addresses, plan.room) == bytes(32):
            packed = b"".join(bytes.fromhex(a[2:]) for a in addresses)
            status = await self._submit(Operation("register_bls_signers", (packed, b"".join(encoded))),
                                        plan.room)
            if status.status != "mined":
                raise BatchFailed(f"registering the signer list failed: {status.error}")
            seconds.lap("register_signers")
        aggregate_key = g1_to_eip2537(aggregate_public_keys(keys))
        return encode_batch_bls(terms, [self._entry(requests[c]) for c in signers], aggregate_key,
                                g2_to_eip2537(signature))

    # --- the outbox ----------------------------------------------------------------------------------

    async def submit_funding(self, op: Operation, token: bytes, total: int, room: ChainRoom
                             ) -> OperationStatus:
        """Queue a batch open or top-up on `room`'s chain (an ERC-20 one after its approve, in the same
        round, so the worker sends them in order) and wait until it is mined or refused."""
        async with self._lock:
            if token != bytes(20):
                self.node.channels.enqueue_operation(approve_operation(token, total), room.ns)
            return await self._submit(op, room)

    async def _submit(self, op: Operation, room: ChainRoom) -> OperationStatus:
        """Queue `op` on `room`'s chain (durable with the consents recorded before it) and wait until it is
        mined or refused."""
        node = self.node
        await node.channels.wait_round(node.channels.enqueue_operation(op, room.ns))
        status = room.worker.latest(op.kind, None)
        assert status is not None  # registered when its round committed
        with trio.move_on_after(MINED_TIMEOUT):
            while status.status in ("queued", "sent"):
                await trio.sleep(0.1)
        return status
