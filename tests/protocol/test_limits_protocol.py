"""Risk limits enforced by the pure protocol: refused before anything is signed, the limit named.

Payment limits (`max_payment`, the hourly budgets) travel with `ActionPay.limits` / `start_payment`;
`max_pending_locks` is the `limits` argument of `handle` (and of the payment machines), bounding the
locks pending in a channel, both directions together: our own new lock is refused with
`RiskLimitExceeded`; a partner's is accepted but not acted on (no `EventLockReceived`: nothing is forwarded
or claimed), since a refused proof would block every later one of the partner, its unlocks included.
"""

from __future__ import annotations

import pytest

from channeld import protocol as p
from channeld import wire
from channeld.limits import LimitContext, RiskLedger, RiskLimitExceeded, RiskLimits, record_payment
from channeld.wire import secrethash_of
from tests.protocol.network import Network
from tests.protocol.pair import NOW, Peer, deliver, make_pair

LIMITS = RiskLimits(max_payment=100, max_per_peer_per_hour=250, max_total_per_hour=400,
                    max_channel_deposit=10_000, min_onchain_reserve=0, max_pending_locks=2)
T0 = 1_000_000.0
EXPIRY = NOW + 3600


def context(ledger: RiskLedger | None = None, peer: str = "bob") -> LimitContext:
    return LimitContext(LIMITS, ledger or RiskLedger(), peer, T0)


def refused(peer: Peer, event: object, error: type[Exception], limits: RiskLimits | None = None) -> Exception:
    """`event` raises `error`; the peer's state (and so every proof it signed) is exactly as before."""
    before, record = peer.state, p.to_record(peer.state)
    with pytest.raises(error) as caught:
        p.handle(peer.state, event, peer.signer, limits)
    assert peer.state is before and p.to_record(peer.state) == record
    return caught.value


def secret(i: int) -> bytes:
    return (i + 1).to_bytes(32, "big")


def lock_action(i: int, amount: int = 10) -> p.ActionSendLockedTransfer:
    return p.ActionSendLockedTransfer(i, amount, EXPIRY, secrethash_of(secret(i)), bytes(20), bytes(20))


def feed(peer: Peer, event: object, limits: RiskLimits | None = LIMITS) -> list[p.Effect]:
    """`Peer.feed` with the node's limits passed to the machine."""
    new, effects = p.handle(peer.state, event, peer.signer, limits)
    peer.state = new
    peer.outbox += [e.message for e in effects if isinstance(e, p.Send)]
    return effects


# --- direct payments ----------------------------------------------------------------------------------


def test_a_payment_over_max_payment_is_refused_before_signing_and_names_the_limit() -> None:
    alice, _ = make_pair()
    error = refused(alice, p.ActionPay(1, 101, b"", context()), RiskLimitExceeded)
    assert isinstance(error, RiskLimitExceeded) and error.limit == "max_payment"
    assert "limits.max_payment" in str(error) and error.allowed == 100 and error.requested == 101
    assert alice.outbox == [] and alice.state.in_flight == ()


def test_hourly_budgets_count_what_the_ledger_holds() -> None:
    alice, _ = make_pair()
    spent = record_payment(record_payment(RiskLedger(), "bob", 100, T0), "bob", 100, T0)
    error = refused(alice, p.ActionPay(1, 60, b"", context(spent)), RiskLimitExceeded)
    assert isinstance(error, RiskLimitExceeded) and error.limit == "max_per_peer_per_hour"
    others = record_payment(record_payment(spent, "carol", 100, T0), "dave", 100, T0)
    error = refused(alice, p.ActionPay(1, 10, b"", context(others, peer="erin")), RiskLimitExceeded)
    assert isinstance(error, RiskLimitExceeded) and error.limit == "max_total_per_hour"


