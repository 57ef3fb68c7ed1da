"""ChannelService: every channel's state in memory, one entry point per input, write-behind durability.

`apply(channel_id, input)` runs the pure protocol at once (inputs for one channel are thereby applied one
at a time, in arrival order: trio runs it without a checkpoint) and adds what it produced to the pending
round: the changed channels, audit entries, outbox operations, and the effects to carry out. The flusher
submits each round as ONE store batch (a changed channel's row is encoded once per round, from its latest
state) without waiting for the previous round's fsync, awaits the rounds' durability in order (group
commit), and only then carries each round's effects out, in order: messages to the peers' queues,
wake-ups for the transaction worker, events to the bus. While one round is being written the next one
fills, so a channel's payments pipeline without ever sending anything that is not yet durable. `handle`
is `apply` plus waiting for that round.
"""

from __future__ import annotations

import logging
import sys
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import trio
import trio.testing

from channeld.chain import contract as hub
from channeld.errors import LocalFault
from channeld.limits import RiskLimits
from channeld.node._events import EventBus
from channeld.node._records import Envelope, Operation, decode_onchain, encode_onchain
from channeld.protocol import (
    ActionPay,
    ChannelState,
    ContractSendClose,
    ContractSendCooperativeSettle,
    ContractSendRegisterSecret,
    ContractSendSettle,
    ContractSendUnlock,
    ContractSendUpdateProof,
    ContractSendWithdraw,
    Effect,
    EventPaymentReceived,
    EventPaymentRefused,
    EventPaymentSent,
    EventWithdrawExpired,
    Persist,
    Send,
    from_record,
    handle,
    proof_digest,
    to_record,
)
from channeld.protocol import Signer as ProtocolSigner
from channeld.store import AuditRecord, Batch, ChainCursor, Namespace, PendingCommit, Store
from channeld.wire import Message, Payment, PaymentAccepted

log = logging.getLogger("channeld.node")

# Rounds queued to the store at once: one being fsynced while the next waits, so fsyncs run back to back.
PIPELINE_DEPTH = 2
# The longest a round waits for the tasks applying a burst of inputs (see `_let_runnable_tasks_run`).
GATHER_LIMIT = 0.0005
# Seconds a thread may hold the GIL while another waits for it (Python's default is 0.005).
WRITER_SWITCH_INTERVAL = 0.0002


class UnknownChannel(LocalFault):
    """No channel with this id is known to the node."""


@dataclass(slots=True)
class ChannelEntry:
    """One channel: the protocol state, its partner's node id, the contract's view of it and the chain
    (id and contract) it lives on: the scope of its store keys, outbox rows and audit entries."""

    state: ChannelState
    peer_id: bytes
    onchain: hub.OnChainChannel
    onchain_raw: bytes
    ns: Namespace

    def envelope(self, record: bytes) -> bytes:
        return Envelope(record, self.peer_id, self.onchain_raw).encode()


