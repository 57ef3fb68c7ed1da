"""Multi-hop payments in the daemon: one pure payment machine per secrethash, driven by channel events.

The channel service calls `on_channel_effects` synchronously, inside the same `apply` that produced
them, so a machine's new state, and every channel input its `ChannelDo`s cause, join the very round
(store batch) the lock event came in: a payment row is always written together with the channel rows it
changed, before any message that depends on them leaves (a mediator's relayed `SecretReveal` depends on
none of them and leaves at once: proto/state-machine.md, relaying a reveal). Inputs, per secrethash:

* `EventLockReceived`: a payment request of ours (journaled by `PaymentRequestBook`) makes us the target,
  anything else is mediated (unless `routing.forward = no`: then the lock just expires back to its payer);
* `EventLockUnlocked` / `EventLockExpired` from our channels, a partner's `SecretReveal`;
* the secret registry's `SecretRevealed` logs and each block's time, in that order, after the channels
  heard them (`run`).

A partner's `SecretReveal` that arrives while our chain view is stale (no read of the chain's time has
completed for a few polls' time: the node was frozen, or the endpoint is down) waits until a read that
started after it completes: acting on it with an old clock could make a mediator unlock a downstream lock
that in fact expired long ago, while its own upstream lock is expired back to its payer.

A `LockExpired` of ours that the partner refuses as premature (its chain view lags ours: a node that was
frozen or offline wakes with a stale clock) stays in flight; `run` sends it again, sooner at first and
then less often, until the partner accepts it or the channel closes.

A machine that is done is deleted from the store in the round that finished it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio
from eth_utils import keccak, to_checksum_address

from channeld.chain import TxRequest
from channeld.chain import contract as hub
from channeld.errors import ChanneldError, LocalFault
from channeld.limits import LimitContext
from channeld.node._records import Operation
from channeld.protocol import (
    TRANSITIONS,
    ActionTick,
    ChannelDo,
    ChannelState,
    ChannelStatus,
    ContractReceiveSecretRegistered,
    Effect,
    EventLockExpired,
    EventLockReceived,
    EventLockUnlocked,
    EventPaymentRefused,
    EventRouteFailed,
    EventTransferFailed,
    EventTransferReceived,
    EventTransferSucceeded,
    InitiatorState,
    LockNotExpired,
    MediatorState,
    SendSecretReveal,
    TargetState,
    TransferEffect,
    handle_initiator,
    handle_mediator,
    handle_target,
    issue_request,
    refusal_code,
    start_mediation,
    start_payment,
    transfer_from_record,
    transfer_to_record,
)
from channeld.wire import LockExpired, SecretReveal

if TYPE_CHECKING:
    from channeld.node._channels import ChannelService
    from channeld.node._node import Node

log = logging.getLogger("channeld.node")
# the end of a lock, which its payment machine must hear of (a tuple: built once, not per effect)
_LOCK_ENDED = (EventLockUnlocked, EventLockExpired)
PaymentState = InitiatorState | MediatorState | TargetState
ISSUED = "requests"  # PaymentRequestBook's journal table of the requests we issued
TICK_INTERVAL = 0.1
RETRY_FIRST = 1.0  # seconds before a refused `LockExpired` is sent again; doubled after each refusal
RETRY_LONGEST = 60.0
LOCK_NOT_EXPIRED = refusal_code(LockNotExpired(""))
# seconds without a completed chain read (at least, and in polls) after which our clock may be far behind
STALE_VIEW, STALE_POLLS = 1.0, 3
MAX_DEFERRED_REVEALS = 1024


class TransferFailed(LocalFault):
    """A multi-hop payment of ours did not complete; the message lists why each route failed."""


@dataclass(frozen=True, slots=True)
class PayOutcome:
    status: str  # "succeeded", "failed", "pending"
    payment_id: int
    fees: int = 0
    reasons: tuple[str, ...] = ()


def key_of(state: PaymentState) -> bytes:
    return state.request.secrethash if isinstance(state, TargetState) else state.secrethash


def is_done(state: PaymentState) -> bool:
    if isinstance(state, InitiatorState):
        return state.finished
    if isinstance(state, MediatorState):
        return state.done
    return state.complete and not state.locks


class TransferService:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.channels = node.channels
        self.forward = node.config.routing.forward == "yes"
        self.payments: dict[bytes, PaymentState] = {}
        self._waiters: dict[bytes, trio.Event] = {}
        self._outcomes: dict[bytes, TransferEffect] = {}
        self._now = 0
        self._payments_now = 0  # the time of the block before the newest: the payment machines' clock
        self._registry: str | None = None
        self._next_registry_block = 0
        # (channel, nonce) of our refused `LockExpired` messages -> (trio time to resend, delay used)
        self._retries: dict[tuple[bytes, int], tuple[float, float]] = {}
        self._deferred: list[tuple[float, bytes]] = []  # (trio time of arrival, secret) of held reveals

    def load(self, deploy_block: int) -> int:
        for key, raw in self.node.store.iter_payments(self.node.ns):
            self.payments[key] = transfer_from_record(raw)
        self._next_registry_block = deploy_block
        return len(self.payments)

    # --- inputs ---------------------------------------------------------------------------------------

    def on_channel_effects(self, cid: bytes, effects: list[Effect]) -> None:
        """Hook of `ChannelService`: runs inside the `apply` that produced `effects`."""
        for effect in effects:
            if isinstance(effect, EventLockReceived):
                self._lock_received(effect)
            elif isinstance(effect, _LOCK_ENDED):
                self._to_payment(effect.secrethash, effect)
            elif isinstance(effect, EventPaymentRefused) and effect.code == LOCK_NOT_EXPIRED:
                self._retry_later(cid, effect.nonce)

    def on_secret(self, peer_id: bytes, secret: bytes) -> None:
        watcher = self.node.watcher
        if trio.current_time() - watcher.fresh_as_of <= max(STALE_VIEW, STALE_POLLS * watcher.poll_interval):
            self._reveal(secret)
        elif len(self._deferred) < MAX_DEFERRED_REVEALS:
            self._deferred.append((trio.current_time(), secret))

    def _reveal(self, secret: bytes) -> None:
        """The payment hears the newest chain time first: payments otherwise run a block behind (see
        `run`), and a mediator reloaded after a restart would judge its downstream lock by the time it
        stopped at. Whether a lock is still claimable is decided with the latest time we know."""
        secrethash = hashlib.sha256(secret).digest()
        self._to_payment(secrethash, ActionTick(self._chain_now()))
        self._to_payment(secrethash, SecretReveal(secret))

    @property
    def held_reveals(self) -> int:
        """Partner reveals waiting for a fresh chain view."""
        return len(self._deferred)

    def reveal_deferred(self) -> int:
        """Apply the held reveals that a chain read started after them has caught up with; how many."""
        fresh = self.node.watcher.fresh_as_of
        ready = [secret for at, secret in self._deferred if at <= fresh]
        self._deferred = [(at, secret) for at, secret in self._deferred if at > fresh]
        for secret in ready:
            self._reveal(secret)
        return len(ready)

    def _lock_received(self, event: EventLockReceived) -> None:
        secrethash = event.lock.secrethash
        known = self.payments.get(secrethash)
        if known is not None:
            if isinstance(known, TargetState):
                self._to_payment(secrethash, event)
            return  # a second lock for a payment we mediate or make: it expires back to its payer
        target = self._issued_request(secrethash) if event.target == self.channels.signer.address else None
        if target is not None:
            self.payments[secrethash] = target
            self._to_payment(secrethash, event)
            return
        if not self.forward:
            log.info("not forwarding payment %d (routing.forward = no)", event.payment_id)
            return
        payer = self.channels.entry(event.channel_id).state
        self._effects(*start_mediation(event, payer, self._by_partner(), self.node.gossip.fees,
                                       self.channels.limits))

    def _issued_request(self, secrethash: bytes) -> TargetState | None:
        """A target machine for an open request of ours with this hash (None: we never issued one)."""
        record = self.node.journal.get(ISSUED, secrethash.hex())
        if record is None or record.get("status") != "open":
            return None
        now = self._chain_now()
        expires_at = now + int(record["expiry"] - time.time())
        if expires_at <= now:
            return None
        return issue_request(bytes.fromhex(record["preimage"]), int(record["amount"]), expires_at, now)

    def _to_payment(self, secrethash: bytes, event: object) -> None:
        state = self.payments.get(secrethash)
        if state is None:
            return
        try:
            if isinstance(state, MediatorState):
                self._effects(*handle_mediator(state, event))
            elif isinstance(state, TargetState):
                self._effects(*handle_target(state, event))
            else:
                self._effects(*handle_initiator(state, event, self._states()))
        except ChanneldError as exc:
            log.warning("payment 0x%s: %s not applied: %s", secrethash.hex()[:16], type(event).__name__, exc)

    # --- effects --------------------------------------------------------------------------------------

    def _effects(self, state: PaymentState, effects: list[TransferEffect]) -> int:
        """Record the machine's new state in the round filling now, carry out its effects; the round."""
        key = key_of(state)
        self._learn_failures(self.payments.get(key), effects)
        done = is_done(state)
        if done:
            self.payments.pop(key, None)
        else:
            self.payments[key] = state
        round_no = self.channels.put_payment(key, None if done else transfer_to_record(state))
        for effect in effects:
            if isinstance(effect, ChannelDo):
                self._channel_do(effect)
            elif isinstance(effect, SendSecretReveal):
                self._reveal_now(effect)
            else:
                self.channels.after_commit(functools.partial(self._report, effect))
        return round_no

    def _reveal_now(self, effect: SendSecretReveal) -> None:
        """A reveal needs no commit before it leaves (`SendSecretReveal`); on an open channel only, as the
        channel machine's own reveal."""
        entry = self.channels.channels.get(effect.channel_id)
        if entry is not None and entry.state.status is ChannelStatus.OPEN:
            self.node.peers.send(entry.peer_id, SecretReveal(effect.secret))

    def _channel_do(self, do: ChannelDo) -> None:
        entry = self.channels.channels.get(do.channel_id)
        if entry is None or type(do.action) not in TRANSITIONS[entry.state.status]:
            return  # closed on chain: the chain settles what the lock becomes
        try:
            self.channels.apply(do.channel_id, do.action)
        except ChanneldError as exc:
            log.warning("channel 0x%s refused %s: %s", do.channel_id.hex()[:16], type(do.action).__name__,
                        exc)

    def _report(self, effect: TransferEffect) -> None:
        bus = self.node.bus
        if isinstance(effect, EventTransferSucceeded):
            bus.publish("transfer_succeeded", None, payment_id=effect.payment_id, amount=str(effect.amount),
                        fees=str(effect.fees), secrethash="0x" + effect.secrethash.hex())
        elif isinstance(effect, EventTransferFailed):
            bus.publish("transfer_failed", None, payment_id=effect.payment_id, reasons=list(effect.reasons),
                        secrethash="0x" + effect.secrethash.hex())
        elif isinstance(effect, EventRouteFailed):
            bus.publish("route_failed", effect.channel_id, payment_id=effect.payment_id, reason=effect.reason)
        elif isinstance(effect, EventTransferReceived):
            self._request_paid(effect)
        self._settle_waiter(effect)

    def _request_paid(self, effect: EventTransferReceived) -> None:
        journal = self.node.journal
        record = journal.get(ISSUED, effect.secrethash.hex())
        announce = functools.partial(self.node.bus.publish, "request_paid", None,
                                     payment_hash="0x" + effect.secrethash.hex(), amount=str(effect.amount))
        if record is not None and record.get("status") == "open":
            # the writer thread's fsync, not the trio loop's; announced once the mark is on disk
            paid = {**record, "status": "paid", "paid_at": time.time()}
            journal.put_soon(ISSUED, effect.secrethash.hex(), paid, announce)
        else:
            announce()

    def _learn_failures(self, before: PaymentState | None, effects: list[TransferEffect]) -> None:
        """A route failed: the graph weighs its edges past our first hop as riskier. Read from the state
        before the transition, which still holds the attempt (the new one holds the next route)."""
        if not isinstance(before, InitiatorState) or before.attempt is None:
            return
        if any(isinstance(e, EventRouteFailed) for e in effects):
            self.node.gossip.graph.record_failure(self.channels.signer.address, before.attempt.route)

    def _settle_waiter(self, effect: TransferEffect) -> None:
        if not isinstance(effect, EventTransferSucceeded | EventTransferFailed):
            return
        waiter = self._waiters.pop(effect.secrethash, None)
        if waiter is not None:
            self._outcomes[effect.secrethash] = effect
            waiter.set()

    # --- refused lock expiries -------------------------------------------------------------------------

    def _retry_later(self, cid: bytes, nonce: int) -> None:
        _, delay = self._retries.get((cid, nonce), (0.0, RETRY_FIRST / 2))
        delay = min(delay * 2, RETRY_LONGEST)
        self._retries[(cid, nonce)] = (trio.current_time() + delay, delay)

    def resend_refused(self) -> int:
        """Send again each refused `LockExpired` whose delay is over; how many were sent."""
        now, sent = trio.current_time(), 0
        for (cid, nonce), (due, delay) in list(self._retries.items()):
            entry = self.channels.channels.get(cid)
            message = None if entry is None else _lock_expired_in_flight(entry.state, nonce)
            if entry is None or message is None or entry.state.status is not ChannelStatus.OPEN:
                del self._retries[(cid, nonce)]  # accepted meanwhile, or the chain settles it now
            elif due <= now:
                # the message is part of the stored state since it was first sent: no new round needed
                self.node.peers.send(entry.peer_id, message)
                self._retries[(cid, nonce)] = (float("inf"), delay)  # the next refusal schedules again
                sent += 1
        return sent

    # --- time and the registry ------------------------------------------------------------------------

    def _chain_now(self) -> int:
        return max(self.node.watcher.chain_time, self._now)

    async def run(self) -> None:
        """After each block the channels heard: registrations first, then the block's time."""
        while True:
            try:
                await self._registrations()
            except ChanneldError as exc:
                log.warning("reading the secret registry failed: %s", exc)
            now = self.node.watcher.chain_time
            if now > self._now:
                # payments run a block behind: a partner that has not yet seen the block that expired
                # our lock would refuse the `LockExpired` as premature (it is then sent again, but
                # most refusals are avoided this way; a block is far shorter than a reveal timeout,
                # the margin every claim keeps)
                self._payments_now, self._now = self._now, now
                if self._payments_now:
                    for secrethash in list(self.payments):
                        self._to_payment(secrethash, ActionTick(self._payments_now))
            self.reveal_deferred()
            self.resend_refused()
            await trio.sleep(TICK_INTERVAL)

    async def _registrations(self) -> None:
        chain = self.node.chain
        if self._registry is None:
            raw = await chain.run(chain.backend.call, {"to": self.node.contract,
                                                       "data": hub.encode_secret_registry()})
            self._registry = self.node.worker.registry = to_checksum_address(raw[-20:])
        head = self.node.watcher.head
        if head < self._next_registry_block:
            return
        logs = await chain.run(chain.backend.get_logs, self._registry, self._next_registry_block, head)
        self._next_registry_block = head + 1
        for raw_log in logs:
            try:
                event = hub.decode_registry_event({"topics": raw_log.topics, "data": raw_log.data})
            except hub.UnknownEvent:
                continue
            self.registered(event.secret, self._chain_now())

    def registered(self, secret: bytes, at: int) -> None:
        """The registry holds `secret`: every channel, then the payment, hears of it."""
        event = ContractReceiveSecretRegistered(secret, at)
        for cid, entry in self.channels.on_chain(self.node.ns):  # the registry of the primary chain
            if type(event) in TRANSITIONS[entry.state.status]:
                try:
                    self.channels.apply(cid, event)
                except ChanneldError as exc:
                    log.warning("channel 0x%s: registration not applied: %s", cid.hex()[:16], exc)
        self._to_payment(hashlib.sha256(secret).digest(), event)

    # --- paying ---------------------------------------------------------------------------------------

    async def pay(self, target: bytes, amount: int, secrethash: bytes, fee_cap: int,
                  timeout: float, limits: LimitContext | None = None) -> PayOutcome:
        """Pay `amount` to `target` (an address) over routed hops, locked under `secrethash`.

        `limits`: the risk limits and ledger the payment is checked against before any lock is signed;
        the node's ledger counts it from then on.
        """
        if secrethash in self.payments:
            raise TransferFailed(f"a payment under hash 0x{secrethash.hex()} is already in progress")
        routes = self.node.gossip.plan(target, amount, fee_cap)
        payment_id = secrets.randbits(63)
        state, effects = start_payment(payment_id, self.channels.signer.address, amount, secrethash, fee_cap,
                                       routes, self._states(), self._chain_now(), limits)
        if limits is not None:
            self.node.ledger = limits.recorded(amount)
        waiter = self._waiters[secrethash] = trio.Event()
        await self.channels.wait_round(self._effects(state, effects))
        with trio.move_on_after(timeout):
            await waiter.wait()
        self._waiters.pop(secrethash, None)
        outcome = self._outcomes.pop(secrethash, None)
        if isinstance(outcome, EventTransferSucceeded):
            for route in routes:
                if route.channel_id in self.channels.channels:
                    self.node.gossip.graph.record_success(self.channels.signer.address, route, amount)
                    break
            return PayOutcome("succeeded", payment_id, outcome.fees)
        if isinstance(outcome, EventTransferFailed):
            return PayOutcome("failed", payment_id, reasons=outcome.reasons)
        return PayOutcome("pending", payment_id)

    # --- views ----------------------------------------------------------------------------------------

    def _states(self) -> Mapping[bytes, ChannelState]:
        return _ChannelStates(self.channels)

    def _by_partner(self) -> Mapping[bytes, ChannelState]:
        return _PartnerChannels(self.channels, self.node.peers.addresses)


