"""The direct-payment fast path gives exactly what the general machine gives, or hands the input over.

For random channel histories (payments both ways, deliveries out of order, held proofs, a cooperative
settle or a close under way) and random inputs (valid payments, and payments with a wrong nonce, amount,
channel, lock or signer; payments over the balance, with bad ids or metadata, over risk limits), `handle`
(fast path first) and `handle_general` (the status table and handlers only) must return equal states and
effects, or raise the same error with the same text. The common case must actually take the fast path.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channeld import protocol as p
from channeld import wire
from channeld.limits import LimitContext, RiskLedger, RiskLimits
from channeld.protocol._fastpath import fast_pay, fast_receive
from channeld.protocol._machine import handle_general
from tests.protocol.pair import CHANNEL_ID, Peer, make_pair, settle_all
from tests.protocol.test_locks import send_lock

Outcome = tuple[str, object]


def outcome(run: object, *args: object) -> Outcome:
    try:
        return ("ok", run(*args))  # type: ignore[operator]
    except Exception as exc:  # the comparison is the point: any error must be the same on both paths
        return (f"{type(exc).__name__}: {exc}", None)


def same_both_ways(peer: Peer, event: object) -> Outcome:
    """Apply `event` both ways, assert equal results, and return the fast one's."""
    fast = outcome(p.handle, peer.state, event, peer.signer)
    general = outcome(handle_general, peer.state, event, peer.signer)
    assert fast == general
    return fast


@dataclass(frozen=True)
class Step:
    payer_is_alice: bool
    amount: int
    mutation: str
    payment_id: int
    metadata_size: int
    deliver: str  # "now", "later" (kept back: the next one arrives first), "never"
    limit: int | None  # a per-payment risk limit on the payer, or None


MUTATIONS = ["none"] * 6 + ["nonce+1", "nonce-1", "amount", "channel", "locked", "signer", "transferred"]

steps = st.builds(
    Step,
    payer_is_alice=st.booleans(),
    amount=st.one_of(st.integers(1, 60), st.integers(-2, 0), st.integers(900, 1200)),
    mutation=st.sampled_from(MUTATIONS),
    payment_id=st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([2**64, -1])),
    metadata_size=st.sampled_from([0, 0, 5, 1024, 1025]),
    deliver=st.sampled_from(["now", "now", "now", "later", "never"]),
    limit=st.one_of(st.none(), st.integers(1, 100)),
)


def common_case(state: p.ChannelState, step: Step) -> bool:
    """A payment the fast path must take: open, not settling, a proof signed before, valid figures."""
    valid = (0 < step.amount <= state.our_balance() and step.metadata_size <= 1024
             and 0 <= step.payment_id < 2**64 and step.limit is None)
    return (valid and state.our.proof is not None and state.status is p.ChannelStatus.OPEN
            and state.settle is None and len(state.in_flight) + len(state.locks_in_flight) < p.MAX_IN_FLIGHT)


def pay(payer: Peer, step: Step) -> wire.Payment | None:
    limits = None
    if step.limit is not None:
        limits = LimitContext(RiskLimits(max_payment=step.limit), RiskLedger(), "peer", 0.0)
    action = p.ActionPay(step.payment_id, step.amount, b"m" * step.metadata_size, limits)
    if common_case(payer.state, step):
        assert fast_pay(payer.state, action, payer.signer) is not None, "the common case is the fast one"
    result, done = same_both_ways(payer, action)
    if result != "ok":
        return None
    assert isinstance(done, tuple)
    payer.state = done[0]
    sends = [e.message for e in done[1] if isinstance(e, p.Send)]
    assert len(sends) == 1 and isinstance(sends[0], wire.Payment)
    return sends[0]


def mutate(payment: wire.Payment, mutation: str, forger: p.Signer) -> wire.Payment:
    """The payment changed as a faulty or dishonest payer would send it, signed again by `forger`."""
    proof = payment.balance_proof
    changes: dict[str, object] = {
        "nonce+1": {"nonce": proof.nonce + 1}, "nonce-1": {"nonce": max(1, proof.nonce - 1)},
        "channel": {"channel_id": p.keccak256(b"another channel")},
        "locked": {"locked_amount": 5, "locks_root": p.keccak256(b"locks")},
        "transferred": {"transferred_amount": proof.transferred_amount + 1},
    }.get(mutation, {})
    if mutation == "amount":
        return replace(payment, amount=payment.amount + 1)
    proof = replace(proof, **changes)  # type: ignore[arg-type]
    digest = p.balance_proof_digest(proof.chain_id, proof.contract, proof.channel_id, proof.nonce,
                                    proof.transferred_amount, proof.locked_amount, proof.locks_root)
    return replace(payment, balance_proof=replace(proof, signature=forger.sign(digest)))


