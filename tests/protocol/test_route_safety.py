"""Hypothesis over a whole route A-B-C-D: the payer and the target may go silent (or deaf) at any moment,
either end may come back, anyone may close a channel, and time passes in steps shorter than the reveal
timeout. The mediators B and C stay online and honest. Judged as the chain would settle, long after every
expiry: neither mediator ends worse off than before, the payer never pays more than amount plus fees,
and if the target stayed online it was paid in full exactly when the payer paid.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from channeld import protocol as p
from channeld.wire import Lock, secrethash_of
from tests.protocol.network import REVEAL, Network, Node, channel_id_of

SECRET = b"\x5a" * 32
HASH = secrethash_of(SECRET)
ENDS = st.sampled_from(["A", "D"])


class Recording(Network):
    """Every (transferred, locks) figure each node ever signed on each channel: its partner may hold any."""

    def __init__(self) -> None:
        super().__init__("ABCD", {"B": p.FeePolicy(2, 1000), "C": p.FeePolicy(1, 0)})
        self.signed: dict[tuple[str, bytes], set[tuple[int, tuple[Lock, ...]]]] = {}

    def channel_do(self, node: Node, cid: bytes, event: object) -> None:
        super().channel_do(node, cid, event)
        ours = node.channels[cid].our
        self.signed.setdefault((node.name, cid), {(0, ())}).add((ours.transferred, ours.locks))


class RouteSafety(RuleBasedStateMachine):
    @initialize(amount=st.integers(1, 400))
    def pay(self, amount: int) -> None:
        self.amount = amount
        self.net = Recording()
        for a, b in ("AB", "BC", "CD"):
            self.net.open(a, b)
        self.net.request("D", SECRET, amount)
        self.net.pay("A", [["B", "C", "D"]], amount, HASH)
        self.fees = self.net.route("A", ["B", "C", "D"], amount).fees
        self.target_always_online = True

    @rule(name=ENDS, silent=st.booleans())
    def silence(self, name: str, silent: bool) -> None:
        self.net.nodes[name].silent = silent
        if name == "D" and silent:
            self.target_always_online = False

    @rule(deaf=st.booleans())
    def payer_deafness(self, deaf: bool) -> None:
        self.net.nodes["A"].deaf = deaf

    @rule()
    def deliver(self) -> None:
        self.net.pump()

    @rule(seconds=st.integers(1, REVEAL // 2))
    def a_moment_passes(self, seconds: int) -> None:
        self.net.tick(seconds)

    @rule(blocks=st.integers(2, 6))
    def a_while_passes(self, blocks: int) -> None:
        for _ in range(blocks):
            self.net.tick(REVEAL // 2)

    @rule(pair=st.sampled_from(["AB", "BA", "BC", "CB", "CD", "DC"]))
    def close(self, pair: str) -> None:
        if not self.net.nodes[pair[0]].silent:
            self.net.close(pair[0], pair[1])
            self.net.pump()

    def claimable(self, locks: tuple[Lock, ...]) -> int:
        registry = self.net.registry
        return sum(x.amount for x in locks if registry.get(x.secrethash, x.expiration + 1) <= x.expiration)

    def position(self, name: str) -> int:
        """What `name` surely gets from its partners' proofs it holds, minus the most any partner can get
        from a proof `name` ever signed."""
        total = 0
        for cid, state in self.net.nodes[name].channels.items():
            gain = state.partner.transferred + self.claimable(state.partner.locks)
            loss = max(t + self.claimable(locks) for t, locks in self.net.signed.get((name, cid), {(0, ())}))
            total += gain - loss
        return total

    def teardown(self) -> None:
        if not hasattr(self, "net"):
            return
        self.net.pump()
        for _ in range(40):
            self.net.tick(REVEAL // 2)
        b, c, a, d = (self.position(n) for n in "BCAD")
        assert b >= 0 and c >= 0, (b, c)
        assert a >= -(self.amount + self.fees)
        if self.target_always_online:
            assert d in (0, self.amount), d
            assert (d == self.amount) == (a < 0), (a, d)


RouteSafety.TestCase.settings = settings(max_examples=120, stateful_step_count=12, deadline=None)
TestRouteSafety = RouteSafety.TestCase


def test_positions_measure_a_plain_success() -> None:
    machine = RouteSafety()
    machine.pay(100)
    machine.deliver()
    assert [machine.position(n) for n in "ABCD"] == [-(100 + machine.fees), 3, 1, 100]  # B: 2 + ceil(0.101)
    assert channel_id_of("A", "B") in machine.net.nodes["A"].channels
