"""What a user (through the API or the demo) asks of a node: pay, open, deposit, withdraw, close, settle.

Every request is checked (risk limits, state, amounts) before anything is signed or queued; a refused
request changes nothing. On-chain requests go through the outbox and return its operation status.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
from eth_utils import is_address, to_checksum_address

from channeld.chain import contract as hub
from channeld.errors import ChanneldError, LocalFault
from channeld.limits import LimitContext, RiskLedger, check_channel_open, check_onchain_spend
from channeld.node._batch_funding import deposit_operation, open_operation
from channeld.node._channels import ChannelEntry
from channeld.node._ledger import LedgerBook
from channeld.node._onchain import OperationStatus
from channeld.node._opens import open_salt
from channeld.node._records import Operation, addr_bytes
from channeld.node._refusals import RefusalBook
from channeld.node._rooms import ChainRoom, pick_room
from channeld.node._tokens import ETHER, NATIVE, check_holding, check_token
from channeld.protocol import (
    MAX_IN_FLIGHT,
    ActionClose,
    ActionCooperativeSettle,
    ActionPay,
    ActionWithdraw,
    ChannelStatus,
    EventPaymentRefused,
    EventPaymentSent,
    KnownKey,
    TooManyInFlight,
)
from channeld.transport import PeerUri

if TYPE_CHECKING:
    from channeld.node._node import Node
    from channeld.store import Namespace, Store

WITHDRAW_WINDOW = 3600
PARTNER_TIMEOUT = 30.0
# gas an open or deposit may burn, ERC-20 approve included (docs/gas.md: at most ~64k + ~46k): counted
# with the value against limits.min_onchain_reserve
SPEND_GAS_ALLOWANCE = 150_000


class OperationRefused(LocalFault):
    """A user request that the channel's state or the node's limits do not allow (nothing changed)."""


BATCH_CONSENT_TIMEOUT = 10.0
MAX_BATCH_OPEN = 400  # ~64 calldata bytes a channel: stays well inside a public mempool's 128 KiB
# gas per channel a batch open or top-up may burn, counted against limits.min_onchain_reserve
# (docs/gas.md: ~25-45k a channel, plus the one transfer)
BATCH_GAS_PER_CHANNEL = 75_000
BATCH_SCHEMES = ("auto", "ecdsa", "bls")


def peers_ids(peers: list[PeerUri]) -> list[bytes]:
    return [p.node_id for p in peers]


def _batch_scheme(scheme: str) -> str:
    if scheme not in BATCH_SCHEMES:
        raise OperationRefused(f"scheme {scheme[:20]!r} is not one of {', '.join(BATCH_SCHEMES)}")
    return scheme


def channel_json(cid: bytes, entry: ChannelEntry, chain: str | None = None) -> dict[str, Any]:
    s = entry.state
    return {"channel_id": "0x" + cid.hex(), "chain": chain or str(s.chain_id), "chain_id": s.chain_id,
            "contract": to_checksum_address(s.contract), "partner": "0x" + s.partner.address.hex(),
            "peer": entry.peer_id.hex(), "status": s.status.name.lower(), "token": entry.onchain.state.token,
            "our_deposit": str(s.our.deposit), "partner_deposit": str(s.partner.deposit),
            "our_withdrawn": str(s.our.withdrawn), "partner_withdrawn": str(s.partner.withdrawn),
            "our_balance": str(s.our_balance()), "partner_balance": str(s.partner_balance()),
            "our_nonce": s.our.nonce, "partner_nonce": s.partner.nonce, "in_flight": len(s.in_flight),
            "challenge_period": s.challenge_period, "settle_deadline": s.settle_deadline}


class NodeOperations:
    risk: LedgerBook
    # per channel, our proof the partner refused (node/_refusals.py): while it waits unaccepted, every
    # later proof would wait behind it at the partner, so new payments on that channel are refused
    refusals: RefusalBook
    _slots: dict[bytes, trio.Semaphore]

    def _self(self) -> Node:
        return self  # type: ignore[return-value]

    @property
    def ledger(self) -> RiskLedger:
        """What the node paid in the last hour, per peer and in total (the hourly budgets' ledger)."""
        return self.risk.ledger

    @ledger.setter
    def ledger(self, ledger: RiskLedger) -> None:
        self.risk.update(ledger)  # stored with the store round that signs the payment it counted

    # --- reading -------------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        node = self._self()
        return {"node_id": node.key.node_id, "address": node.key.address, "uri": node.uri,
                "listen": f"{node.config.node.listen.host}:{node.listen_port}", "chain_id": node.chain_id,
                "contract": node.contract, "channels": len(node.channels.channels),
                "peers": [p.hex() for p in node.peers.manager.sessions], "block": node.watcher.head,
                "chains": [room.as_json() for room in node.rooms]}

    def list_channels(self) -> list[dict[str, Any]]:
        return [self.channel(cid) for cid in list(self._self().channels.channels)]

    def channel(self, cid: bytes) -> dict[str, Any]:
        node = self._self()
        entry = node.channels.entry(cid)
        room = node.room_of(entry.ns)
        shown = channel_json(cid, entry, room.name)
        token = addr_bytes(entry.onchain.state.token)
        asset = ETHER if token == NATIVE else room.assets.get(token)
        if asset is not None:  # known once read from the chain (node/_tokens.py)
            shown["asset"] = {"symbol": asset.symbol, "decimals": asset.decimals,
                              "our_balance": asset.human(entry.state.our_balance()),
                              "partner_balance": asset.human(entry.state.partner_balance())}
        return shown

    def _room(self, cid: bytes) -> ChainRoom:
        node = self._self()
        return node.room_of(node.channels.entry(cid).ns)

    async def list_payments(self, limit: int = 100, before: int | None = None, after: int | None = None,
                            payment_id: int | None = None) -> list[dict[str, Any]]:
        """Payments from the audit log, oldest first: the newest `limit` numbered below `before` (a seq),
        or with `after` the oldest `limit` numbered above it; only those of `payment_id`, if given.

        The log is read newest first off the trio loop and the read stops at `limit` payments (at `after`
        when following new payments), so a page costs the same after a million payments as after ten."""
        node = self._self()
        names = {room.ns: room.name for room in node.rooms}
        return await trio.to_thread.run_sync(
            lambda: self._payments_newest_first(node.store, names, limit, before, after, payment_id))

    @staticmethod
    def _payments_newest_first(store: Store, names: dict[Namespace, str], limit: int, before: int | None,
                               after: int | None, payment_id: int | None) -> list[dict[str, Any]]:
        kept: deque[dict[str, Any]] = deque(maxlen=limit)  # with `after`, the last kept are the oldest
        for entry in store.iter_audit_newest(before):
            if after is not None and entry.seq <= after:
                break
            record = entry.record
            if record.kind not in ("payment_sent", "payment_received"):
                continue
            paid = int.from_bytes(record.payment_id, "big")
            if payment_id is not None and paid != payment_id:
                continue
            ns = record.namespace
            kept.append({"seq": entry.seq, "at_ms": entry.timestamp_ms, "kind": record.kind,
                         "chain": names.get(ns, str(ns.chain_id)), "chain_id": ns.chain_id,
                         "contract": to_checksum_address(ns.contract),
                         "channel_id": "0x" + record.channel_id.hex(), "amount": str(abs(record.amount)),
                         "payment_id": paid})
            if after is None and len(kept) == limit:
                break
        return list(reversed(kept))

    def operation(self, seq: int) -> OperationStatus:
        for room in self._self().rooms:  # outbox sequence numbers are unique across chains
            found = room.worker.operations.get(seq)
            if found is not None:
                return found
        raise OperationRefused(f"no operation {seq}")

    # --- payments ------------------------------------------------------------------------------------

    def _must_route(self, peer_id: bytes, room: ChainRoom | None, token: bytes | None,
                    metadata: bytes) -> bool:
        """No open channel with the peer; or none on the chain (and token) a payment request names."""
        from channeld.client._payreq import hash_from_metadata

        found = [e for _, e in self._self().channels.of_peer(peer_id) if e.state.status is ChannelStatus.OPEN]
        if not found:
            return True
        fits = [e for e in found if (room is None or e.ns == room.ns)
                and (token is None or addr_bytes(e.onchain.state.token) == token)]
        return not fits and hash_from_metadata(metadata) is not None

    def _payable(self, peer_id: bytes, amount: int, chain: str | None = None,
                 token: bytes | None = None) -> bytes:
        """Our channel with the peer (on `chain` and in `token`, if named) with the largest balance on
        our side."""
        node = self._self()
        room = None if chain is None else pick_room(node.rooms, chain)
        best: tuple[int, bytes] | None = None
        for cid, entry in node.channels.of_peer(peer_id):
            state = entry.state
            if room is not None and entry.ns != room.ns:
                continue
            if token is not None and addr_bytes(entry.onchain.state.token) != token:
                continue
            if state.status is ChannelStatus.OPEN and state.settle is None:
                balance = state.our_balance()
                if best is None or balance > best[0]:
                    best = (balance, cid)
        if best is None:
            where = "" if room is None else f" on chain {room.name}"
            raise OperationRefused(f"no open channel with node {peer_id.hex()}{where}")
        if best[0] < amount:
            raise OperationRefused(f"cannot pay {amount}: the channel's balance on our side is {best[0]}")
        return best[1]

    def note_refusal(self, outcome: EventPaymentSent | EventPaymentRefused) -> None:
        """Payment listener: remember on which channel the partner refused one of our proofs (a payment
        or a lock message; whether or not a caller still waits for it)."""
        if isinstance(outcome, EventPaymentRefused):
            self.refusals.note(outcome)

    def _check_not_stalled(self, cid: bytes) -> None:
        """Refuse at once while the partner's refusal of one of our proofs stands on this channel."""
        if not self.refusals.refused:
            return
        refused = self.refusals.standing(cid)
        if refused is None:
            return
        nonce, reason = refused.nonce, refused.reason
        if refused.permanent:
            raise OperationRefused(f"the partner refused our payment with nonce {nonce} for good (code "
                                   f"{refused.code}: {reason}); every later payment on channel 0x{cid.hex()} "
                                   "would wait behind it: close the channel")
        raise OperationRefused(f"the partner refused our payment with nonce {nonce} ({reason}); later "
                               f"payments on channel 0x{cid.hex()} would wait behind it until it is "
                               f"accepted (it is offered again, next in {refused.delay:g}s at most)")

    def _limits_for(self, peer_id: bytes) -> LimitContext:
        """The risk limits and ledger a payment to `peer_id` is checked against, as of now."""
        return LimitContext(self._self().config.limits, self.ledger, peer_id.hex(), time.time())

    async def _apply_pay(self, node: Node, cid: bytes, peer_id: bytes, payment_id: int, amount: int,
                         metadata: bytes) -> int:
        """Sign the payment (the protocol checks the risk limits first) and count it in the ledger."""
        while True:
            self._check_not_stalled(cid)  # a refusal may have come while this payment waited
            limits = self._limits_for(peer_id)
            try:
                round_no = node.channels.apply(cid, ActionPay(payment_id, amount, metadata, limits))
                break
            except TooManyInFlight:
                await node.channels.wait_next_round()  # the partner's acknowledgements free the window
        self.ledger = limits.recorded(amount)  # no checkpoint since the check: nothing slipped in
        return round_no

    async def _pay_in_slot(self, node: Node, cid: bytes, peer_id: bytes, amount: int,
                           timeout: float, metadata: bytes = b"") -> tuple[object, float, int]:
        payment_id = secrets.randbits(63)
        done = trio.Event()
        started = time.perf_counter()
        deadline = trio.current_time() + timeout
        with trio.move_on_at(deadline) as waiting:
            round_no = await self._apply_pay(node, cid, peer_id, payment_id, amount, metadata)
        if waiting.cancelled_caught:
            raise OperationRefused(f"{MAX_IN_FLIGHT} payments waited for the partner's acceptance for "
                                   f"{timeout}s; this one was not signed (nothing was paid)")
        node.channels.payment_results[payment_id] = done  # before any checkpoint: no outcome is missed
        with trio.move_on_at(deadline):
            await node.channels.wait_round(round_no)
            await done.wait()
        node.channels.payment_results.pop(payment_id, None)
        outcome = node.channels.payment_outcomes.pop(payment_id, None)
        return outcome, started, payment_id

    async def pay(self, peer_id: bytes, amount: int, timeout: float = PARTNER_TIMEOUT,
                  metadata: bytes = b"", max_fee: int | None = None,
                  chain: str | None = None, token: bytes | None = None) -> dict[str, Any]:
        """Pay `amount` to `peer_id` over our channel with it (on `chain`, if named, in `token`, if
        named); return once the partner accepted it. With no such channel, a payment request's
        (`metadata` carries its hash) is routed over that chain's graph.

        The risk limits are checked by the protocol before anything is signed (`RiskLimitExceeded`
        names the limit); a payment the partner refuses returns at once with its reason.
        """
        node = self._self()
        room = None if chain is None else pick_room(node.rooms, chain)
        if self._must_route(peer_id, room, token, metadata):
            from channeld.node._transfers import pay_routed  # multi-hop: no channel of ours reaches it

            limits = self._limits_for(peer_id)
            limits.check(amount)  # before route finding too, so the limit is what a refusal names
            return await pay_routed(node, peer_id, amount, metadata, timeout, max_fee, limits, room, token)
        cid = self._payable(peer_id, amount, chain, token)
        room = self._room(cid)
        room.check_usable()
        slots = self._slots.setdefault(cid, trio.Semaphore(MAX_IN_FLIGHT))
        async with slots:  # FIFO back-pressure: at most MAX_IN_FLIGHT of our payments wait for acceptance
            outcome, started, payment_id = await self._pay_in_slot(node, cid, peer_id, amount, timeout,
                                                                   metadata)
        result = {"payment_id": payment_id, "channel_id": "0x" + cid.hex(), "amount": str(amount),
                  "chain": room.name, "chain_id": room.chain_id}
        if isinstance(outcome, EventPaymentSent):
            node.metrics.latency.observe(time.perf_counter() - started)
            node.metrics.payments.labels("sent", "accepted").inc()
            return {**result, "status": "accepted", "nonce": outcome.nonce}
        node.metrics.payments.labels("sent", "pending" if outcome is None else "refused").inc()
        status = "pending" if outcome is None else "refused"
        return {**result, "status": status, "reason": getattr(outcome, "reason", None)}

    # --- on-chain ------------------------------------------------------------------------------------

    async def _queue(self, op: Operation, room: ChainRoom | None = None) -> OperationStatus:
        node = self._self()
        room = room or self._room(bytes(op.args[0]))
        await node.channels.wait_round(node.channels.enqueue_operation(op, room.ns))
        found = room.worker.latest(op.kind, op.channel_id)
        assert found is not None  # registered when its round committed
        return found

    async def connect(self, uri: str) -> bytes:
        return await self._self().peers.connect(uri)

    async def open_channel(self, uri: str, deposit: int, token: str | None = None,
                           challenge_period: int = 3600, chain: str | None = None) -> OperationStatus:
        node = self._self()
        room = pick_room(node.rooms, chain)
        room.check_usable()
        check_channel_open(node.config.limits, deposit)
        peer = PeerUri.parse(uri)
        if peer.node_id == node.node_id:
            raise OperationRefused("a channel needs another node")
        if not 0 < challenge_period < 1 << 64:
            raise OperationRefused(f"challenge period {challenge_period} is out of range")
        if token is not None and not is_address(token):
            raise OperationRefused(f"token {token[:60]!r} is not an address")
        await self._check_reserve(deposit if token is None else 0, room)
        await node.peers.connect(uri)
        partner = KnownKey(peer.node_id).address
        token_bytes = bytes(20) if token is None else addr_bytes(token)
        await check_token(room, token_bytes)
        # the salt records the head block, so a re-send after a crash can find this open on chain
        salt = open_salt(room.watcher.head)
        op = Operation("open", (partner, token_bytes, challenge_period, salt, deposit))
        return await self._queue(op, room)

    def _open_entry(self, cid: bytes) -> ChannelEntry:
        entry = self._self().channels.entry(cid)
        if entry.state.status is not ChannelStatus.OPEN:
            raise OperationRefused(f"channel 0x{cid.hex()} is {entry.state.status.name.lower()}, not open")
        return entry

    async def deposit(self, cid: bytes, amount: int) -> OperationStatus:
        entry = self._open_entry(cid)
        if amount <= 0:
            raise OperationRefused("a deposit must be positive")
        total = entry.state.our.deposit + amount
        check_channel_open(self._self().config.limits, total)
        sent = amount if entry.onchain.state.token == hub.ETHER else 0
        await self._check_reserve(sent, self._room(cid))
        await check_holding(self._room(cid), addr_bytes(entry.onchain.state.token))
        return await self._queue(Operation("deposit", (cid, total)))

    async def _check_reserve(self, value: int, room: ChainRoom,
                             gas: int = SPEND_GAS_ALLOWANCE) -> None:
        """Refuse an open or deposit sending `value` wei (plus its gas) that would take our account below
        `limits.min_onchain_reserve`. Closes, disputes and settles are never held to it: they protect
        the funds the reserve is kept for. Each chain's account balance is its own."""
        node = self._self()
        backend = room.chain.backend
        balance = await room.chain.run(backend.balance, node.key.address)
        base_fee, priority = await room.chain.run(backend.fee_basis)
        spend = value + gas * (2 * base_fee + priority)  # the sender's own fee cap
        check_onchain_spend(node.config.limits, balance, spend)

    async def withdraw(self, cid: bytes, amount: int, to: str | None = None) -> OperationStatus | None:
        """Ask the partner to co-sign; the transaction is queued when its signature arrives."""
        entry = self._open_entry(cid)
        if amount <= 0:
            raise OperationRefused("a withdraw must be positive")
        total = entry.state.our.withdrawn + amount
        expiry = max(self._room(cid).watcher.chain_time, entry.state.now) + WITHDRAW_WINDOW
        receiver = None if to is None else addr_bytes(to)
        return await self._act_then_wait(cid, ActionWithdraw(total, expiry, receiver), "withdraw")

    async def close(self, cid: bytes, force: bool = False) -> OperationStatus | None:
        self._open_entry(cid)
        if force:
            await self._self().channels.handle(cid, ActionClose())
            return self._room(cid).worker.latest("close", cid)
        return await self._act_then_wait(cid, ActionCooperativeSettle(), "coop")

    async def _act_then_wait(self, cid: bytes, action: object, kind: str) -> OperationStatus | None:
        node = self._self()
        with node.bus.subscribe() as events:
            await node.channels.handle(cid, action)
            with trio.move_on_after(PARTNER_TIMEOUT):
                async for event in events:
                    found = self._room(cid).worker.latest(kind, cid)
                    if event.kind == "transaction_queued" and event.channel_id == cid and found is not None:
                        return found
        return None

    # --- batches (node/_batch.py) --------------------------------------------------------------------

    async def batch_withdraw(self, min_amount: int = 0, to: str | None = None, scheme: str = "auto",
                             timeout: float = BATCH_CONSENT_TIMEOUT, chain: str | None = None
                             ) -> list[dict[str, Any]]:
        """Withdraw our balance from every open channel holding at least `min_amount` (on `chain` only,
        if named), one transaction per chain and token, paid to `to` (default: our address); partners who
        do not consent in time are left out."""
        from channeld.wire import BATCH_WITHDRAW

        if min_amount < 0:
            raise OperationRefused("the minimum amount must not be negative")
        receiver = None if to is None else addr_bytes(to)
        return await self._self().batch.run_batches(BATCH_WITHDRAW, scheme=_batch_scheme(scheme),
                                                     min_amount=min_amount, receiver=receiver,
                                                     timeout=timeout, chain=self._named_room(chain))

    async def batch_close(self, scheme: str = "auto", to: str | None = None,
                          timeout: float = BATCH_CONSENT_TIMEOUT, chain: str | None = None
                          ) -> list[dict[str, Any]]:
        """Close every open channel (on `chain` only, if named) cooperatively, one transaction per chain
        and token: each partner is paid its balance, ours go to `to` (default: our address)."""
        from channeld.wire import BATCH_CLOSE

        receiver = None if to is None else addr_bytes(to)
        return await self._self().batch.run_batches(BATCH_CLOSE, scheme=_batch_scheme(scheme),
                                                     receiver=receiver, timeout=timeout,
                                                     chain=self._named_room(chain))

    def _named_room(self, chain: str | None) -> ChainRoom | None:
        """The room `chain` names (`UnknownChain` if none), or None for every chain."""
        return None if chain is None else pick_room(self._self().rooms, chain)

    async def batch_open(self, uris: list[str], deposit: int, token: str | None = None,
                         challenge_period: int = 3600, chain: str | None = None) -> dict[str, Any]:
        """Open a channel with each of `uris`, `deposit` each, in one transaction on `chain` (default: the
        node's only chain; answered once mined). Every URI is checked and dialled, and the limits checked
        per channel and for the total, before anything is queued."""
        node = self._self()
        room = pick_room(node.rooms, chain)
        room.check_usable()
        peers = self._batch_partners(uris)
        if deposit <= 0:
            raise OperationRefused("a batch open's deposit must be positive")
        check_channel_open(node.config.limits, deposit)
        if not 0 < challenge_period < 1 << 64:
            raise OperationRefused(f"challenge period {challenge_period} is out of range")
        if token is not None and not is_address(token):
            raise OperationRefused(f"token {token[:60]!r} is not an address")
        total = deposit * len(peers)
        batch_gas = BATCH_GAS_PER_CHANNEL * len(peers)
        await self._check_reserve(total if token is None else 0, room, batch_gas)
        for uri in uris:
            try:
                await node.peers.connect(uri)
            except (ChanneldError, OSError) as exc:
                raise OperationRefused(f"partner {uri[:120]} cannot be reached: {exc}") from exc
        token_bytes = bytes(20) if token is None else addr_bytes(token)
        await check_token(room, token_bytes)
        partners = [KnownKey(p.node_id).address for p in peers]
        salt = open_salt(room.watcher.head)
        op = open_operation(token_bytes, challenge_period, salt, partners, [deposit] * len(peers))
        status = await node.batch.submit_funding(op, token_bytes, total, room)
        return {"chain": room.name, "partners": ["0x" + p.hex() for p in peers_ids(peers)],
                "deposit": str(deposit), "total": str(total), "operation": status.as_json()}

    def _batch_partners(self, uris: list[str]) -> list[PeerUri]:
        node = self._self()
        if not uris:
            raise OperationRefused("a batch open needs at least one partner")
        if len(uris) > MAX_BATCH_OPEN:
            raise OperationRefused(f"a batch open takes at most {MAX_BATCH_OPEN} partners, got {len(uris)}")
        peers: list[PeerUri] = []
        for uri in uris:
            try:
                peers.append(PeerUri.parse(uri))
            except ChanneldError as exc:
                raise OperationRefused(f"partner URI {uri[:120]!r} is not valid: {exc}") from exc
        ids = peers_ids(peers)
        if node.node_id in ids:
            raise OperationRefused("a channel needs another node")
        if len(set(ids)) != len(ids):
            raise OperationRefused("a partner is named twice in the batch")
        return peers

    async def batch_deposit(self, amount: int, token: str | None = None, chain: str | None = None
                            ) -> dict[str, Any]:
        """Raise our deposit by `amount` in every open channel on `chain` (default: the node's only chain)
        in `token` (default ether), one transaction; refused whole if any channel would exceed the
        channel limit."""
        node = self._self()
        room = pick_room(node.rooms, chain)
        room.check_usable()
        if amount <= 0:
            raise OperationRefused("a batch deposit must be positive")
        if token is not None and not is_address(token):
            raise OperationRefused(f"token {token[:60]!r} is not an address")
        token_cs = hub.ETHER if token is None else to_checksum_address(token)
        totals: dict[bytes, int] = {}
        for cid, entry in node.channels.channels.items():
            if entry.state.status is not ChannelStatus.OPEN or entry.state.settle is not None:
                continue
            if entry.ns != room.ns or to_checksum_address(entry.onchain.state.token) != token_cs:
                continue
            totals[cid] = entry.state.our.deposit + amount
            check_channel_open(node.config.limits, totals[cid])
        if not totals:
            raise OperationRefused(f"no open channel on chain {room.name} to top up in that token")
        total = amount * len(totals)
        batch_gas = BATCH_GAS_PER_CHANNEL * len(totals)
        await self._check_reserve(total if token is None else 0, room, batch_gas)
        token_bytes = addr_bytes(token_cs)
        await check_holding(room, token_bytes)
        status = await node.batch.submit_funding(deposit_operation(token_bytes, totals), token_bytes, total,
                                                 room)
        return {"chain": room.name, "channels": ["0x" + c.hex() for c in totals], "amount": str(amount),
                "total": str(total), "operation": status.as_json()}

    async def settle(self, cid: bytes) -> OperationStatus:
        node = self._self()
        state = node.channels.entry(cid).state
        if state.status is not ChannelStatus.CLOSED:
            raise OperationRefused(f"channel 0x{cid.hex()} is {state.status.name.lower()}, not closed")
        chain_time = self._room(cid).watcher.chain_time
        if chain_time <= state.settle_deadline:
            raise OperationRefused(f"the challenge period ends at chain time {state.settle_deadline}; "
                                   f"it is now {chain_time}")
        return await self._queue(Operation("settle", (cid,)))

    # --- store ---------------------------------------------------------------------------------------

    async def backup(self, path: Path) -> int:
        store = self._self().store
        if path.exists():
            raise OperationRefused(f"{path} exists; a backup never overwrites a file")
        return await trio.to_thread.run_sync(store.backup, path)

    def audit_verify(self) -> dict[str, Any]:
        verdict = self._self().store.verify_audit()
        return {"ok": verdict.ok, "entries": verdict.entries, "first_bad": verdict.first_bad,
                "reason": verdict.reason}

    async def audit_export(self, path: Path) -> int:
        store = self._self().store
        if path.exists():
            raise OperationRefused(f"{path} exists; an export never overwrites a file")

        def write() -> int:
            with open(path, "xb") as out:
                return store.export_audit(out)

        return await trio.to_thread.run_sync(write)
