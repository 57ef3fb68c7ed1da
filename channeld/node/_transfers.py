"""Multi-hop payments in the daemon: one pure payment machine per secrethash, driven by channel events.

The channel service calls `on_channel_effects` synchronously, inside the same `apply` that produced
them, so a machine's new state, and every channel input its `ChannelDo`s cause, join the very round
(store batch) the lock event came in: a payment row is always written together with the channel rows it
changed, before any message that depends on them leaves (a mediator's relayed `SecretReveal` depends on
none of them and leaves at once: proto/state-machine.md, relaying a reveal). Inputs, per secrethash:

* `EventLockReceived`: a payment request of ours (journaled by `PaymentRequestBook`) in the lock's asset
  makes us the target; a route asking us to convert goes to the converter machine (`node/_conversions.py`);
  anything else is mediated in the same asset (unless `routing.forward = no`: then the lock just expires
  back to its payer);
* `EventLockUnlocked` / `EventLockExpired` from our channels, a partner's `SecretReveal`;
* each chain's secret registry logs and block time, in that order, after the channels heard them (`run`):
  a payment hears the clock of the chain its locks live on (a converter: the chain it pays out on).

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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio
from eth_utils import keccak, to_checksum_address

from channeld.chain import TxRequest
from channeld.chain import contract as hub
from channeld.errors import ChanneldError, LocalFault
from channeld.limits import LimitContext
from channeld.node._records import Operation, addr_bytes
from channeld.node._refusals import next_delay
from channeld.node._transfer_views import (
    ChainClock,
    ChannelStates,
    PartnerChannels,
    lock_expired_in_flight,
)
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
)
from channeld.protocol._crosschain import (
    Asset,
    ChainTick,
    ConversionState,
    handle_conversion,
    payment_from_record,
    payment_to_record,
    start_conversion,
)
from channeld.routing import ChannelGraph
from channeld.store import Namespace
from channeld.wire import SecretReveal

if TYPE_CHECKING:
    from channeld.node._channels import ChannelEntry
    from channeld.node._node import Node
    from channeld.node._rooms import ChainRoom

log = logging.getLogger("channeld.node")
# the end of a lock, which its payment machine must hear of (a tuple: built once, not per effect)
_LOCK_ENDED = (EventLockUnlocked, EventLockExpired)
PaymentState = InitiatorState | MediatorState | TargetState | ConversionState
ISSUED = "requests"  # PaymentRequestBook's journal table of the requests we issued
TICK_INTERVAL = 0.1
LOCK_NOT_EXPIRED = refusal_code(LockNotExpired(""))
MAX_DEFERRED_REVEALS = 1024
NATIVE_TOKEN = hub.ETHER


class TransferFailed(LocalFault):
    """A multi-hop payment of ours did not complete; the message lists why each route failed."""


@dataclass(frozen=True, slots=True)
class PayOutcome:
    status: str  # "succeeded", "failed", "pending"
    payment_id: int
    fees: int = 0
    reasons: tuple[str, ...] = ()


def key_of(state: PaymentState) -> bytes:
    if isinstance(state, ConversionState):
        return state.inner.secrethash
    return state.request.secrethash if isinstance(state, TargetState) else state.secrethash


def is_done(state: PaymentState) -> bool:
    if isinstance(state, InitiatorState):
        return state.finished
    if isinstance(state, MediatorState):
        return state.done
    if isinstance(state, ConversionState):
        return state.inner.done
    return state.complete and not state.locks


class TransferService:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.channels = node.channels
        self.forward = node.config.routing.forward == "yes"
        self.payments: dict[bytes, PaymentState] = {}
        # the chain each payment's locks live on (a converter's: the chain it pays out on), whose clock
        # ticks it; a payment not listed runs on the primary chain
        self._chain_of: dict[bytes, Namespace] = {}
        self._waiters: dict[bytes, trio.Event] = {}
        self._outcomes: dict[bytes, TransferEffect] = {}
        self.clocks = {room.ns: ChainClock(room) for room in node.rooms}
        # (channel, nonce) of our refused `LockExpired` messages -> (trio time to resend, delay used)
        self._retries: dict[tuple[bytes, int], tuple[float, float]] = {}
        self._deferred: list[tuple[float, bytes]] = []  # (trio time of arrival, secret) of held reveals

    def load(self) -> int:
        """Every stored payment machine (all of them are kept under the primary chain's namespace)."""
        for key, raw in self.node.store.iter_payments(self.node.ns):
            self.payments[key] = state = payment_from_record(raw)
            self._chain_of[key] = self._locks_chain(state)
        return len(self.payments)

    def _locks_chain(self, state: PaymentState) -> Namespace:
        """The chain a payment's locks live on, read from the channels it holds locks in."""
        if isinstance(state, ConversionState):  # ticked by the chain it pays out on
            return next((ns for ns in self.clocks if ns.chain_id == state.payee_chain), self.node.ns)
        if isinstance(state, MediatorState):
            cid: bytes | None = state.payer_channel
        elif isinstance(state, TargetState):
            cid = state.locks[0][0] if state.locks else None
        else:
            route = state.attempt.route if state.attempt is not None else next(iter(state.routes), None)
            cid = None if route is None else route.channel_id
        entry = None if cid is None else self.channels.channels.get(cid)
        return self.node.ns if entry is None else entry.ns

    def _clock(self, secrethash: bytes) -> ChainClock:
        return self.clocks[self._chain_of.get(secrethash, self.node.ns)]

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
        if self._clock(hashlib.sha256(secret).digest()).is_fresh():
            self._reveal(secret)
        elif len(self._deferred) < MAX_DEFERRED_REVEALS:
            self._deferred.append((trio.current_time(), secret))

    def _reveal(self, secret: bytes) -> None:
        """The payment hears the newest chain time first: payments otherwise run a block behind (see
        `run`), and a mediator reloaded after a restart would judge its downstream lock by the time it
        stopped at. Whether a lock is still claimable is decided with the latest time we know."""
        secrethash = hashlib.sha256(secret).digest()
        self._tick(secrethash, self._clock(secrethash).current())
        self._to_payment(secrethash, SecretReveal(secret))

    @property
    def held_reveals(self) -> int:
        """Partner reveals waiting for a fresh chain view."""
        return len(self._deferred)

    def reveal_deferred(self) -> int:
        """Apply the held reveals that a chain read started after them has caught up with; how many."""
        def caught_up(at: float, secret: bytes) -> bool:
            return at <= self._clock(hashlib.sha256(secret).digest()).room.watcher.fresh_as_of

        ready = [secret for at, secret in self._deferred if caught_up(at, secret)]
        self._deferred = [(at, secret) for at, secret in self._deferred if not caught_up(at, secret)]
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
        entry = self.channels.entry(event.channel_id)
        ours = event.target == self.channels.signer.address
        target = self._issued_request(secrethash, entry) if ours else None
        if target is not None:
            self.payments[secrethash] = target
            self._chain_of[secrethash] = entry.ns
            self._to_payment(secrethash, event)
            return
        if not self.forward:
            log.info("not forwarding payment %d (routing.forward = no)", event.payment_id)
            return
        converter = self.node.conversions.converter_for(event, entry, self._by_partner)
        if isinstance(converter, str):
            log.info("not converting payment %d: %s", event.payment_id, converter)
            return  # the lock expires back to its payer
        if converter is not None:
            self._chain_of[secrethash] = Namespace(converter.into.chain_id, converter.into.contract)
            self._effects(*start_conversion(event, entry.state, converter))
            return
        self._chain_of[secrethash] = entry.ns
        by_partner = self._by_partner(entry.ns, addr_bytes(entry.onchain.state.token))
        self._effects(*start_mediation(event, entry.state, by_partner, self.node.gossip.fees,
                                       self.channels.limits))

    def _issued_request(self, secrethash: bytes, entry: ChannelEntry) -> TargetState | None:
        """A target machine for an open request of ours with this hash, paid in the asset it names
        (None: we never issued one, or the lock came in another asset: it expires back)."""
        record = self.node.journal.get(ISSUED, secrethash.hex())
        if record is None or record.get("status") != "open":
            return None
        named = (record.get("chain_id"), str(record.get("contract")).lower(),
                 str(record.get("token", NATIVE_TOKEN)).lower())
        if named != (entry.ns.chain_id, "0x" + entry.ns.contract.hex(), entry.onchain.state.token.lower()):
            log.info("payment 0x%s arrived in another asset than its request names", secrethash.hex()[:16])
            return None
        now = self.clocks[entry.ns].current()
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
            elif isinstance(state, ConversionState):
                self._effects(*handle_conversion(state, event))
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
            self._chain_of.pop(key, None)
        else:
            self.payments[key] = state
            if key not in self._chain_of:
                self._chain_of[key] = self._locks_chain(state)
        round_no = self.channels.put_payment(key, None if done else payment_to_record(state))
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
        graph = self._graph_of_channel(before.attempt.route.channel_id)
        if graph is not None and any(isinstance(e, EventRouteFailed) for e in effects):
            graph.record_failure(self.channels.signer.address, before.attempt.route)

    def _graph_of_channel(self, channel_id: bytes) -> ChannelGraph | None:
        """The graph of the asset one of our channels moves."""
        entry = self.channels.channels.get(channel_id)
        if entry is None:
            return None
        return self.node.gossip.graph_of(Asset(entry.ns.chain_id, entry.ns.contract,
                                               addr_bytes(entry.onchain.state.token)))

    def _settle_waiter(self, effect: TransferEffect) -> None:
        if not isinstance(effect, EventTransferSucceeded | EventTransferFailed):
            return
        waiter = self._waiters.pop(effect.secrethash, None)
        if waiter is not None:
            self._outcomes[effect.secrethash] = effect
            waiter.set()

    # --- refused lock expiries -------------------------------------------------------------------------

    def _retry_later(self, cid: bytes, nonce: int) -> None:
        known = self._retries.get((cid, nonce))
        delay = next_delay(None if known is None else known[1])
        self._retries[(cid, nonce)] = (trio.current_time() + delay, delay)

    def resend_refused(self) -> int:
        """Send again each refused `LockExpired` whose delay is over; how many were sent."""
        now, sent = trio.current_time(), 0
        for (cid, nonce), (due, delay) in list(self._retries.items()):
            entry = self.channels.channels.get(cid)
            message = None if entry is None else lock_expired_in_flight(entry.state, nonce)
            if entry is None or message is None or entry.state.status is not ChannelStatus.OPEN:
                del self._retries[(cid, nonce)]  # accepted meanwhile, or the chain settles it now
            elif due <= now:
                # the message is part of the stored state since it was first sent: no new round needed
                self.node.peers.send(entry.peer_id, message)
                self._retries[(cid, nonce)] = (float("inf"), delay)  # the next refusal schedules again
                sent += 1
        return sent

    # --- time and the registry ------------------------------------------------------------------------

    def _tick(self, secrethash: bytes, now: int) -> None:
        """The time of the payment's chain (a converter hears it as the chain's `ChainTick`)."""
        state = self.payments.get(secrethash)
        if isinstance(state, ConversionState):
            self._to_payment(secrethash, ChainTick(self._chain_of[secrethash].chain_id, now))
        elif state is not None:
            self._to_payment(secrethash, ActionTick(now))

    async def run(self) -> None:
        """After each block the channels heard: registrations first, then the block's time, per chain."""
        while True:
            for clock in self.clocks.values():
                if clock.room.status() == "stalled":
                    continue  # its RPC hangs: reading its registry would hold up every other chain
                try:
                    await self._registrations(clock)
                except ChanneldError as exc:
                    log.warning("reading the secret registry of chain %s failed: %s", clock.room.name, exc)
            self._tick_advanced()
            self.reveal_deferred()
            self.resend_refused()
            await trio.sleep(TICK_INTERVAL)

    def _tick_advanced(self) -> None:
        """Each payment hears its chain's time when that chain's clock moved."""
        advanced = set()
        for ns, clock in self.clocks.items():
            now = clock.room.watcher.chain_time
            if now > clock.now:
                # payments run a block behind: a partner that has not yet seen the block that expired
                # our lock would refuse the `LockExpired` as premature (it is then sent again, but
                # most refusals are avoided this way; a block is far shorter than a reveal timeout,
                # the margin every claim keeps)
                clock.payments_now, clock.now = clock.now, now
                if clock.payments_now:
                    advanced.add(ns)
        if not advanced:
            return
        for secrethash in list(self.payments):
            ns = self._chain_of.get(secrethash, self.node.ns)
            if ns in advanced:
                self._tick(secrethash, self.clocks[ns].payments_now)

    async def _registrations(self, clock: ChainClock) -> None:
        room = clock.room
        chain = room.chain
        if clock.registry is None:
            call = {"to": room.contract, "data": hub.encode_secret_registry()}
            raw = await chain.run(chain.backend.call, call)
            clock.registry = room.worker.registry = to_checksum_address(raw[-20:])
        head = room.watcher.head
        if head < clock.next_registry_block:
            return
        logs = await chain.run(chain.backend.get_logs, clock.registry, clock.next_registry_block, head)
        clock.next_registry_block = head + 1
        for raw_log in logs:
            try:
                event = hub.decode_registry_event({"topics": raw_log.topics, "data": raw_log.data})
            except hub.UnknownEvent:
                continue
            self.registered(event.secret, clock.current(), room.ns)

    def registered(self, secret: bytes, at: int, ns: Namespace | None = None) -> None:
        """The registry of chain `ns` (default: the primary) holds `secret`: its channels, then the
        payment, hear of it."""
        event = ContractReceiveSecretRegistered(secret, at)
        for cid, entry in self.channels.on_chain(ns or self.node.ns):
            if type(event) in TRANSITIONS[entry.state.status]:
                try:
                    self.channels.apply(cid, event)
                except ChanneldError as exc:
                    log.warning("channel 0x%s: registration not applied: %s", cid.hex()[:16], exc)
        secrethash = hashlib.sha256(secret).digest()
        state = self.payments.get(secrethash)
        payer_chain = state.payer_chain if isinstance(state, ConversionState) else None
        if payer_chain is None or payer_chain == (ns or self.node.ns).chain_id:
            self._to_payment(secrethash, event)
        else:
            self._to_payment(secrethash, SecretReveal(secret))  # registered on its payout chain: learnt

    # --- paying ---------------------------------------------------------------------------------------

    async def pay(self, target: bytes, amount: int, secrethash: bytes, fee_cap: int,
                  timeout: float, limits: LimitContext | None = None,
                  asset: Asset | None = None) -> PayOutcome:
        """Pay `amount` of `asset` (default: the primary chain's coin) to `target` (an address) over
        routed hops on that asset's chain, locked under `secrethash`.

        `limits`: the risk limits and ledger the payment is checked against before any lock is signed;
        the node's ledger counts it from then on.
        """
        self.check_new(secrethash)
        asset = asset or self.node.gossip.primary.asset()
        ns = Namespace(asset.chain_id, asset.contract)
        routes = self.node.gossip.plan(target, amount, fee_cap, asset)
        self.node.room_of(ns).check_usable()
        payment_id = secrets.randbits(63)
        state, effects = start_payment(payment_id, self.channels.signer.address, amount, secrethash, fee_cap,
                                       routes, self._states(), self.clocks[ns].current(), limits)
        outcome = await self.run_payment(state, effects, timeout, limits)
        if isinstance(outcome, EventTransferSucceeded):
            graph = self.node.gossip.graph_of(asset)
            for route in routes:
                if route.channel_id in self.channels.channels and graph is not None:
                    graph.record_success(self.channels.signer.address, route, amount)
                    break
            return PayOutcome("succeeded", payment_id, outcome.fees)
        if isinstance(outcome, EventTransferFailed):
            return PayOutcome("failed", payment_id, reasons=outcome.reasons)
        return PayOutcome("pending", payment_id)

    def check_new(self, secrethash: bytes) -> None:
        if secrethash in self.payments:
            raise TransferFailed(f"a payment under hash 0x{secrethash.hex()} is already in progress")

    async def run_payment(self, state: InitiatorState, effects: list[TransferEffect], timeout: float,
                          limits: LimitContext | None) -> TransferEffect | None:
        """Start our payment machine (its lock goes out once its round is durable) and wait up to
        `timeout` for its outcome (None: still pending)."""
        if limits is not None:
            self.node.ledger = limits.recorded(state.amount)
        waiter = self._waiters[state.secrethash] = trio.Event()
        await self.channels.wait_round(self._effects(state, effects))
        with trio.move_on_after(timeout):
            await waiter.wait()
        self._waiters.pop(state.secrethash, None)
        return self._outcomes.pop(state.secrethash, None)

    def states(self) -> Mapping[bytes, ChannelState]:
        return self._states()

    # --- views ----------------------------------------------------------------------------------------

    def _states(self) -> Mapping[bytes, ChannelState]:
        return ChannelStates(self.channels)

    def _by_partner(self, ns: Namespace, token: bytes) -> Mapping[bytes, ChannelState]:
        return PartnerChannels(self.channels, self.node.peers.addresses, ns, token)


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
                     max_fee: int | None, limits: LimitContext | None = None, room: ChainRoom | None = None,
                     token: bytes | None = None) -> dict[str, object]:
    """`Node.pay` to a node we have no channel with: a routed payment under a payment request's hash, in
    `token` (default: the native coin) on `room`'s chain (default: the primary)."""
    from channeld.client._payreq import hash_from_metadata
    from channeld.node._ops import OperationRefused
    from channeld.protocol import KnownKey
    from channeld.routing import RoutingError

    secrethash = hash_from_metadata(metadata)
    if secrethash is None:
        raise OperationRefused(f"no open channel with node {peer_id.hex()}; to route, pay its payment "
                               "request (the request's hash locks every hop)")
    room = room or node.rooms[0]
    asset = Asset(room.chain_id, room.ns.contract, token or bytes(20))
    fee_cap = amount if max_fee is None else max_fee
    try:
        outcome = await node.transfers.pay(KnownKey(peer_id).address, amount, secrethash, fee_cap, timeout,
                                           limits, asset)
    except RoutingError as exc:
        raise OperationRefused(f"{type(exc).__name__}: {exc}") from None
    except TransferFailed as exc:
        raise OperationRefused(str(exc)) from None
    status = {"succeeded": "accepted", "failed": "refused"}.get(outcome.status, "pending")
    return {"payment_id": outcome.payment_id, "amount": str(amount), "status": status, "routed": True,
            "chain": room.name, "chain_id": room.chain_id, "fees": str(outcome.fees),
            "reason": "; ".join(outcome.reasons) or None}
