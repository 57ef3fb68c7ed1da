"""The chain side of the node: contract events in (as `ContractReceive*` inputs), transactions out.

`ChainWatcher` follows the contract's logs; every log that concerns one of our channels updates that
channel's on-chain view and feeds the protocol, and the follower's cursor goes into the same round (one
store batch) as the states it changed, so a crash never applies a log twice or skips one. Each new block's
timestamp is fed as `ActionTick`: withdraws expire and settlement is decided in chain time, not ours.

`TransactionWorker` executes the outbox in order, one transaction at a time. Every operation is
re-checked against the on-chain view right before it is sent, so a re-send after a crash or a duplicate
(both partners settling) is skipped instead of reverting; an entry leaves the outbox only once mined or
refused for good. A transaction that waits unmined is re-sent with the same nonce and higher fees
(the sender's `FeePolicy`; a dispute escalates toward the fee cap as its deadline minus the safety
margin nears). After a restart, the re-sent outbox row takes the nonce of whatever the last run left
in the pool (`TransactionSender.take_over_pool`), so it replaces it rather than queueing behind it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import trio
from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address

from channeld.chain import (
    BlockMark,
    ChainBackend,
    EventFollower,
    FollowerCursor,
    RawLog,
    RpcFailed,
    RpcUnreachable,
    SubmittedTx,
    TransactionReverted,
    TransactionSender,
    TxRequest,
)
from channeld.chain import contract as hub
from channeld.chain.sender import NonceTaken
from channeld.errors import ChainError, ChanneldError
from channeld.node._batch import BATCH_OPERATIONS, batch_transaction
from channeld.node._batch_funding import first_open_probe
from channeld.node._channels import ChannelService
from channeld.node._events import EventBus
from channeld.node._opens import find_opened
from channeld.node._records import Operation, addr_bytes
from channeld.node._transfers import register_request, unlock_request
from channeld.protocol import (
    ActionTick,
    ContractReceiveClosed,
    ContractReceiveDeposit,
    ContractReceiveProofUpdated,
    ContractReceiveSettled,
    ContractReceiveWithdraw,
    new_channel,
)
from channeld.store import ChainCursor, Namespace

log = logging.getLogger("channeld.node")
T = TypeVar("T")
APPROVE_SELECTOR = bytes.fromhex("095ea7b3")
# a ChannelUnlocked is applied to the on-chain view only (no protocol input): an unlock of the same side
# queued by this node, or re-sent, is then skipped rather than reverted
_IGNORED_EVENTS = (hub.PayoutDeferred, hub.PayoutClaimed, hub.SecretRevealed)


class WrongChain(ChainError):
    """The chain's RPC answers for another chain id than the one the node follows there."""


class ChainAccess:
    """Blocking chain calls in worker threads, through one limiter: the embedded EVM is not thread-safe,
    and one process's nodes share it in the demo."""

    def __init__(self, backend: ChainBackend, limiter: trio.CapacityLimiter | None = None) -> None:
        self.backend = backend
        self.limiter = limiter or trio.CapacityLimiter(1)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(fn, *args, limiter=self.limiter)


class _StoredCursor:
    """The follower's start: the cursor the store holds (saved by the channel service's rounds)."""

    def __init__(self, cursor: ChainCursor | None) -> None:
        self.cursor = cursor

    def load(self) -> FollowerCursor | None:
        if self.cursor is None:
            return None
        mark = BlockMark(self.cursor.block_number, self.cursor.block_hash)
        return FollowerCursor(mark, (mark,), ())

    def save(self, cursor: FollowerCursor) -> None:
        """Unused: the cursor is committed with the channel states it changed."""