class _ChannelStates(Mapping[bytes, ChannelState]):
    """Every channel's state by id, read when asked: a payment looks up one or two of a hub's thousand
    channels, so copying them all into a dict per input made each payment O(channels)."""

    def __init__(self, channels: ChannelService) -> None:
        self._channels = channels.channels

    def __getitem__(self, channel_id: bytes) -> ChannelState:
        return self._channels[channel_id].state

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._channels)

    def __len__(self) -> int:
        return len(self._channels)


class _PartnerChannels(Mapping[bytes, ChannelState]):
    """Our channel with each partner address (an open one where there is one), found through the
    partner index rather than a scan of every channel per mediated lock."""

    def __init__(self, channels: ChannelService, node_ids: Mapping[bytes, bytes]) -> None:
        self._channels = channels
        self._node_ids = node_ids  # partner address -> node id

    def __getitem__(self, address: bytes) -> ChannelState:
        node_id = self._node_ids.get(address)
        found = None
        entries = self._channels.channels.values() if node_id is None else (
            entry for _, entry in self._channels.of_peer(node_id))
        for entry in entries:
            if entry.ns != self._channels.ns:
                continue  # multi-hop runs on the primary chain: a lock is never forwarded on another
            state = entry.state
            if state.partner.address == address and (found is None or state.status is ChannelStatus.OPEN):
                found = state
        if found is None:
            raise KeyError(address)
        return found

    def __iter__(self) -> Iterator[bytes]:
        return iter({entry.state.partner.address: None for entry in self._channels.channels.values()})

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _lock_expired_in_flight(state: ChannelState, nonce: int) -> LockExpired | None:
    for message in state.locks_in_flight:
        if isinstance(message, LockExpired) and message.balance_proof.nonce == nonce:
            return message
    return None