@dataclass(slots=True)
class _Round:
    """What the next commit carries: changed envelopes, appends, and the effects that wait for it."""

    changed: dict[bytes, None] = field(default_factory=dict)  # channels whose row is written (ordered set)
    audit: list[AuditRecord] = field(default_factory=list)
    outbox: list[tuple[Namespace, bytes]] = field(default_factory=list)
    removed_outbox: list[tuple[Namespace, int]] = field(default_factory=list)
    peers: dict[bytes, bytes] = field(default_factory=dict)
    cursors: dict[Namespace, ChainCursor] = field(default_factory=dict)
    effects: list[tuple[bytes, Effect]] = field(default_factory=list)
    # multi-hop payment machines (node/_transfers.py): rows (None: delete) and what waits for the commit
    payments: dict[bytes, bytes | None] = field(default_factory=dict)
    callbacks: list[Callable[[], None]] = field(default_factory=list)
    # add node-wide rows when the batch is built (the risk ledger: node/_ledger.py)
    writers: list[Callable[[Batch], None]] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.changed or self.audit or self.outbox or self.removed_outbox or self.peers
                    or self.cursors or self.effects or self.payments or self.callbacks or self.writers)

    def batch(self, ns: Namespace, channels: dict[bytes, ChannelEntry]) -> Batch:
        """The round's store batch; each changed channel's row is encoded once, from its latest state.

        Channels, outbox rows and cursors go under their own chain's namespace; payment machines (of every
        chain: a secrethash names one payment wherever its locks live) under the primary's, `ns`."""
        batch = Batch()
        for cid in self.changed:
            entry = channels[cid]
            batch.put_channel(entry.ns, cid, entry.envelope(to_record(entry.state)))
        for pubkey, record in self.peers.items():
            batch.put_peer(pubkey, record)
        for audit in self.audit:
            batch.append_audit(audit)
        for op_ns, op in self.outbox:
            batch.enqueue_outbox(op_ns, op)
        for op_ns, seq in self.removed_outbox:
            batch.remove_outbox(op_ns, seq)
        for cursor_ns, cursor in self.cursors.items():
            batch.set_chain_cursor(cursor_ns, cursor)
        for key, row in self.payments.items():
            if row is None:
                batch.delete_payment(ns, key)
            else:
                batch.put_payment(ns, key, row)
        for write in self.writers:
            write(batch)
        return batch


def _payment_key(payment_id: int) -> bytes:
    return payment_id.to_bytes(32, "big")


# the effects that are transactions: any other effect skips `operation_of`'s chain of type checks
CONTRACT_SENDS = frozenset({ContractSendClose, ContractSendUpdateProof, ContractSendSettle,
                            ContractSendWithdraw, ContractSendCooperativeSettle, ContractSendRegisterSecret,
                            ContractSendUnlock})


_PAYMENT_OUTCOMES = (EventPaymentSent, EventPaymentRefused)  # a tuple: built once, not per effect


def operation_of(effect: Effect) -> Operation | None:
    """The outbox operation a contract effect asks for (None for effects that are not transactions)."""
    if isinstance(effect, ContractSendClose):
        p = effect.partner_proof
        if p is None:
            return Operation("close", (effect.channel_id, 0, 0, 0, bytes(32), b""))
        return Operation("close", (effect.channel_id, p.nonce, p.transferred_amount, p.locked_amount,
                                   p.locks_root, p.signature))
    if isinstance(effect, ContractSendUpdateProof):
        p = effect.partner_proof
        return Operation("update", (effect.channel_id, p.nonce, p.transferred_amount, p.locked_amount,
                                    p.locks_root, p.signature, effect.deadline))
    if isinstance(effect, ContractSendSettle):
        return Operation("settle", (effect.channel_id,))
    if isinstance(effect, ContractSendWithdraw):
        return Operation("withdraw", (effect.channel_id, effect.participant, effect.total_withdraw,
                                      effect.expiry, effect.receiver, effect.participant_signature,
                                      effect.partner_signature))
    if isinstance(effect, ContractSendCooperativeSettle):
        return Operation("coop", (effect.channel_id, effect.amount1, effect.receiver1, effect.amount2,
                                  effect.receiver2, effect.signature1, effect.signature2))
    if isinstance(effect, ContractSendRegisterSecret):
        return Operation("register_secret", (effect.secret, effect.deadline))
    if isinstance(effect, ContractSendUnlock):
        return Operation("unlock", (effect.channel_id, effect.sender, effect.receiver, effect.packed_locks))
    return None


async def _let_runnable_tasks_run() -> None:
    """Return once every other task is blocked (or after `GATHER_LIMIT` at most).

    A burst of messages from a partner is applied by other tasks, one message per scheduling turn; a
    round submitted on the first of them would carry one payment and leave the rest to the next fsync.
    Waiting until nothing else can run lets the whole burst join the round, at no cost when idle. The
    limit keeps a busy node from starving the flusher.
    """
    with trio.move_on_after(GATHER_LIMIT):
        await trio.testing.wait_all_tasks_blocked()


