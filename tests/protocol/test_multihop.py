"""Multi-hop payments across A-B-C-D with pure machines and an in-memory pump."""

from __future__ import annotations

from channeld import protocol as p
from channeld.wire import secrethash_of
from tests.protocol.network import Network

SECRET = bytes(range(1, 33))
HASH = secrethash_of(SECRET)


def line(fees: dict[str, p.FeePolicy] | None = None) -> Network:
    net = Network("ABCD", fees)
    for a, b in ("AB", "BC", "CD"):
        net.open(a, b)
    return net


def totals(net: Network) -> dict[str, int]:
    return {name: net.total(name) for name in net.nodes}


def moved(net: Network, before: dict[str, int]) -> dict[str, int]:
    """How much each node gained (or lost) since `before`."""
    return {name: net.total(name) - before[name] for name in net.nodes}


def no_locks_anywhere(net: Network) -> bool:
    return all(not s.our.locks and not s.partner.locks
               for node in net.nodes.values() for s in node.channels.values())


def views_agree(net: Network) -> bool:
    """Both participants of every channel see the same transferred and locked amounts."""
    for node in net.nodes.values():
        for state in node.channels.values():
            other = net.by_address[state.partner.address].channels[state.channel_id]
            if (state.our.transferred, state.our.locked) != (other.partner.transferred, other.partner.locked):
                return False
    return True


def test_payment_succeeds_end_to_end_and_pays_each_fee() -> None:
    net = line({"B": p.FeePolicy(2, 10_000), "C": p.FeePolicy(1, 0)})
    before = totals(net)
    net.request("D", SECRET, 100)
    net.pay("A", [["B", "C", "D"]], 100, HASH)
    net.pump()
    # C forwards 100 to D and takes 1; B forwards 101 to C and takes 2 + ceil(1.01) = 4
    assert moved(net, before) == {"A": -105, "B": 4, "C": 1, "D": 100}
    assert p.EventTransferSucceeded(1, HASH, 100, 5) in net.nodes["A"].events
    assert p.EventTransferReceived(HASH, 100) in net.nodes["D"].events
    assert no_locks_anywhere(net) and views_agree(net)
    assert not any(n.refusals for n in net.nodes.values())


def test_lock_expiries_shrink_by_the_reveal_timeout_at_each_hop() -> None:
    net = line()
    net.request("D", SECRET, 10)
    net.nodes["D"].silent = True  # keep the locks pending to look at them
    net.pay("A", [["B", "C", "D"]], 10, HASH)
    net.pump()
    ab = net.nodes["A"].channel_with(net.nodes["B"]).our.locks[0]
    bc = net.nodes["B"].channel_with(net.nodes["C"]).our.locks[0]
    cd = net.nodes["C"].channel_with(net.nodes["D"]).our.locks[0]
    assert ab.expiration - bc.expiration == bc.expiration - cd.expiration == 60
    assert cd.expiration - net.now >= 60


def test_silent_mediator_lets_every_lock_expire_and_all_funds_return() -> None:
    net = line()
    before = totals(net)
    net.request("D", SECRET, 50)
    net.nodes["C"].silent = True
    net.pay("A", [["B", "C", "D"]], 50, HASH)
    net.pump()
    assert moved(net, before) == {"A": -50, "B": -50, "C": 0, "D": 0}  # locks count against their senders
    assert net.nodes["B"].channel_with(net.nodes["C"]).our.locks
    for _ in range(6):
        net.tick(60)
    assert moved(net, before) == {"A": 0, "B": 0, "C": 0, "D": 0}
    assert not net.nodes["A"].channel_with(net.nodes["B"]).our.locks
    assert not net.nodes["B"].channel_with(net.nodes["A"]).partner.locks
    assert any(isinstance(e, p.EventTransferFailed) for e in net.nodes["A"].events)
    assert not net.registry and not net.closes


def test_recipient_that_never_reveals_gets_nothing_and_everyone_is_refunded() -> None:
    net = line()
    before = totals(net)
    net.request("D", SECRET, 500)  # asks for more than is sent: D must not reveal
    net.pay("A", [["B", "C", "D"]], 100, HASH)
    net.pump()
    assert net.nodes["D"].channel_with(net.nodes["C"]).partner.locks  # the lock arrived
    for _ in range(6):
        net.tick(60)
    assert moved(net, before) == {"A": 0, "B": 0, "C": 0, "D": 0}
    assert no_locks_anywhere(net) and views_agree(net)
    assert not net.nodes["D"].payments[HASH].revealed  # type: ignore[union-attr]