# --- the transactions a payment asks for ----------------------------------------------------------------


def register_request(registry: str, op: Operation) -> TxRequest:
    return TxRequest(registry, hub.encode_register_secret(bytes(op.args[0])))


def unlock_request(contract: str, channel: hub.OnChainChannel, op: Operation) -> TxRequest | None:
    """`unlock` of a settled channel's side whose locks the secret registry can release (None: not due)."""
    _, sender, _receiver, packed = op.args
    if channel.settled is None or channel.cooperative:
        return None
    who = to_checksum_address(bytes(sender))
    settled = channel.settled_locks()
    first = channel.state.is_first(who)
    locked, root = (settled.locked1, settled.locks_root1) if first else (settled.locked2, settled.locks_root2)
    if locked == 0:
        return None  # nothing of this side stayed locked, or it was unlocked already (by either side)
    if keccak(bytes(packed)) != root:
        # the chain settled on another proof of this side than the locks we hold (an expiry or unlock
        # the partner never accepted): the partner, who submitted that proof, holds the matching locks
        log.warning("channel 0x%s: the settled locks root of %s is not that of our locks; not unlocking",
                    channel.channel_id.hex()[:16], who)
        return None
    return TxRequest(contract, hub.encode_unlock(channel.channel_id, settled, who, bytes(packed)))