def protocol_input(event: hub.ChannelEvent) -> object | None:
    """The protocol's `ContractReceive*` input for a contract event (None if it has none)."""
    if isinstance(event, hub.ChannelDeposit):
        return ContractReceiveDeposit(addr_bytes(event.participant), event.total_deposit)
    if isinstance(event, hub.ChannelWithdraw):
        return ContractReceiveWithdraw(addr_bytes(event.participant), event.total_withdraw)
    if isinstance(event, hub.ChannelClosed):
        return ContractReceiveClosed(addr_bytes(event.closer), event.settle_time)
    if isinstance(event, hub.BalanceProofUpdated):
        return ContractReceiveProofUpdated(addr_bytes(event.signer), event.nonce)
    if isinstance(event, hub.ChannelSettled | hub.ChannelCooperativelySettled):
        return ContractReceiveSettled(event.amount1, event.amount2)
    return None


class ChainWatcher:
    def __init__(self, chain: ChainAccess, service: ChannelService, ns: Namespace, contract: str,
                 deploy_block: int, our_address: bytes, peer_of: Callable[[bytes], bytes | None],
                 on_new_channel: Callable[[bytes, bytes], None], bus: EventBus, *, confirmations: int = 0,
                 poll_interval: float = 1.0) -> None:
        self.chain = chain
        self.service = service
        self.ns = ns
        self.our_address = our_address
        self.peer_of = peer_of
        self.on_new_channel = on_new_channel
        self.bus = bus
        self.poll_interval = poll_interval
        cursor = _StoredCursor(service.store.get_chain_cursor(ns))
        self.follower = EventFollower(chain.backend, contract, cursor, deploy_block, confirmations)
        self.head = 0
        self.chain_time = 0
        self.fresh_as_of = float("-inf")  # trio time the newest read of head and time started
        self.poke = trio.Event()
        # while the RPC fails: since when (wall-clock seconds) and the last error, for `info` and the API
        self.failed_since: float | None = None
        self.last_error: str | None = None
        # a hanging RPC raises nothing for a long time (timeouts, then the provider's retries): a chain
        # with no step done for `stall_after` seconds counts as stalled too
        self.last_progress = time.time()
        self.stall_after = max(10 * poll_interval, 20.0)  # a busy machine may take seconds per step

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        while not await self._step_or_wait():
            pass
        task_status.started()
        while True:
            if await self._step_or_wait():
                with trio.move_on_after(self.poll_interval):
                    await self.poke.wait()
                self.poke = trio.Event()

    async def _step_or_wait(self) -> bool:
        """One step; an unreachable or failing RPC is waited out (the cursor has not moved)."""
        try:
            if self.stalled_since() is not None:
                await self._check_same_chain()
            caught_up = await self.step()
        except (RpcUnreachable, RpcFailed, WrongChain) as exc:
            log.warning("chain %d endpoint failed (%s); retrying", self.ns.chain_id, exc)
            self.last_error = str(exc)[:300]
            if self.failed_since is None:
                self.failed_since = time.time()
                self.bus.publish("chain_stalled", None, chain_id=self.ns.chain_id, error=self.last_error)
            await trio.sleep(self.poll_interval)
            return False
        if self.failed_since is not None:
            self.failed_since = self.last_error = None
            self.bus.publish("chain_recovered", None, chain_id=self.ns.chain_id)
        self.last_progress = time.time()
        return caught_up

    def stalled_since(self) -> float | None:
        """Since when the chain cannot be followed (its RPC fails or hangs), or None while it can."""
        if self.failed_since is not None:
            return self.failed_since
        if time.time() - self.last_progress > self.stall_after:
            return self.last_progress
        return None

    async def _check_same_chain(self) -> None:
        """An endpoint that comes back may be another chain now (a moved URL, a reset devnet): it must
        not be followed as ours."""
        raw = await self.chain.run(self.chain.backend.rpc, "eth_chainId", [])
        reported = raw if isinstance(raw, int) else int(str(raw), 16)
        if reported != self.ns.chain_id:
            raise WrongChain(f"the RPC now serves chain {reported}, not {self.ns.chain_id}")

    async def step(self) -> bool:
        """Read and apply one update; True once caught up."""
        update = await self.chain.run(self.follower.next_update)
        if update.retracted:
            raise ChainError(f"the chain reorganised {len(update.retracted)} logs away below the "
                             "confirmation depth; raise chain.confirmations and restart")
        for raw in update.applied:
            self._apply_log(raw)
        round_no = 0
        if update.cursor != self.follower.cursor:
            self.follower.cursor = update.cursor
            position = update.cursor.position
            if position.hash:
                round_no = self.service.set_cursor(ChainCursor(position.number, position.hash), self.ns)
        started = trio.current_time()
        self.head, self.chain_time = await self.chain.run(self._head_and_time)
        self.fresh_as_of = started
        round_no = max(round_no, self._tick(self.chain_time))
        await self.service.wait_round(round_no)
        return update.caught_up

    def _head_and_time(self) -> tuple[int, int]:
        backend = self.chain.backend
        return backend.head(), backend.timestamp()

    def _tick(self, now: int) -> int:
        ticked = False
        for cid, entry in self.service.on_chain(self.ns):
            if entry.state.now < now:
                self.service.apply(cid, ActionTick(now))
                ticked = True
        # a tick that only moves the clock writes nothing and leaves the round empty: a callback makes
        # sure the round we wait for is carried out all the same
        return self.service.after_commit(lambda: None) if ticked else 0

    def _apply_log(self, raw: RawLog) -> None:
        try:
            event = hub.decode_event({"topics": raw.topics, "data": raw.data})
        except hub.UnknownEvent as exc:
            log.warning("skipping a log of the contract that does not decode: %s", exc)
            return
        if isinstance(event, _IGNORED_EVENTS):
            return  # payouts and lock releases change no channel state this node keeps
        if isinstance(event, hub.ChannelOpened):
            self._opened(event)
            return
        entry = self.service.channels.get(event.channel_id)
        if entry is None or entry.ns != self.ns:
            return
        try:
            self.service.set_onchain(event.channel_id, hub.apply_event(entry.onchain, event))
            fed = protocol_input(event)
            if fed is not None:
                self.service.apply(event.channel_id, fed)
        except ChanneldError as exc:
            log.error("channel 0x%s: chain event %s not applied: %s", event.channel_id.hex(),
                      type(event).__name__, exc)
            return
        self._audit(event)
        self.bus.publish("chain_" + type(event).__name__, event.channel_id)

    def _audit(self, event: hub.ChannelEvent) -> None:
        if isinstance(event, hub.ChannelDeposit):
            self.service.audit_chain_event(event.channel_id, "deposit", addr_bytes(event.participant),
                                           event.total_deposit)
        elif isinstance(event, hub.ChannelWithdraw):
            self.service.audit_chain_event(event.channel_id, "withdraw", addr_bytes(event.participant),
                                           event.total_withdraw)
        elif isinstance(event, hub.ChannelClosed):
            self.service.audit_chain_event(event.channel_id, "close", addr_bytes(event.closer), 0)
        elif isinstance(event, hub.ChannelSettled | hub.ChannelCooperativelySettled):
            self.service.audit_chain_event(event.channel_id, "settle", self.our_address, 0)

    def _opened(self, event: hub.ChannelOpened) -> None:
        p1, p2 = addr_bytes(event.participant1), addr_bytes(event.participant2)
        if self.our_address not in (p1, p2):
            return
        known = self.service.channels.get(event.channel_id)
        if known is not None:
            if known.ns != self.ns:  # ids hash a random salt: two chains sharing one is not an accident
                log.error("channel 0x%s opened on chain %s is known on chain %s: ignored",
                          event.channel_id.hex(), self.ns, known.ns)
            return
        partner = p2 if p1 == self.our_address else p1
        peer_id = self.peer_of(partner)
        if peer_id is None:
            log.warning("channel 0x%s opened with 0x%s, a partner that never connected: ignored",
                        event.channel_id.hex(), partner.hex())
            return
        state = new_channel(self.ns.chain_id, self.ns.contract, event.channel_id, event.challenge_period,
                            self.our_address, peer_id)
        self.service.add_channel(event.channel_id, state, peer_id, hub.apply_event(None, event))
        for participant, deposit in ((p1, event.deposit1), (p2, event.deposit2)):
            if deposit:
                self.service.apply(event.channel_id, ContractReceiveDeposit(participant, deposit))
                # a deposit made by the open itself: audited like one, so balances can be replayed
                self.service.audit_chain_event(event.channel_id, "deposit", participant, deposit)
        self.bus.publish("channel_opened", event.channel_id, partner="0x" + partner.hex())
        self.on_new_channel(peer_id, event.channel_id)