def receive(payee: Peer, payer: Peer, payment: wire.Payment, mutation: str) -> None:
    if mutation != "none":
        forger = p.Signer(p.keccak256(b"mallory")) if mutation == "signer" else payer.signer
        payment = mutate(payment, mutation, forger)
    state = payee.state
    if mutation == "none" and not state.held and payment.balance_proof.nonce == state.partner.nonce + 1 \
            and state.settle is None and state.status is p.ChannelStatus.OPEN:
        assert fast_receive(state, payment) is not None, "the common case is the fast one"
    result, done = same_both_ways(payee, payment)
    if result != "ok":
        return
    assert isinstance(done, tuple)
    payee.state = done[0]
    for effect in done[1]:
        if isinstance(effect, p.Send) and isinstance(effect.message, wire.PaymentAccepted):
            acknowledged = outcome(p.handle, payer.state, effect.message, payer.signer)
            if acknowledged[0] == "ok":
                assert isinstance(acknowledged[1], tuple)
                payer.state = acknowledged[1][0]


def ending(alice: Peer, bob: Peer, how: str) -> None:
    """Optionally put a cooperative settle or a close under way before the last inputs."""
    if how == "settle":
        outcome(lambda: setattr(alice, "state", p.handle(alice.state, p.ActionCooperativeSettle(),
                                                         alice.signer)[0]))
    elif how == "close":
        for peer in (alice, bob):
            peer.state = p.handle(peer.state, p.ContractReceiveClosed(alice.signer.address, 10**10),
                                  peer.signer)[0]


def start(withdrawn: tuple[int, int], locks: tuple[int, int]) -> tuple[Peer, Peer]:
    """A channel whose sides have withdrawn on chain and hold pending locks (the balance and the locks
    root the fast path must carry over)."""
    alice, bob = make_pair(1000, 1000)
    for owner, total in zip((alice, bob), withdrawn, strict=True):
        for peer in (alice, bob):
            if total:
                peer.feed(p.ContractReceiveWithdraw(owner.signer.address, total))
    for owner, count in zip((alice, bob), locks, strict=True):
        for i in range(count):
            send_lock(owner, 7 + i, secret_=bytes([owner is alice, i + 1]) * 16, payment_id=100 + i)
        settle_all(alice, bob)
    return alice, bob


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=st.lists(steps, min_size=1, max_size=14), finale=st.lists(steps, max_size=3),
       how=st.sampled_from(["open", "open", "settle", "close"]),
       withdrawn=st.tuples(st.integers(0, 300), st.integers(0, 300)),
       locks=st.tuples(st.integers(0, 2), st.integers(0, 2)))
def test_fast_path_and_general_machine_agree(history: list[Step], finale: list[Step], how: str,
                                             withdrawn: tuple[int, int], locks: tuple[int, int]) -> None:
    alice, bob = start(withdrawn, locks)
    later: list[tuple[Peer, Peer, wire.Payment, str]] = []
    for index, step in enumerate(history + finale):
        if index == len(history):
            ending(alice, bob, how)
        payer, payee = (alice, bob) if step.payer_is_alice else (bob, alice)
        payment = pay(payer, step)
        if payment is None or step.deliver == "never":
            continue
        if step.deliver == "later":
            later.append((payee, payer, payment, step.mutation))
            continue
        receive(payee, payer, payment, step.mutation)
        while later:
            receive(*later.pop())


def test_the_first_payment_and_a_held_proof_take_the_general_path() -> None:
    alice, bob = make_pair()
    first = p.ActionPay(1, 10)
    assert fast_pay(alice.state, first, alice.signer) is None  # no proof of ours yet: general machine
    alice.feed(first)
    alice.feed(p.ActionPay(2, 10))
    one, two = alice.outbox
    assert isinstance(one, wire.Payment) and isinstance(two, wire.Payment)
    assert fast_receive(bob.state, one) is not None  # the partner's first proof may take the fast path
    bob.feed(two)  # arrives first: held
    assert bob.state.held and fast_receive(bob.state, one) is None


def test_trusted_builder_equals_the_checked_constructor() -> None:
    alice, _ = make_pair()
    alice.feed(p.ActionPay(1, 10))
    alice.feed(p.ActionPay(2, 10, b"note"))
    payment = alice.outbox[-1]
    assert isinstance(payment, wire.Payment)
    proof = payment.balance_proof
    fields = [getattr(proof, name) for name, _ in wire.BalanceProof.FIELDS]
    assert wire.BalanceProof.trusted(*fields) == wire.BalanceProof(*fields)
    assert wire.Payment.trusted(proof, 2, 10, b"note") == payment
    assert wire.PaymentAccepted.trusted(CHANNEL_ID, 2, 2) == wire.PaymentAccepted(CHANNEL_ID, 2, 2)
