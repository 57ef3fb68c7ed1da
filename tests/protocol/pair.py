"""Two participants of one channel, in memory, with their outboxes (h11's ConnectionPair idea)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from channeld import protocol as p
from channeld import wire
from channeld.errors import PeerFault

CHAIN_ID = 31337
CONTRACT = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
CHANNEL_ID = p.keccak256(b"test channel")
CHALLENGE = 500
NOW = 1_700_000_000


def key_of(name: str) -> bytes:
    return p.keccak256(name.encode())


@dataclass
class Peer:
    """One participant: its key, its current state and the messages it has sent but not yet delivered."""

    signer: p.Signer
    state: p.ChannelState
    outbox: list[wire.Message] = field(default_factory=list)
    effects: list[p.Effect] = field(default_factory=list)
    persisted: bytes | None = None

    def feed(self, event: object) -> list[p.Effect]:
        """Apply one input; record the effects, queue the messages, keep the last persisted record."""
        new, effects = p.handle(self.state, event, self.signer)
        if new is not self.state and not effects:
            assert replace(new, now=self.state.now) == self.state, "only the clock may move unpersisted"
        elif new is not self.state:
            assert isinstance(effects[0], p.Persist), "a changed state must be persisted first"
            self.persisted = effects[0].record
        self.state = new
        self.effects += effects
        self.outbox += [e.message for e in effects if isinstance(e, p.Send)]
        return effects

    def restart(self) -> None:
        """Crash and come back from the last persisted record; undelivered outbox messages are lost."""
        if self.persisted is not None:
            # the node reads the chain's time again before it serves peers: the clock survives a restart
            self.state = replace(p.from_record(self.persisted), now=self.state.now)
        self.outbox.clear()


def make_peer(name: str, partner_name: str) -> Peer:
    signer = p.Signer(key_of(name))
    partner = p.Signer(key_of(partner_name))
    state = p.new_channel(CHAIN_ID, CONTRACT, CHANNEL_ID, CHALLENGE, signer.address, partner.public_key)
    peer = Peer(signer, state)
    peer.feed(p.ActionTick(NOW))
    return peer


def make_pair(deposit_a: int = 1000, deposit_b: int = 1000) -> tuple[Peer, Peer]:
    """Alice and Bob, both deposits seen by both."""
    alice, bob = make_peer("alice", "bob"), make_peer("bob", "alice")
    for peer in (alice, bob):
        peer.feed(p.ContractReceiveDeposit(alice.signer.address, deposit_a))
        peer.feed(p.ContractReceiveDeposit(bob.signer.address, deposit_b))
    return alice, bob


def deliver(sender: Peer, receiver: Peer) -> list[Exception]:
    """Deliver everything in `sender`'s outbox to `receiver`; refusals are collected, not raised."""
    refusals: list[Exception] = []
    while sender.outbox:
        msg = wire.decode(wire.encode(sender.outbox.pop(0)))
        try:
            receiver.feed(msg)
        except PeerFault as exc:
            refusals.append(exc)
    return refusals


def settle_all(a: Peer, b: Peer) -> None:
    while a.outbox or b.outbox:
        deliver(a, b)
        deliver(b, a)