async def pay_routed(node: Node, peer_id: bytes, amount: int, metadata: bytes, timeout: float,
                     max_fee: int | None, limits: LimitContext | None = None) -> dict[str, object]:
    """`Node.pay` to a node we have no channel with: a routed payment under a payment request's hash."""
    from channeld.client._payreq import hash_from_metadata
    from channeld.node._ops import OperationRefused
    from channeld.protocol import KnownKey
    from channeld.routing import RoutingError

    secrethash = hash_from_metadata(metadata)
    if secrethash is None:
        raise OperationRefused(f"no open channel with node {peer_id.hex()}; to route, pay its payment "
                               "request (the request's hash locks every hop)")
    fee_cap = amount if max_fee is None else max_fee
    try:
        outcome = await node.transfers.pay(KnownKey(peer_id).address, amount, secrethash, fee_cap, timeout,
                                           limits)
    except RoutingError as exc:
        raise OperationRefused(f"{type(exc).__name__}: {exc}") from None
    except TransferFailed as exc:
        raise OperationRefused(str(exc)) from None
    status = {"succeeded": "accepted", "failed": "refused"}.get(outcome.status, "pending")
    return {"payment_id": outcome.payment_id, "amount": str(amount), "status": status, "routed": True,
            "fees": str(outcome.fees), "reason": "; ".join(outcome.reasons) or None}