def test_a_payment_within_the_limits_is_signed_and_the_context_records_it() -> None:
    alice, bob = make_pair()
    limits = context()
    effects = alice.feed(p.ActionPay(1, 100, b"", limits))
    assert [type(e) for e in effects] == [p.Persist, p.Send]
    deliver(alice, bob)
    assert bob.state.partner.transferred == 100
    ledger = record_payment(limits.recorded(100), "bob", 100, T0)
    error = refused(alice, p.ActionPay(2, 100, b"", context(ledger)), RiskLimitExceeded)
    assert "already sent 200" in str(error)


def test_the_limits_are_checked_after_the_amount_is_validated() -> None:
    alice, _ = make_pair()
    refused(alice, p.ActionPay(1, 0, b"", context()), p.IllegalAction)


def test_without_limits_only_the_protocol_rules_apply() -> None:
    """A wallet (no node limits) may pay up to its balance."""
    alice, _ = make_pair(1000, 1000)
    alice.feed(p.ActionPay(1, 900))
    assert alice.state.our.transferred == 900


# --- pending locks: ours ------------------------------------------------------------------------------


def test_our_lock_beyond_max_pending_locks_is_refused_before_signing() -> None:
    alice, _ = make_pair()
    feed(alice, lock_action(1))
    feed(alice, lock_action(2))
    error = refused(alice, lock_action(3), RiskLimitExceeded, LIMITS)
    assert isinstance(error, RiskLimitExceeded) and error.limit == "max_pending_locks"
    assert "limits.max_pending_locks (2)" in str(error)
    assert len(alice.state.our.locks) == 2 and len(alice.outbox) == 2


def test_the_partners_pending_locks_count_too() -> None:
    alice, bob = make_pair()
    feed(alice, lock_action(1))
    feed(alice, lock_action(2))
    for msg in list(alice.outbox):
        feed(bob, msg)
    alice.outbox.clear()
    assert len(bob.state.partner.locks) == 2
    error = refused(bob, lock_action(7), RiskLimitExceeded, LIMITS)
    assert isinstance(error, RiskLimitExceeded) and error.limit == "max_pending_locks"


def test_a_freed_lock_makes_room_again() -> None:
    alice, _ = make_pair()
    feed(alice, lock_action(1))
    feed(alice, lock_action(2))
    feed(alice, p.ActionUnlock(secret(1), 1))
    assert len(alice.state.our.locks) == 1
    feed(alice, lock_action(3))
    assert len(alice.state.our.locks) == 2


# --- pending locks: the partner's ---------------------------------------------------------------------


def test_an_incoming_lock_over_the_limit_is_accepted_but_not_acted_on() -> None:
    alice, bob = make_pair()
    for i in (1, 2, 3):
        alice.feed(lock_action(i))  # alice has no limit of her own here
    first, second, third = alice.outbox
    assert any(isinstance(e, p.EventLockReceived) for e in feed(bob, first))
    assert any(isinstance(e, p.EventLockReceived) for e in feed(bob, second))
    effects = feed(bob, third)
    assert not any(isinstance(e, p.EventLockReceived) for e in effects)  # no payment machine hears of it
    assert p.Send(wire.PaymentAccepted(third.balance_proof.channel_id, 3, 3)) in effects
    assert len(bob.state.partner.locks) == 3 and bob.state.partner.nonce == 3


def test_the_partner_proofs_after_an_ignored_lock_are_not_held_back() -> None:
    """Its unlock of an earlier lock frees the room; a lock after that is acted on again."""
    alice, bob = make_pair()
    for i in (1, 2, 3):
        alice.feed(lock_action(i))
    alice.feed(p.ActionUnlock(secret(1), 1))
    alice.feed(lock_action(4))
    for msg in alice.outbox[:4]:
        feed(bob, msg)
    assert bob.state.partner.nonce == 4 and len(bob.state.partner.locks) == 2
    assert bob.state.partner.transferred == 10
    effects = feed(bob, alice.outbox[4])  # 3 pending with it: still over the limit of 2
    assert not any(isinstance(e, p.EventLockReceived) for e in effects)
    alice.feed(p.ActionUnlock(secret(2), 2))
    alice.feed(p.ActionUnlock(secret(4), 4))
    alice.feed(lock_action(5))
    received = [feed(bob, msg) for msg in alice.outbox[5:]][-1]
    assert any(isinstance(e, p.EventLockReceived) for e in received)  # 2 pending with it: acted on


