"""Hypothesis: whatever its payer and payee do, a mediator never ends worse off than before the payment.

A pays C through B. B (honest, always online, seeing blocks at most half a reveal timeout apart: the
premise of the reveal timeout) runs the real machines. A may go silent at any time; C
(which knows the secret) may reveal it to B at any time, register it on chain at any time, or never;
either partner may close its channel; time advances in arbitrary steps. At the end, long after every
expiry, B's worst case is computed as the chain would settle it: from A, the transferred amount of A's
latest proof B holds plus A's locks in it whose secret was registered at or before their expiration; to
C, the best for C over every proof B ever signed on that channel, counted the same way.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from channeld import protocol as p
from channeld import wire
from channeld.wire import Lock, secrethash_of
from tests.protocol.network import REVEAL, Network, Node, channel_id_of

SECRET = b"\x42" * 32
HASH = secrethash_of(SECRET)


class Recording(Network):
    """Keeps every (transferred, locks) figure B ever signed toward C: C may hold any of them."""

    def __init__(self) -> None:
        super().__init__("ABC", {"B": p.FeePolicy(1, 1000)})
        self.signed_by_b: set[tuple[int, tuple[Lock, ...]]] = {(0, ())}

    def channel_do(self, node: Node, cid: bytes, event: object) -> None:
        super().channel_do(node, cid, event)
        if node.name == "B" and cid == channel_id_of("B", "C"):
            ours = node.channels[cid].our
            self.signed_by_b.add((ours.transferred, ours.locks))


class MediatorSafety(RuleBasedStateMachine):
    @initialize(amount=st.integers(1, 500))
    def pay(self, amount: int) -> None:
        self.net = Recording()
        self.net.open("A", "B")
        self.net.open("B", "C")
        self.net.pay("A", [["B", "C"]], amount, HASH)
        self.net.pump()

    @rule()
    def c_reveals_to_b(self) -> None:
        self.net.queue.append((self.net.nodes["C"], self.net.nodes["B"], wire.SecretReveal(SECRET)))
        self.net.pump()

    @rule()
    def c_registers_on_chain(self) -> None:
        self.net.register(SECRET)
        self.net.pump()

    @rule(silent=st.booleans())
    def a_silence(self, silent: bool) -> None:
        self.net.nodes["A"].silent = silent

    @rule(seconds=st.integers(1, REVEAL // 2))
    def a_moment_passes(self, seconds: int) -> None:
        self.net.tick(seconds)

    @rule(blocks=st.integers(2, 8))
    def a_while_passes(self, blocks: int) -> None:
        for _ in range(blocks):
            self.net.tick(REVEAL // 2)

    @rule(pair=st.sampled_from([("A", "B"), ("B", "A"), ("B", "C"), ("C", "B")]))
    def close(self, pair: tuple[str, str]) -> None:
        self.net.close(*pair)
        self.net.pump()

    def position(self) -> int:
        """B's gain from A minus its worst-case payout to C, as the chain would settle."""
        b = self.net.nodes["B"]
        upstream = b.channels[channel_id_of("A", "B")].partner
        gain = upstream.transferred + self.claimable(upstream.locks)
        loss = max(t + self.claimable(locks) for t, locks in self.net.signed_by_b)
        return gain - loss

    def claimable(self, locks: tuple[Lock, ...]) -> int:
        registry = self.net.registry
        return sum(x.amount for x in locks if registry.get(x.secrethash, x.expiration + 1) <= x.expiration)

    @invariant()
    def never_worse_off_in_the_end(self) -> None:
        if not hasattr(self, "net"):
            return
        saved = (self.net.now, self.net.queue.copy())
        # the worst case is judged once every lock's fate is decided: far past every expiry
        if self.net.now > max(lock.expiration for _, locks in self.net.signed_by_b for lock in locks) + 60:
            assert self.position() >= 0, (self.position(), saved)

    def teardown(self) -> None:
        if not hasattr(self, "net"):
            return
        for _ in range(30):
            self.net.tick(REVEAL // 2)
        assert self.position() >= 0


MediatorSafety.TestCase.settings = settings(max_examples=150, stateful_step_count=12, deadline=None)
TestMediatorSafety = MediatorSafety.TestCase