class ChannelService:
    """The node's channels. `send(peer_id, message)` queues a message to a peer (never blocks)."""

    def __init__(self, store: Store, ns: Namespace, signer: ProtocolSigner, bus: EventBus,
                 send: Callable[[bytes, Message], None]) -> None:
        self.store = store
        self.ns = ns
        self.signer = signer
        self.bus = bus
        self._send = send
        self.channels: dict[bytes, ChannelEntry] = {}
        # channel ids per partner (insertion-ordered sets): a hub with thousands of partners finds a
        # payment's channel without scanning them all
        self._by_peer: dict[bytes, dict[bytes, None]] = {}
        self._round = _Round()
        self._round_no = 1  # the round now filling
        self._done_no = 0  # the last round durable and carried out
        self._dirty = trio.Event()
        self._done = trio.Event()
        # rounds handed to the store, oldest first, with their pending commits (None: nothing to write)
        self._submitted: deque[tuple[int, _Round, PendingCommit | None]] = deque()
        self._submitted_more = trio.Event()
        self._depth = trio.Semaphore(PIPELINE_DEPTH)
        self._outbox_changed: dict[Namespace, trio.Event] = {}
        self.failure: BaseException | None = None
        self.payment_results: dict[int, trio.Event] = {}
        self.payment_outcomes: dict[int, Effect] = {}
        # called with every payment's outcome as it is carried out (the benchmark load path listens here)
        self.payment_listeners: list[Callable[[EventPaymentSent | EventPaymentRefused], None]] = []
        # called with a channel's effects as soon as an input is applied (before they are durable)
        self.applied_listeners: list[Callable[[bytes, list[Effect]], None]] = []
        self.flush_rounds = 0
        self.on_queued: Callable[[Namespace, int, bytes], None] = lambda ns, seq, raw: None
        # multi-hop hook (node/_transfers.py): sees every input's effects inside the `apply` that made them
        self.on_effects: Callable[[bytes, list[Effect]], None] = lambda cid, effects: None
        # the node's risk limits, which the protocol checks every lock against (None: protocol rules only)
        self.limits: RiskLimits | None = None

    # --- loading and lookup --------------------------------------------------------------------------

    def load(self, namespaces: list[Namespace] | None = None) -> int:
        """Read every stored channel of these namespaces (default: the primary one); return how many."""
        for ns in namespaces or [self.ns]:
            for cid, raw in self.store.iter_channels(ns):
                envelope = Envelope.decode(raw)
                onchain = decode_onchain(envelope.onchain)
                self.channels[cid] = ChannelEntry(from_record(envelope.protocol_record), envelope.peer_id,
                                                  onchain, envelope.onchain, ns)
                self._by_peer.setdefault(envelope.peer_id, {})[cid] = None
        return len(self.channels)

    def entry(self, channel_id: bytes) -> ChannelEntry:
        found = self.channels.get(channel_id)
        if found is None:
            raise UnknownChannel(f"no channel 0x{channel_id.hex()}")
        return found

    def of_peer(self, peer_id: bytes) -> Iterator[tuple[bytes, ChannelEntry]]:
        for cid in self._by_peer.get(peer_id, ()):
            yield cid, self.channels[cid]

    def on_chain(self, ns: Namespace) -> Iterator[tuple[bytes, ChannelEntry]]:
        """The channels on one chain (a snapshot: callers may apply inputs while iterating)."""
        for cid, entry in list(self.channels.items()):
            if entry.ns == ns:
                yield cid, entry

    def outbox_event(self, ns: Namespace) -> trio.Event:
        """A fresh event, set once a round that queued an operation on chain `ns` is durable."""
        event = self._outbox_changed[ns] = trio.Event()
        return event

    # --- the entry points ----------------------------------------------------------------------------

    def apply(self, channel_id: bytes, event: object) -> int:
        """Apply one input now; return the round whose commit makes it durable. Raises if refused."""
        entry = self.entry(channel_id)
        old = entry.state  # `_record` replaces entry.state: compare against the state before it
        new, effects = handle(old, event, self.signer, self.limits)
        self._record(channel_id, entry, new, effects)
        if isinstance(event, ActionPay) and new is not old:
            proof = new.our.proof
            assert proof is not None  # a payment always signs a new proof
            self._audit(channel_id, "payment_sent", old.partner.address, -event.amount,
                        proof_digest(proof), event.payment_id)
        return self._round_no

    async def handle(self, channel_id: bytes, event: object) -> None:
        """Apply one input and return once it is durable and its effects are carried out."""
        round_no = self.apply(channel_id, event)
        self._mark_dirty()  # even an input that changed nothing waits for its round, which then exists
        await self.wait_round(round_no)

    def add_channel(self, channel_id: bytes, state: ChannelState, peer_id: bytes,
                    onchain: hub.OnChainChannel) -> int:
        raw = encode_onchain(onchain)
        entry = ChannelEntry(state, peer_id, onchain, raw, Namespace(state.chain_id, state.contract))
        self.channels[channel_id] = entry
        self._by_peer.setdefault(peer_id, {})[channel_id] = None
        self._round.changed[channel_id] = None
        return self._mark_dirty()

    def set_onchain(self, channel_id: bytes, onchain: hub.OnChainChannel) -> int:
        """Record the contract's new view of a channel (stored with the round)."""
        entry = self.entry(channel_id)
        entry.onchain, entry.onchain_raw = onchain, encode_onchain(onchain)
        self._round.changed[channel_id] = None
        return self._mark_dirty()

    def enqueue_operation(self, op: Operation, ns: Namespace | None = None) -> int:
        """Queue `op` for chain `ns` (default: its channel's chain, else the primary one)."""
        self._round.outbox.append((ns or self._ns_of(op.channel_id), op.encode()))
        return self._mark_dirty()

    def remove_operation(self, seq: int, ns: Namespace | None = None) -> int:
        self._round.removed_outbox.append((ns or self.ns, seq))
        return self._mark_dirty()

    def _ns_of(self, channel_id: bytes | None) -> Namespace:
        entry = None if channel_id is None else self.channels.get(channel_id)
        return self.ns if entry is None else entry.ns

    def put_payment(self, key: bytes, record: bytes | None) -> int:
        """A payment machine's row (None deletes it), written with the round filling now."""
        self._round.payments[key] = record
        return self._mark_dirty()

    def after_commit(self, callback: Callable[[], None]) -> int:
        """Run `callback` once the round filling now is durable (with that round's effects)."""
        self._round.callbacks.append(callback)
        return self._mark_dirty()

    def before_commit(self, write: Callable[[Batch], None]) -> int:
        """Have `write` add its rows to the batch of the round filling now, as that batch is built."""
        self._round.writers.append(write)
        return self._mark_dirty()

    def set_cursor(self, cursor: ChainCursor, ns: Namespace | None = None) -> int:
        self._round.cursors[ns or self.ns] = cursor
        return self._mark_dirty()

    def remember_peer(self, pubkey: bytes, record: bytes) -> int:
        self._round.peers[pubkey] = record
        return self._mark_dirty()

    def audit_chain_event(self, channel_id: bytes, kind: str, who: bytes, amount: int) -> None:
        self._audit(channel_id, kind, who, amount, bytes(32), 0)
        self._mark_dirty()

    async def wait_next_round(self) -> None:
        """Wait until the next round is carried out (acknowledgements may have arrived with it)."""
        await self._done.wait()

    async def wait_round(self, round_no: int) -> None:
        while self._done_no < round_no:
            if isinstance(self.failure, trio.Cancelled):
                await trio.sleep_forever()  # the node is stopping: this task is being cancelled too
            if self.failure is not None:
                raise LocalFault(f"the store failed; the node is stopping: {self.failure}")
            await self._done.wait()

    # --- recording -----------------------------------------------------------------------------------

    def _record(self, cid: bytes, entry: ChannelEntry, new: ChannelState, effects: list[Effect]) -> None:
        pending = self._round
        for effect in effects:
            if isinstance(effect, Persist):
                pending.changed[cid] = None  # encoded when the round is committed, from the state then
                continue
            op = operation_of(effect) if type(effect) in CONTRACT_SENDS else None
            if op is not None:
                pending.outbox.append((entry.ns, op.encode()))
            if isinstance(effect, EventPaymentReceived):
                proof = new.partner.proof
                assert proof is not None
                self._audit(cid, "payment_received", new.partner.address, effect.amount, proof_digest(proof),
                            effect.payment_id)
            pending.effects.append((cid, effect))
        entry.state = new
        if effects:
            self._mark_dirty()
            self.on_effects(cid, effects)
            for listener in self.applied_listeners:
                listener(cid, effects)

    def _audit(self, cid: bytes, kind: str, who: bytes, amount: int, proof_hash: bytes,
               payment_id: int) -> None:
        self._round.audit.append(AuditRecord(self._ns_of(cid), cid, who, kind, amount, proof_hash,
                                             _payment_key(payment_id)))

    def pending_effects(self) -> int:
        return len(self._round.effects)

    def _mark_dirty(self) -> int:
        self._dirty.set()
        return self._round_no

    # --- the flusher ---------------------------------------------------------------------------------

    async def run_flusher(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Commit rounds forever; on cancel, commit what is pending (shielded) so nothing is lost.

        Two tasks: the submitter hands each round to the store as soon as it has something, without
        waiting for the round before it (up to `PIPELINE_DEPTH` rounds queued), so the writer thread
        starts the next fsync the moment the last one ends; the completer awaits each round's durability
        in order and only then carries its effects out.
        """
        task_status.started()
        # The store's writer thread needs the GIL to start each fsync; with the default 5 ms switch
        # interval a busy trio thread keeps it that long, which stalls every round behind it.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_interval, WRITER_SWITCH_INTERVAL))
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._complete_rounds)
                while True:
                    # Each checkpoint is a pass of the scheduler on a payment's path: only the gathering
                    # one is taken when the round can go, the others only when there is something to wait for.
                    if not self._dirty.is_set():
                        await self._dirty.wait()
                    try:
                        self._depth.acquire_nowait()
                    except trio.WouldBlock:
                        await self._depth.acquire()
                    await _let_runnable_tasks_run()
                    self._submit_round()
        finally:
            with trio.CancelScope(shield=True):
                if not self._round.is_empty() and self.failure is None:
                    self._submit_round()
                while self._submitted and self.failure is None:
                    await self._complete_oldest()
            sys.setswitchinterval(switch_interval)

    def _submit_round(self) -> None:
        current, self._round = self._round, _Round()
        self._dirty = trio.Event()
        number = self._round_no
        self._round_no += 1
        try:
            batch = current.batch(self.ns, self.channels)
            pending = self.store.submit(batch) if len(batch) else None
        except BaseException as exc:
            self._fail(exc)
            raise
        self._submitted.append((number, current, pending))
        self._submitted_more.set()

    async def _complete_rounds(self) -> None:
        while True:
            while not self._submitted:
                await self._submitted_more.wait()
                self._submitted_more = trio.Event()
            await self._complete_oldest()
            self._depth.release()

    async def _complete_oldest(self) -> None:
        """Wait for the oldest submitted round to be durable, then carry its effects out."""
        number, current, pending = self._submitted[0]
        if pending is not None:
            try:
                receipt = await pending.wait_durable()
            except trio.Cancelled:
                raise  # the write goes on; the shielded drain at shutdown waits for it again
            except BaseException as exc:
                self._fail(exc)
                raise
            for seq, (ns, raw) in zip(receipt.outbox_seqs, current.outbox, strict=True):
                self.on_queued(ns, seq, raw)
        self._submitted.popleft()
        self.flush_rounds += 1
        self._carry_out(current)
        self._finish(number)

    def _finish(self, number: int) -> None:
        self._done_no = number
        self._done.set()
        self._done = trio.Event()

    def _fail(self, exc: BaseException) -> None:
        """The store failed: wake every waiter, which then raises (nothing after this is durable)."""
        self.failure = exc
        self._done.set()
        self._done = trio.Event()

    def _carry_out(self, current: _Round) -> None:
        for ns, _ in current.outbox:
            waiting = self._outbox_changed.get(ns)
            if waiting is not None:
                waiting.set()
        covered = covered_acknowledgements(current.effects)
        for index, (cid, effect) in enumerate(current.effects):
            entry = self.channels.get(cid)
            if isinstance(effect, Send):
                if entry is not None and index not in covered:
                    self._send(entry.peer_id, effect.message)
            else:
                self._publish(cid, effect)
        for callback in current.callbacks:
            callback()

    def _publish(self, cid: bytes, effect: Effect) -> None:
        if isinstance(effect, _PAYMENT_OUTCOMES):
            waiter = self.payment_results.pop(effect.payment_id, None)
            if waiter is not None:  # only a waiting caller collects the outcome: nothing piles up
                self.payment_outcomes[effect.payment_id] = effect
                waiter.set()
            for listener in self.payment_listeners:
                listener(effect)
        if isinstance(effect, EventPaymentSent):
            self.bus.publish("payment_sent", cid, payment_id=effect.payment_id, amount=str(effect.amount),
                             nonce=effect.nonce)
        elif isinstance(effect, EventPaymentReceived):
            self.bus.publish("payment_received", cid, payment_id=effect.payment_id,
                             amount=str(effect.amount), nonce=effect.nonce, metadata=effect.metadata.hex())
        elif isinstance(effect, EventPaymentRefused):
            self.bus.publish("payment_refused", cid, payment_id=effect.payment_id, code=effect.code,
                             reason=effect.reason)
        elif isinstance(effect, EventWithdrawExpired):
            self.bus.publish("withdraw_expired", cid, total_withdraw=str(effect.total_withdraw))
        elif type(effect) in CONTRACT_SENDS:
            self.bus.publish("transaction_queued", cid, effect=type(effect).__name__)


def covered_acknowledgements(effects: list[tuple[bytes, Effect]]) -> set[int]:
    """Indexes of `PaymentAccepted` sends that a later one in the same round makes redundant.

    `PaymentAccepted(n)` accepts every proof up to `n` (proto/state-machine.md, cumulative
    acknowledgement), so of consecutive acknowledgements on one channel only the last need be sent:
    a burst of 64 payments stored in one round is answered by one message, not 64. Only runs with no
    other message to that channel between them are merged, so every other message keeps its order.
    """
    covered: set[int] = set()
    next_ack: dict[bytes, int] = {}  # channel -> nonce of the acknowledgement that follows, if next
    for index in range(len(effects) - 1, -1, -1):
        cid, effect = effects[index]
        if not isinstance(effect, Send):
            continue
        message = effect.message
        if not isinstance(message, PaymentAccepted):
            next_ack.pop(cid, None)
            continue
        later = next_ack.get(cid)
        if later is not None and later >= message.nonce:
            covered.add(index)
        else:
            next_ack[cid] = message.nonce
    return covered


def in_flight_payment(state: ChannelState, payment_id: int) -> Payment | None:
    for payment in state.in_flight:
        if payment.payment_id == payment_id:
            return payment
    return None