def test_a_held_lock_over_the_limit_is_accepted_without_acting_when_its_turn_comes() -> None:
    alice, bob = make_pair()
    alice.feed(lock_action(1))
    alice.feed(lock_action(2))
    alice.feed(lock_action(3))
    first, second, third = alice.outbox
    feed(bob, third)  # ahead of the next nonce: held
    feed(bob, second)
    effects = feed(bob, first)  # fills the gap: 1, 2 and 3 applied, only 1 and 2 acted on
    sent = [e.message for e in effects if isinstance(e, p.Send)]
    assert [m.nonce for m in sent if isinstance(m, wire.PaymentAccepted)] == [1, 2, 3]
    assert [e.lock.secrethash for e in effects if isinstance(e, p.EventLockReceived)] == [
        secrethash_of(secret(1)), secrethash_of(secret(2))]
    assert len(bob.state.partner.locks) == 3 and bob.state.held == ()


def test_without_limits_the_protocol_bound_alone_applies() -> None:
    alice, bob = make_pair()
    for i in (1, 2, 3):
        alice.feed(lock_action(i))
    for msg in list(alice.outbox):
        bob.feed(msg)
    assert len(bob.state.partner.locks) == 3


# --- multi-hop: the payer and the mediator ------------------------------------------------------------


def two_routes() -> Network:
    net = Network("ABCD")
    for a, b in ("AB", "AC", "BD", "CD"):
        net.open(a, b)
    return net


def test_a_routed_payment_over_a_limit_is_refused_before_any_lock() -> None:
    net = two_routes()
    a = net.nodes["A"]
    routes = (net.route("A", ["B", "D"], 150),)
    with pytest.raises(RiskLimitExceeded, match=r"limits\.max_payment"):
        p.start_payment(1, a.address, 150, secrethash_of(secret(1)), 0, routes, a.channels, net.now,
                        context())
    assert all(not s.our.locks for s in a.channels.values())


def test_the_payer_skips_a_route_whose_channel_is_at_the_lock_limit() -> None:
    net = two_routes()
    a = net.nodes["A"]
    via_b = net.route("A", ["B", "D"], 10).channel_id
    for i in (1, 2):
        net.channel_do(a, via_b, lock_action(i, 1))
    routes = (net.route("A", ["B", "D"], 10), net.route("A", ["C", "D"], 10))
    state, effects = p.start_payment(9, a.address, 10, secrethash_of(secret(9)), 0, routes, a.channels,
                                     net.now, context())
    assert "limits.max_pending_locks" in state.failures[0]
    (do,) = effects
    assert isinstance(do, p.ChannelDo) and do.channel_id == routes[1].channel_id


def test_a_mediator_does_not_forward_onto_a_channel_at_the_lock_limit() -> None:
    net = two_routes()
    b, d = net.nodes["B"], net.nodes["D"]
    toward_d = b.channel_with(d).channel_id
    for i in (1, 2):
        net.channel_do(b, toward_d, lock_action(i, 1))
    route = p.encode_route((b.address, d.address))
    lock = wire.Lock(10, EXPIRY, secrethash_of(secret(5)))
    received = p.EventLockReceived(net.nodes["A"].channel_with(b).channel_id, 5, lock, bytes(20), d.address,
                                   route)
    payer = b.channel_with(net.nodes["A"])
    state, effects = p.start_mediation(received, payer, b.by_partner(), b.fees, LIMITS)
    assert effects == [] and state.refusal is not None and "limits.max_pending_locks" in state.refusal
    state, effects = p.start_mediation(received, payer, b.by_partner(), b.fees)
    assert len(effects) == 1  # without the limit it would have forwarded
