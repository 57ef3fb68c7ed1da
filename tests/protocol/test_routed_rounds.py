"""What a routed payment may send before its round is durable: a mediator relays the secret upstream at
once (`SendSecretReveal`) and the channel machine then records it without revealing it a second time."""

from __future__ import annotations

from channeld import protocol as p
from channeld import wire
from tests.protocol.network import Network, channel_id_of
from tests.protocol.test_locks import SECRET as LOCKED_SECRET
from tests.protocol.test_locks import locked_pair
from tests.protocol.test_transfer_roles import HASH, SECRET, incoming, mediator_setup


def forwarded() -> tuple[Network, p.MediatorState]:
    """B holds A's lock under HASH and has forwarded it to C."""
    net = mediator_setup()
    b = net.nodes["B"]
    event = incoming(net, 10, ["B", "C"])
    state, _ = p.start_mediation(event, b.channels[channel_id_of("A", "B")], b.by_partner(), b.fees)
    return net, state


def test_a_mediator_relays_the_reveal_upstream_before_recording_it() -> None:
    _, state = forwarded()
    learned, effects = p.handle_mediator(state, wire.SecretReveal(SECRET))
    upstream, downstream = channel_id_of("A", "B"), channel_id_of("B", "C")
    assert effects == [p.SendSecretReveal(upstream, SECRET),
                       p.ChannelDo(upstream, p.ActionLearnSecret(SECRET, reveal=False)),
                       p.ChannelDo(downstream, p.ActionUnlock(SECRET, state.payment_id))]
    assert learned.secret == SECRET and learned.payee_outcome is p.LockOutcome.UNLOCKED


def test_a_mediator_relays_once_and_not_after_its_incoming_lock_is_settled() -> None:
    _, state = forwarded()
    learned, _ = p.handle_mediator(state, wire.SecretReveal(SECRET))
    _, again = p.handle_mediator(learned, wire.SecretReveal(SECRET))
    assert again == []
    expired = p.handle_mediator(state, p.EventLockExpired(channel_id_of("A", "B"), HASH, 10))[0]
    _, late = p.handle_mediator(expired, wire.SecretReveal(SECRET))
    assert not any(isinstance(e, p.SendSecretReveal) for e in late)


def test_a_secret_learned_without_reveal_is_kept_and_not_sent() -> None:
    _, bob = locked_pair(10)
    effects = bob.feed(p.ActionLearnSecret(LOCKED_SECRET, reveal=False))
    assert not any(isinstance(e, p.Send) for e in effects)
    assert bob.state.secrets == (p.KnownSecret(LOCKED_SECRET),)
    assert bob.feed(p.ActionLearnSecret(LOCKED_SECRET, reveal=False)) == []
    assert bob.feed(p.ActionLearnSecret(LOCKED_SECRET)) == [p.Send(wire.SecretReveal(LOCKED_SECRET))]


def test_the_payer_gets_the_relayed_secret_over_three_hops_and_every_lock_settles() -> None:
    net = Network("ABCD")
    for a, b in ("AB", "BC", "CD"):
        net.open(a, b)
    net.request("D", SECRET, 100)
    net.pay("A", [["B", "C", "D"]], 100, HASH)
    net.pump()
    assert any(isinstance(e, p.EventTransferSucceeded) for e in net.nodes["A"].events)
    for a, b in ("AB", "BC", "CD"):
        for name in (a, b):
            state = net.nodes[name].channels[channel_id_of(a, b)]
            assert state.our.locks == () and state.partner.locks == () and state.secrets == ()
    assert net.registry == {}  # settled off chain: nothing was registered
