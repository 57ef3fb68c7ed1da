"""Hypothesis: two participants add, unlock and expire locks both ways, mixed with payments, under a
reordering network with restarts from persisted records. After every step each view commits exactly to
its locks (amount and root), money is conserved, at most 32 locks pend per direction, no honest message is
ever refused, and once everything is delivered both views agree on every proof and lock.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from channeld import protocol as p
from channeld import wire
from channeld.errors import LocalFault
from tests.protocol.pair import Peer, make_pair

SIDES = st.sampled_from([0, 1])
SECRETS = [bytes([i]) * 32 for i in range(1, 7)]


class LockingPair(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        alice, bob = make_pair(1000, 1000)
        self.peers: list[Peer] = [alice, bob]
        self.wires: list[list[wire.Message]] = [[], []]  # wires[i]: messages travelling to peer i
        self.refused: list[Exception] = []

    def act(self, i: int, action: object) -> None:
        """A local action: refused (a LocalFault) with nothing changed, or its messages go on the wire."""
        peer = self.peers[i]
        before = peer.state
        try:
            peer.feed(action)
        except LocalFault:
            assert peer.state is before
            return
        self.wires[1 - i] += peer.outbox
        peer.outbox.clear()

    @rule(i=SIDES, amount=st.integers(1, 300), k=st.integers(0, len(SECRETS) - 1),
          lifetime=st.integers(600, 1200))
    def lock(self, i: int, amount: int, k: int, lifetime: int) -> None:
        state = self.peers[i].state
        secrethash = wire.secrethash_of(SECRETS[k])
        self.act(i, p.ActionSendLockedTransfer(k, amount, state.now + lifetime, secrethash, state.our.address,
                                               state.partner.address))

    @rule(i=SIDES, k=st.integers(0, len(SECRETS) - 1))
    def unlock(self, i: int, k: int) -> None:
        self.act(i, p.ActionUnlock(SECRETS[k], k))

    @rule(i=SIDES, k=st.integers(0, len(SECRETS) - 1))
    def expire(self, i: int, k: int) -> None:
        self.act(i, p.ActionExpireLock(wire.secrethash_of(SECRETS[k])))

    @rule(i=SIDES, amount=st.integers(1, 200))
    def pay(self, i: int, amount: int) -> None:
        self.act(i, p.ActionPay(7, amount))

    @rule(i=SIDES, pick=st.integers(0, 100))
    def deliver_one(self, i: int, pick: int) -> None:
        """Deliver one message to peer i, maybe out of order (the receiver holds it until the gap fills)."""
        queue = self.wires[i]
        if not queue:
            return
        msg = queue.pop(pick % len(queue))
        peer = self.peers[i]
        peer.feed(wire.decode(wire.encode(msg)))
        self.wires[1 - i] += peer.outbox
        peer.outbox.clear()

    @rule(i=SIDES)
    def restart(self, i: int) -> None:
        self.peers[i].restart()

    @rule(seconds=st.integers(1, 1500))
    def time_passes(self, seconds: int) -> None:
        """Both see the same block; what was sent before it is delivered first (so no lock is refused for
        having become too soon in transit)."""
        self.flush()
        now = self.peers[0].state.now + seconds
        for i in (0, 1):
            self.act(i, p.ActionTick(now))

    def flush(self) -> None:
        while self.wires[0] or self.wires[1]:
            for i in (0, 1):
                self.deliver_one(i, 0)

    @invariant()
    def each_view_commits_exactly_to_its_locks(self) -> None:
        for peer in self.peers:
            for side in (peer.state.our, peer.state.partner):
                assert len(side.locks) <= p.MAX_LOCKS
                assert side.locked == sum(lock.amount for lock in side.locks)
                root = bytes(32) if side.proof is None else side.proof.locks_root
                assert root == p.locks_root(side.locks)
            s = peer.state
            assert s.our_balance() + s.partner_balance() + s.our.locked + s.partner.locked == s.total_held()
            assert s.our_balance() >= 0

    @precondition(lambda self: not self.wires[0] and not self.wires[1])
    @invariant()
    def delivered_views_agree(self) -> None:
        alice, bob = (peer.state for peer in self.peers)
        if alice.in_flight or alice.locks_in_flight or bob.in_flight or bob.locks_in_flight:
            return  # a restart lost acknowledgements: they come back with the next re-establish
        assert alice.our.proof == bob.partner.proof and alice.our.locks == bob.partner.locks
        assert bob.our.proof == alice.partner.proof and bob.our.locks == alice.partner.locks

    def teardown(self) -> None:
        """Reconnect, deliver everything: both agree, nothing was refused."""
        for i in (0, 1):
            self.act(i, p.ActionReconnected())
        self.flush()
        alice, bob = (peer.state for peer in self.peers)
        assert not alice.locks_in_flight and not bob.locks_in_flight and not alice.held and not bob.held
        assert alice.our.proof == bob.partner.proof and alice.our.locks == bob.partner.locks
        assert bob.our.proof == alice.partner.proof and bob.our.locks == alice.partner.locks
        refusals = [m for q in self.peers for m in q.effects
                    if isinstance(m, p.Send) and isinstance(m.message, (wire.PaymentRefused, wire.Error))]
        assert refusals == []


LockingPair.TestCase.settings = settings(max_examples=120, stateful_step_count=30, deadline=None)
TestLockingPair = LockingPair.TestCase
