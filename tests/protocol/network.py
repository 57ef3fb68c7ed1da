"""Several nodes' pure machines wired together in memory: channels, payment roles, a toy chain.

What the node daemon does for real (persist, send, submit) is done here by a message pump: channel
effects are routed to the partner's channel (via the wire codec, so every message is really encoded),
`SecretReveal`s to the partner's payment machine, `ChannelDo`s back into the node's own channels, and
secret registrations to a registry that reports them to every node at once.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from channeld import protocol as p
from channeld import wire
from channeld.errors import PeerFault
from tests.protocol.pair import CHAIN_ID, CONTRACT, NOW, key_of

REVEAL = 60
Payment = p.InitiatorState | p.MediatorState | p.TargetState


@dataclass
class Node:
    name: str
    signer: p.Signer
    fees: p.FeePolicy = field(default_factory=p.FeePolicy)
    channels: dict[bytes, p.ChannelState] = field(default_factory=dict)
    payments: dict[bytes, Payment] = field(default_factory=dict)
    events: list[object] = field(default_factory=list)
    refusals: list[PeerFault] = field(default_factory=list)
    reveal_timeout: int = REVEAL
    silent: bool = False  # neither sends nor receives
    deaf: bool = False  # sends, but receives nothing

    @property
    def address(self) -> bytes:
        return self.signer.address

    def by_partner(self) -> dict[bytes, p.ChannelState]:
        return {s.partner.address: s for s in self.channels.values()}

    def channel_with(self, other: Node) -> p.ChannelState:
        return self.by_partner()[other.address]


def channel_id_of(a: str, b: str) -> bytes:
    return p.keccak256(("channel " + "-".join(sorted((a, b)))).encode())


class Network:
    def __init__(self, names: str, fees: dict[str, p.FeePolicy] | None = None) -> None:
        self.nodes = {n: Node(n, p.Signer(key_of("node " + n)), (fees or {}).get(n, p.FeePolicy()))
                      for n in names}
        self.by_address = {node.address: node for node in self.nodes.values()}
        self.queue: deque[tuple[Node, Node, wire.Message]] = deque()
        self.now = NOW
        self.registry: dict[bytes, int] = {}
        self.closes: list[tuple[str, bytes]] = []

    def open(self, a: str, b: str, deposit_a: int = 1000, deposit_b: int = 1000) -> None:
        na, nb = self.nodes[a], self.nodes[b]
        cid = channel_id_of(a, b)
        for me, other in ((na, nb), (nb, na)):
            state = p.new_channel(CHAIN_ID, CONTRACT, cid, 500, me.address, other.signer.public_key,
                                  me.reveal_timeout)
            for event in (p.ActionTick(self.now), p.ContractReceiveDeposit(na.address, deposit_a),
                          p.ContractReceiveDeposit(nb.address, deposit_b)):
                state, _ = p.handle(state, event, me.signer)
            me.channels[cid] = state

    # --- applying inputs --------------------------------------------------------------------------------

    def channel_do(self, node: Node, cid: bytes, event: object) -> None:
        new, effects = p.handle(node.channels[cid], event, node.signer)
        node.channels[cid] = new
        self.channel_effects(node, cid, effects)

    def channel_effects(self, node: Node, cid: bytes, effects: list[p.Effect]) -> None:
        partner = self.by_address[node.channels[cid].partner.address]
        for effect in effects:
            if isinstance(effect, p.Send):
                self.queue.append((node, partner, effect.message))
            elif isinstance(effect, p.ContractSendRegisterSecret):
                self.register(effect.secret)
            elif isinstance(effect, p.ContractSendClose):
                self.closes.append((node.name, cid))
            elif isinstance(effect, p.EventLockReceived):
                self.lock_received(node, effect)
            elif isinstance(effect, (p.EventLockUnlocked, p.EventLockExpired)):
                self.to_payment(node, effect.secrethash, effect)

    def lock_received(self, node: Node, event: p.EventLockReceived) -> None:
        target = node.payments.get(event.lock.secrethash)
        if isinstance(target, p.TargetState):
            self.payment_effects(node, *p.handle_target(target, event))
            return
        payer = node.channels[event.channel_id]
        self.payment_effects(node, *p.start_mediation(event, payer, node.by_partner(), node.fees))

    def to_payment(self, node: Node, secrethash: bytes, event: object) -> None:
        payment = node.payments.get(secrethash)
        if isinstance(payment, p.MediatorState):
            self.payment_effects(node, *p.handle_mediator(payment, event))
        elif isinstance(payment, p.TargetState):
            self.payment_effects(node, *p.handle_target(payment, event))
        elif isinstance(payment, p.InitiatorState):
            self.payment_effects(node, *p.handle_initiator(payment, event, node.channels))

    def payment_effects(self, node: Node, state: Payment, effects: list[p.TransferEffect]) -> None:
        key = state.request.secrethash if isinstance(state, p.TargetState) else state.secrethash
        assert p.transfer_from_record(p.transfer_to_record(state)) == state  # every state can be stored
        node.payments[key] = state
        for effect in effects:
            if isinstance(effect, p.SendSecretReveal):
                channel = node.channels[effect.channel_id]  # sent at once, on an open channel (as a node)
                if channel.status is p.ChannelStatus.OPEN:
                    partner = self.by_address[channel.partner.address]
                    self.queue.append((node, partner, wire.SecretReveal(effect.secret)))
            elif not isinstance(effect, p.ChannelDo):
                node.events.append(effect)
            elif type(effect.action) in p.TRANSITIONS[node.channels[effect.channel_id].status]:
                self.channel_do(node, effect.channel_id, effect.action)
            else:
                # closed on chain: proofs can no longer change; the chain settles what the locks become
                node.events.append(("skipped", effect))

    def register(self, secret: bytes) -> None:
        """The registry keeps the first registration; every node's channels and payments hear of it."""
        secrethash = wire.secrethash_of(secret)
        if secrethash in self.registry:
            return
        self.registry[secrethash] = self.now
        event = p.ContractReceiveSecretRegistered(secret, self.now)
        for node in self.nodes.values():
            if node.silent:
                continue  # offline: it hears of the chain only when it comes back
            for cid, state in list(node.channels.items()):
                if state.status is not p.ChannelStatus.SETTLED:
                    self.channel_do(node, cid, event)
            self.to_payment(node, secrethash, event)

    def close(self, closer: str, other: str) -> None:
        """`closer` closes its channel with `other` on chain; online participants see the event."""
        cid = channel_id_of(closer, other)
        event = p.ContractReceiveClosed(self.nodes[closer].address, self.now + 500)
        for name in (closer, other):
            node = self.nodes[name]
            if not node.silent and node.channels[cid].status is p.ChannelStatus.OPEN:
                self.channel_do(node, cid, event)

    # --- driving ----------------------------------------------------------------------------------------

    def pay(self, payer: str, routes: list[list[str]], amount: int, secrethash: bytes, fee_cap: int = 10**9,
            payment_id: int = 1) -> None:
        node = self.nodes[payer]
        found = tuple(self.route(payer, hops, amount) for hops in routes)
        self.payment_effects(node, *p.start_payment(payment_id, node.address, amount, secrethash, fee_cap,
                                                    found, node.channels, self.now))

    def route(self, payer: str, hops: list[str], amount: int) -> p.Route:
        """A route with the fees each mediator's policy asks for, computed from the target backwards."""
        fees, flowing = 0, amount
        for name in reversed(hops[:-1]):
            before = self.nodes[name].fees.amount_in(flowing)
            fees, flowing = fees + before - flowing, before
        return p.Route(channel_id_of(payer, hops[0]), tuple(self.nodes[h].address for h in hops), fees)

    def request(self, target: str, secret: bytes, amount: int, valid_for: int = 3600) -> None:
        state = p.issue_request(secret, amount, self.now + valid_for, self.now, REVEAL)
        self.nodes[target].payments[state.request.secrethash] = state

    def pump(self) -> None:
        """Deliver messages until none is left; a silent node neither sends nor receives."""
        while self.queue:
            sender, receiver, msg = self.queue.popleft()
            if sender.silent or receiver.silent or receiver.deaf:
                continue
            msg = wire.decode(wire.encode(msg))
            try:
                self.deliver(sender, receiver, msg)
            except PeerFault as exc:
                receiver.refusals.append(exc)

    def deliver(self, sender: Node, receiver: Node, msg: wire.Message) -> None:
        if isinstance(msg, wire.SecretReveal):
            self.to_payment(receiver, wire.secrethash_of(msg.secret), msg)
            return
        cid = getattr(msg, "channel_id", None) or msg.balance_proof.channel_id  # type: ignore[attr-defined]
        self.channel_do(receiver, cid, msg)

    def tick(self, seconds: int) -> None:
        """Time passes: every channel sees it first, then every payment (which may act on channels)."""
        self.now += seconds
        tick = p.ActionTick(self.now)
        online = [node for node in self.nodes.values() if not node.silent]
        for node in online:
            for cid in list(node.channels):
                self.channel_do(node, cid, tick)
        for node in online:
            for secrethash in list(node.payments):
                self.to_payment(node, secrethash, tick)
        self.pump()

    def balances(self, name: str) -> dict[str, int]:
        """A node's own balance in each of its channels, keyed by partner name."""
        node = self.nodes[name]
        return {self.by_address[s.partner.address].name: s.our_balance() for s in node.channels.values()}

    def total(self, name: str) -> int:
        return sum(self.balances(name).values())
