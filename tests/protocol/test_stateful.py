"""Two participants, random payments both ways, deposits, withdrawals, a lossy reordering duplicating
network and restarts from persisted records; after every step money is conserved, nonces only grow,
every held partner proof was really signed by the partner, and once everything is delivered both agree.
"""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from channeld import protocol as p
from channeld import wire
from channeld.errors import LocalFault, PeerFault
from tests.protocol.pair import NOW, Peer, make_peer

SIDES = st.sampled_from([0, 1])


class TwoParticipants(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.peers: list[Peer] = [make_peer("alice", "bob"), make_peer("bob", "alice")]
        self.addresses = [peer.signer.address for peer in self.peers]
        self.network: list[list[bytes]] = [[], []]          # network[i]: bytes travelling to peer i
        self.chain_events: list[list[object]] = [[], []]     # chain events peer i has not seen yet
        self.deposit = [0, 0]
        self.withdrawn = [0, 0]
        self.signed: list[set[wire.BalanceProof]] = [set(), set()]
        self.nonces = [(0, 0), (0, 0)]
        self.payment_ids = 0

    # --- plumbing ------------------------------------------------------------------------------------

    def feed(self, i: int, event: object) -> None:
        """Give peer i an input; carry out its effects the way a node would."""
        peer = self.peers[i]
        try:
            effects = peer.feed(event)
        except PeerFault as exc:
            if isinstance(event, wire.Payment):
                self.network[1 - i].append(wire.encode(p.refusal_for(peer.state, event, exc)))
            return
        for effect in effects:
            if isinstance(effect, p.Send):
                if isinstance(effect.message, wire.Payment):
                    self.signed[i].add(effect.message.balance_proof)
                self.network[1 - i].append(wire.encode(effect.message))
            elif isinstance(effect, p.ContractSendWithdraw):
                self.execute_withdraw(effect)
        peer.outbox.clear()

    def execute_withdraw(self, tx: p.ContractSendWithdraw) -> None:
        who = self.addresses.index(tx.participant)
        if tx.total_withdraw > self.withdrawn[who]:
            self.withdrawn[who] = tx.total_withdraw
            for queue in self.chain_events:
                queue.append(p.ContractReceiveWithdraw(tx.participant, tx.total_withdraw))

    # --- rules ---------------------------------------------------------------------------------------

    @initialize(first=st.integers(0, 1000), second=st.integers(0, 1000))
    def opening_deposits(self, first: int, second: int) -> None:
        for i, amount in enumerate((first, second)):
            self.deposit_more(i, amount)
        for i in (0, 1):
            while self.chain_events[i]:
                self.feed(i, self.chain_events[i].pop(0))

    @rule(i=SIDES, amount=st.integers(1, 400))
    def deposit_more(self, i: int, amount: int) -> None:
        if amount == 0:
            return
        self.deposit[i] += amount
        for queue in self.chain_events:
            queue.append(p.ContractReceiveDeposit(self.addresses[i], self.deposit[i]))

    @precondition(lambda self: self.chain_events[0] or self.chain_events[1])
    @rule(i=SIDES)
    def chain_event_arrives(self, i: int) -> None:
        if self.chain_events[i]:
            self.feed(i, self.chain_events[i].pop(0))

    @rule(i=SIDES, amount=st.integers(1, 300))
    def pay(self, i: int, amount: int) -> None:
        self.payment_ids += 1
        with contextlib.suppress(LocalFault):
            self.feed_local(i, p.ActionPay(self.payment_ids, amount))

    @rule(i=SIDES, amount=st.integers(1, 300))
    def withdraw(self, i: int, amount: int) -> None:
        side = self.peers[i].state.our
        with contextlib.suppress(LocalFault):
            self.feed_local(i, p.ActionWithdraw(side.effective_withdrawn + amount, NOW + 3600))

    def feed_local(self, i: int, action: object) -> None:
        p.handle(self.peers[i].state, action, self.peers[i].signer)  # raises LocalFault before any change
        self.feed(i, action)

    @precondition(lambda self: self.network[0] or self.network[1])
    @rule(i=SIDES, data=st.data())
    def deliver_one(self, i: int, data: st.DataObject) -> None:
        if self.network[i]:
            at = data.draw(st.integers(0, len(self.network[i]) - 1), label="reorder")
            self.feed(i, wire.decode(self.network[i].pop(at)))

    @precondition(lambda self: self.network[0] or self.network[1])
    @rule(i=SIDES, data=st.data())
    def lose_one(self, i: int, data: st.DataObject) -> None:
        if self.network[i]:
            self.network[i].pop(data.draw(st.integers(0, len(self.network[i]) - 1), label="lose"))

    @precondition(lambda self: self.network[0] or self.network[1])
    @rule(i=SIDES, data=st.data())
    def duplicate_one(self, i: int, data: st.DataObject) -> None:
        if self.network[i]:
            at = data.draw(st.integers(0, len(self.network[i]) - 1), label="duplicate")
            self.network[i].append(self.network[i][at])

    @rule(i=SIDES)
    def restart(self, i: int) -> None:
        before = self.peers[i].state
        self.peers[i].restart()
        assert self.peers[i].state == before, "the persisted record is the state"
        self.feed(i, p.ActionReconnected())

    @rule()
    def reconnect(self) -> None:
        self.feed(0, p.ActionReconnected())
        self.feed(1, p.ActionReconnected())

    @rule()
    def converge(self) -> None:
        """Deliver everything, chain events included, reconnecting until quiet: both views agree."""
        for _ in range(10):
            while any(self.chain_events) or any(self.network):
                for i in (0, 1):
                    while self.chain_events[i]:
                        self.feed(i, self.chain_events[i].pop(0))
                    while self.network[i]:
                        self.feed(i, wire.decode(self.network[i].pop(0)))
            waiting = self.peers[0].state.in_flight or self.peers[1].state.in_flight
            if not (waiting or self.pending_withdraw()):
                break
            self.reconnect()
        a, b = self.peers[0].state, self.peers[1].state
        assert a.in_flight == () and b.in_flight == () and a.held == () and b.held == ()
        assert a.our.proof == b.partner.proof and b.our.proof == a.partner.proof
        assert (a.our.deposit, a.partner.deposit) == (b.partner.deposit, b.our.deposit) == tuple(self.deposit)
        assert a.our_balance() == b.partner_balance() and b.our_balance() == a.partner_balance()

    def pending_withdraw(self) -> bool:
        ours = [peer.state.our.withdraw for peer in self.peers]
        return any(w is not None and w.partner_signature is None for w in ours)

    # --- invariants ----------------------------------------------------------------------------------

    @invariant()
    def money_is_conserved(self) -> None:
        a, b = self.peers[0].state, self.peers[1].state
        held = sum(self.deposit) - sum(self.withdrawn)
        assert held >= 0
        # true payouts with the latest proof each side really signed, counting every signed withdraw
        wd = [max(self.withdrawn[0], a.our.effective_withdrawn),
              max(self.withdrawn[1], b.our.effective_withdrawn)]
        payout_a = self.deposit[0] - wd[0] - a.our.transferred + b.our.transferred
        payout_b = self.deposit[1] - wd[1] - b.our.transferred + a.our.transferred
        assert payout_a >= 0 and payout_b >= 0, (payout_a, payout_b)
        assert payout_a + payout_b == sum(self.deposit) - sum(wd)
        for state in (a, b):
            assert state.our_balance() >= 0 and state.partner_balance() >= 0
            assert state.our_balance() + state.partner_balance() == state.total_held()

    @invariant()
    def nonces_only_grow(self) -> None:
        for i, peer in enumerate(self.peers):
            now = (peer.state.our.nonce, peer.state.partner.nonce)
            assert now[0] >= self.nonces[i][0] and now[1] >= self.nonces[i][1]
            self.nonces[i] = now

    @invariant()
    def partner_proofs_were_really_signed_by_the_partner(self) -> None:
        for i, peer in enumerate(self.peers):
            proof = peer.state.partner.proof
            if proof is not None:
                assert proof in self.signed[1 - i]
                partners_latest = self.peers[1 - i].state.our
                assert proof == partners_latest.proof or proof.nonce < partners_latest.nonce

    def teardown(self) -> None:
        """Converge, then settle cooperatively: the payouts are exactly what the contract holds."""
        self.converge()
        self.feed(0, p.ActionCooperativeSettle())
        self.converge()
        submit = self.peers[0].effects[-1]
        assert isinstance(submit, p.ContractSendCooperativeSettle)
        assert submit.amount1 + submit.amount2 == sum(self.deposit) - sum(self.withdrawn)


TwoParticipants.TestCase.settings = settings(
    max_examples=300, stateful_step_count=60, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_two_participants = TwoParticipants.TestCase