# --- transactions ------------------------------------------------------------------------------------


@dataclass(slots=True)
class OperationStatus:
    seq: int
    kind: str
    channel_id: bytes | None
    status: str = "queued"  # queued, sent, mined, skipped, failed
    tx_hash: bytes | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"operation_id": self.seq, "kind": self.kind, "status": self.status,
                "channel_id": None if self.channel_id is None else "0x" + self.channel_id.hex(),
                "tx_hash": None if self.tx_hash is None else "0x" + self.tx_hash.hex(), "error": self.error}


class TransactionWorker:
    def __init__(self, chain: ChainAccess, sender: TransactionSender, service: ChannelService,
                 ns: Namespace, contract: str, bus: EventBus, *, safety_margin: float = 300.0,
                 poll_interval: float = 0.05) -> None:
        self.chain = chain
        self.sender = sender
        self.service = service
        self.ns = ns
        self.contract = contract
        self.bus = bus
        self.safety_margin = safety_margin
        self.poll_interval = poll_interval
        self.operations: dict[int, OperationStatus] = {}
        self.chain_time: Callable[[], int] = lambda: 0
        self.registry: str | None = None  # the SecretRegistry's address, set by node/_transfers.py

    @property
    def our(self) -> str:
        return self.sender.address

    def pending_count(self) -> int:
        return sum(1 for op in self.operations.values() if op.status in ("queued", "sent"))

    def latest(self, kind: str, channel_id: bytes | None) -> OperationStatus | None:
        found = [op for op in self.operations.values() if op.kind == kind and op.channel_id == channel_id]
        return max(found, key=lambda op: op.seq) if found else None

    async def run(self) -> None:
        # Every transaction of this account comes from an outbox row, and a row stays until mined: so
        # whatever an earlier run left in the pool is re-derived here and must replace, not queue behind.
        self.sender.take_over_pool()
        while True:
            changed = self.service.outbox_event(self.ns)
            waiting = list(self.service.store.iter_outbox(self.ns))
            for seq, raw in waiting:
                op = Operation.decode(raw)
                status = self.operations.setdefault(seq, OperationStatus(seq, op.kind, op.channel_id))
                if status.status in ("queued", "sent"):
                    await self._execute(status, op)
            with trio.move_on_after(1.0):
                await changed.wait()

    async def _execute(self, status: OperationStatus, op: Operation) -> None:
        try:
            request = None if await self._opened_already(op) else self.request_for(op)
            if request is None:
                status.status = "skipped"
            else:
                await self._send(status, op, request)
                status.status = "mined"
        except TransactionReverted as exc:
            status.status, status.error = "failed", str(exc)
            log.warning("outbox %d (%s) refused by the contract: %s", status.seq, op.kind, exc)
        except ChanneldError as exc:
            status.error = str(exc)
            log.warning("outbox %d (%s) not sent yet: %s", status.seq, op.kind, exc)
            await trio.sleep(1.0)
            return
        details = {k: v for k, v in status.as_json().items() if k not in ("kind", "channel_id")}
        self.bus.publish("operation_" + status.status, status.channel_id, operation=op.kind, **details)
        await self.service.wait_round(self.service.remove_operation(status.seq, self.ns))

    async def _opened_already(self, op: Operation) -> bool:
        """An open re-sent after a crash must not open a second channel (see `_opens`)."""
        probe = op if op.kind == "open" else first_open_probe(op)
        if probe is None:
            return False
        found = await self.chain.run(find_opened, self.chain.backend, self.contract, self.our, probe)
        if found is not None:
            log.info("open of outbox row was already mined as channel 0x%s; not sent again", found.hex())
        return found is not None

    async def _send(self, status: OperationStatus, op: Operation, request: TxRequest) -> None:
        deadline = None
        if op.kind == "update":
            deadline = int(op.args[6])
            left = deadline - self.chain_time()
            if left < self.safety_margin:
                log.warning("dispute of channel 0x%s submitted only %d s before its deadline",
                            bytes(op.args[0]).hex(), left)
        approval = self._approval(op)
        if approval is not None:
            await self._mine(await self.chain.run(self.sender.submit, approval), None, None)
        submitted = await self.chain.run(self.sender.submit, request)
        status.status, status.tx_hash = "sent", submitted.tx_hash
        await self._mine(submitted, deadline, status)

    async def _mine(self, submitted: SubmittedTx, deadline: int | None, status: OperationStatus | None
                    ) -> None:
        """Wait for any version of `submitted` to be mined, re-sending it with higher fees meanwhile."""
        newest, next_bump = submitted, self.sender.fee_policy.bump_after
        while True:
            if await self.chain.run(self.sender.check_receipt, newest) is not None:
                return
            if self.sender.waited(newest) >= next_bump:
                newest, next_bump = await self._bump(newest, deadline)
                if status is not None:
                    status.tx_hash = newest.tx_hash
            await trio.sleep(self.poll_interval)

    async def _bump(self, newest: SubmittedTx, deadline: int | None) -> tuple[SubmittedTx, float]:
        """The re-sent version (or `newest` again at the cap) and how long it may wait unmined."""
        if await self.chain.run(self.sender.nonce_taken, newest):
            # someone else used this account's nonce: the row is re-checked and sent afresh
            raise NonceTaken(f"nonce {newest.nonce} was used by another transaction of this account")
        time_left = None if deadline is None else deadline - self.safety_margin - self.chain_time()
        replacement = await self.chain.run(self.sender.bump, newest, time_left)
        interval = self.sender.fee_policy.bump_after
        if replacement is None:
            log.warning("transaction 0x%s (nonce %d) unmined at the fee cap of %d wei per gas",
                        newest.tx_hash.hex(), newest.nonce, self.sender.fee_policy.fee_cap)
            return newest, self.sender.waited(newest) + interval
        log.info("transaction 0x%s (nonce %d) unmined after %.0f s: re-sent as 0x%s at %d wei per gas%s",
                 newest.tx_hash.hex(), newest.nonce, self.sender.waited(newest), replacement.tx_hash.hex(),
                 replacement.max_fee, "" if time_left is None else f", {time_left:.0f} s before the margin")
        return replacement, interval

    def _approval(self, op: Operation) -> TxRequest | None:
        """An ERC-20 approve for opens and deposits in a token (ether needs none)."""
        if op.kind == "open" and op.args[1] != bytes(20):
            token, amount = bytes(op.args[1]), op.args[4]
        elif op.kind == "deposit":
            entry = self.service.channels.get(bytes(op.args[0]))
            if entry is None or entry.onchain.state.token == hub.ETHER:
                return None
            token, amount = addr_bytes(entry.onchain.state.token), op.args[1]
        else:
            return None
        data = APPROVE_SELECTOR + abi_encode(["address", "uint256"], [self.contract, amount])
        return TxRequest(to=to_checksum_address(bytes(token)), data=data)

    def request_for(self, op: Operation) -> TxRequest | None:
        """The transaction for `op` given what the chain holds now, or None if it is no longer due."""
        if op.kind == "open":
            partner, token, period, salt, deposit = op.args
            token_cs = to_checksum_address(bytes(token))
            partner_cs = to_checksum_address(bytes(partner))
            data = hub.encode_open_channel(partner_cs, token_cs, int(period), int(salt), int(deposit))
            return TxRequest(to=self.contract, data=data, value=int(deposit) if token_cs == hub.ETHER else 0)
        if op.kind in BATCH_OPERATIONS:
            return batch_transaction(self, op)
        if op.kind == "register_secret":
            if self.registry is None:
                raise ChainError("the secret registry's address is not known yet")
            return register_request(self.registry, op)
        cid = bytes(op.args[0])
        entry = self.service.channels.get(cid)
        if entry is None:
            return None
        channel = entry.onchain
        if op.kind == "unlock":
            return unlock_request(self.contract, channel, op)
        if channel.cooperative or channel.settled is not None:
            return None
        builder = _BUILDERS[op.kind]
        return builder(self, cid, channel, op.args)

    def _deposit(self, cid: bytes, channel: hub.OnChainChannel, args: tuple[Any, ...]) -> TxRequest | None:
        state, total = channel.state, int(args[1])
        current = state.deposit1 if state.is_first(self.our) else state.deposit2
        if channel.closing is not None or total <= current:
            return None
        value = total - current if state.token == hub.ETHER else 0
        return TxRequest(self.contract, hub.encode_set_total_deposit(cid, state, self.our, total), value)

    def _withdraw(self, cid: bytes, channel: hub.OnChainChannel, args: tuple[Any, ...]) -> TxRequest | None:
        _, participant, total, expiry, receiver, own_sig, partner_sig = args
        state, who = channel.state, to_checksum_address(bytes(participant))
        current = state.withdrawn1 if state.is_first(who) else state.withdrawn2
        if channel.closing is not None or int(total) <= current or int(expiry) <= self.chain_time():
            return None
        sig1, sig2 = (own_sig, partner_sig) if state.is_first(who) else (partner_sig, own_sig)
        data = hub.encode_set_total_withdraw(cid, state, who, int(total), int(expiry),
                                             to_checksum_address(bytes(receiver)), sig1, sig2)
        return TxRequest(self.contract, data)

    def _close(self, cid: bytes, channel: hub.OnChainChannel, args: tuple[Any, ...]) -> TxRequest | None:
        if channel.closing is not None:
            return None
        _, nonce, transferred, locked, root, signature = args
        proof = hub.StoredProof(int(nonce), int(transferred), int(locked), bytes(root))
        return TxRequest(self.contract, hub.encode_close_channel(cid, channel.state, proof, bytes(signature)))

    def _update(self, cid: bytes, channel: hub.OnChainChannel, args: tuple[Any, ...]) -> TxRequest | None:
        closing = channel.closing
        _, nonce, transferred, locked, root, signature, _deadline = args
        if closing is None or closing.closer == self.our:
            return None
        held = closing.proof1 if channel.state.is_first(closing.closer) else closing.proof2
        if held.nonce >= int(nonce):
            return None
        proof = hub.StoredProof(int(nonce), int(transferred), int(locked), bytes(root))
        data = hub.encode_update_balance_proof(cid, channel.state, closing, proof, bytes(signature))
        return TxRequest(self.contract, data)

    def _settle(self, cid: bytes, channel: hub.OnChainChannel, args: tuple[Any, ...]) -> TxRequest | None:
        if channel.closing is None:
            return None
        return TxRequest(self.contract, hub.encode_settle_channel(cid, channel.state, channel.closing))

    def _coop(self, cid: bytes, channel: hub.OnChainChannel, args: tuple[Any, ...]) -> TxRequest | None:
        if channel.closing is not None:
            return None
        _, amount1, receiver1, amount2, receiver2, sig1, sig2 = args
        first, second = to_checksum_address(bytes(receiver1)), to_checksum_address(bytes(receiver2))
        data = hub.encode_cooperative_settle(cid, channel.state, int(amount1), first, int(amount2), second,
                                             bytes(sig1), bytes(sig2))
        return TxRequest(self.contract, data)


_BUILDERS: dict[str, Callable[[TransactionWorker, bytes, hub.OnChainChannel, tuple[Any, ...]],
                              TxRequest | None]] = {
    "deposit": TransactionWorker._deposit,
    "withdraw": TransactionWorker._withdraw,
    "close": TransactionWorker._close,
    "update": TransactionWorker._update,
    "settle": TransactionWorker._settle,
    "coop": TransactionWorker._coop,
}