def test_recipient_refuses_to_reveal_for_an_expired_request() -> None:
    net = line()
    net.request("D", SECRET, 10, valid_for=30)
    net.tick(31)
    net.pay("A", [["B", "C", "D"]], 10, HASH)
    net.pump()
    state = net.nodes["D"].payments[HASH]
    assert isinstance(state, p.TargetState) and not state.revealed and state.refusals


def test_mediator_that_refuses_to_forward_fails_over_to_another_route() -> None:
    net = Network("ABCD")
    for a, b in ("AB", "AC", "CD"):
        net.open(a, b)
    net.open("B", "D", 0, 1000)  # B cannot carry anything toward D
    before = totals(net)
    net.request("D", SECRET, 40)
    net.pay("A", [["B", "D"], ["C", "D"]], 40, HASH)
    net.pump()
    mediator = net.nodes["B"].payments[HASH]
    assert isinstance(mediator, p.MediatorState) and mediator.refusal is not None
    assert "capacity" in mediator.refusal
    for _ in range(5):
        net.tick(60)
    events = net.nodes["A"].events
    assert [type(e) for e in events] == [p.EventRouteFailed, p.EventTransferSucceeded]
    assert moved(net, before) == {"A": -40, "B": 0, "C": 0, "D": 40}
    assert no_locks_anywhere(net) and views_agree(net)


def test_fee_cap_skips_routes_that_cost_too_much() -> None:
    net = Network("ABCD", {"B": p.FeePolicy(50, 0), "C": p.FeePolicy(1, 0)})
    for a, b in ("AB", "AC", "BD", "CD"):
        net.open(a, b)
    before = totals(net)
    net.request("D", SECRET, 40)
    net.pay("A", [["B", "D"], ["C", "D"]], 40, HASH, fee_cap=10)
    net.pump()
    assert moved(net, before) == {"A": -41, "B": 0, "C": 1, "D": 40}
    net2 = Network("ABD", {"B": p.FeePolicy(50, 0)})
    net2.open("A", "B")
    net2.open("B", "D")
    net2.request("D", SECRET, 40)
    net2.pay("A", [["B", "D"]], 40, HASH, fee_cap=10)
    failed = net2.nodes["A"].events
    assert len(failed) == 1 and isinstance(failed[0], p.EventTransferFailed)
    assert "over the cap" in failed[0].reasons[0]


def test_mediator_registers_the_secret_when_its_payer_stops_answering() -> None:
    net = line()
    before = totals(net)
    net.request("D", SECRET, 100)
    net.pay("A", [["B", "C", "D"]], 100, HASH)
    # A's transfer goes out, but nothing reaches A: it never learns the secret, never unlocks
    net.nodes["A"].deaf = True
    net.pump()
    assert moved(net, before) == {"A": -100, "B": -100, "C": 0, "D": 100}
    net.nodes["A"].silent = True  # and from now on A is offline altogether
    b_ab = net.nodes["B"].channel_with(net.nodes["A"])
    assert b_ab.partner.locks and b_ab.secrets  # B knows the secret of A's pending lock
    assert not net.registry
    lock = b_ab.partner.locks[0]
    while net.now < lock.expiration - 60:
        net.tick(30)
    assert net.registry[HASH] <= lock.expiration
    assert ("B", b_ab.channel_id) in net.closes
    # after settlement B unlocks A's lock on chain and is paid: it never ends worse off
    state = net.nodes["B"].channels[b_ab.channel_id]
    state, _ = p.handle(state, p.ContractReceiveClosed(net.nodes["B"].address, net.now + 500),
                        net.nodes["B"].signer)
    state, _ = p.handle(state, p.ActionTick(net.now + 501), net.nodes["B"].signer)
    _, effects = p.handle(state, p.ContractReceiveSettled(0, 0), net.nodes["B"].signer)
    unlocks = [e for e in effects if isinstance(e, p.ContractSendUnlock)]
    assert unlocks == [p.ContractSendUnlock(b_ab.channel_id, net.nodes["A"].address, net.nodes["B"].address,
                                            p.pack_locks(b_ab.partner.locks))]


def test_transfer_records_refuse_garbage() -> None:
    import msgpack
    import pytest

    for record in (b"", b"\xc1", msgpack.packb([2, 1]), msgpack.packb([1, 9]), msgpack.packb([1, 2, b"x"]),
                   msgpack.packb({"a": 1})):
        with pytest.raises(p.CorruptRecord):
            p.transfer_from_record(record)
