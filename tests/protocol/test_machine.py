"""The transition table, re-establishment, records and the public API."""

from __future__ import annotations

import msgpack
import pytest

from channeld import protocol as p
from channeld import wire
from tests.protocol.pair import (
    CHAIN_ID,
    CHALLENGE,
    CHANNEL_ID,
    CONTRACT,
    NOW,
    deliver,
    make_pair,
    make_peer,
    settle_all,
)
from tests.protocol.test_payments import refuse
from tests.wire.samples import SAMPLES


def test_unknown_input_is_an_error_never_a_no_op() -> None:
    alice, _ = make_pair()
    refuse(alice, object(), p.IllegalAction, "object is not allowed while the channel is OPEN")
    refuse(alice, "pay 5", p.IllegalAction)


@pytest.mark.parametrize("msg", [m for m in SAMPLES if type(m) not in p.TRANSITIONS[p.ChannelStatus.OPEN]],
                         ids=lambda m: type(m).__name__)
def test_messages_the_channel_does_not_handle_are_illegal_inputs(msg: wire.Message) -> None:
    alice, _ = make_pair()
    refuse(alice, msg, p.IllegalInput, type(msg).__name__)


def test_every_legal_input_has_a_handler_and_settled_allows_only_time() -> None:
    from channeld.protocol._machine import HANDLERS

    for allowed in p.TRANSITIONS.values():
        assert allowed <= set(HANDLERS)
    assert p.TRANSITIONS[p.ChannelStatus.SETTLED] == {p.ActionTick}


def test_reestablish_resends_what_the_partner_lacks() -> None:
    alice, bob = make_pair()
    for i in range(1, 4):
        alice.feed(p.ActionPay(i, 10))
    deliver(alice, bob)       # bob applied all three
    bob.outbox.clear()        # but every acknowledgement was lost
    alice.feed(p.ActionPay(4, 10))
    alice.outbox.clear()      # and the fourth payment too
    alice.feed(p.ActionReconnected())
    bob.feed(p.ActionReconnected())
    assert alice.outbox == [wire.Reestablish(CHAIN_ID, CONTRACT, CHANNEL_ID, 4, 0)]
    deliver(bob, alice)       # bob says: I accepted up to 3
    assert [e.payment_id for e in alice.effects if isinstance(e, p.EventPaymentSent)] == [1, 2, 3]
    resent = [m for m in alice.outbox if isinstance(m, wire.Payment)]
    assert [m.balance_proof.nonce for m in resent] == [4]
    settle_all(alice, bob)
    assert bob.state.partner.nonce == 4 and alice.state.in_flight == ()


def test_reestablish_claiming_an_unsigned_nonce_is_refused() -> None:
    alice, _ = make_pair()
    refuse(alice, wire.Reestablish(CHAIN_ID, CONTRACT, CHANNEL_ID, 0, 1), p.StateMismatch)
    refuse(alice, wire.Reestablish(CHAIN_ID + 1, CONTRACT, CHANNEL_ID, 0, 0), p.WrongChannel)


def test_reconnect_resends_our_pending_withdraw_and_settle_requests() -> None:
    alice, _ = make_pair()
    alice.feed(p.ActionWithdraw(10, NOW + 3600))
    request = alice.outbox.pop()
    alice.feed(p.ActionReconnected())
    assert alice.outbox[-1] == request


def test_record_round_trip_restores_the_same_state() -> None:
    alice, bob = make_pair()
    alice.feed(p.ActionPay(1, 10))
    alice.feed(p.ActionPay(2, 10))
    bob.feed(alice.outbox[1])   # held
    alice.feed(p.ActionWithdraw(5, NOW + 3600))
    for peer in (alice, bob):
        assert p.from_record(p.to_record(peer.state)) == peer.state


def test_record_starts_with_its_schema_version() -> None:
    alice, _ = make_pair()
    assert msgpack.unpackb(p.to_record(alice.state))[0] == p.SCHEMA_VERSION == 2


@pytest.mark.parametrize("record", [
    b"", b"\x91", msgpack.packb([99]), msgpack.packb([1, 2, 3]), msgpack.packb({"a": 1}), b"\xc1",
])
def test_corrupt_records_raise_corrupt_record(record: bytes) -> None:
    with pytest.raises(p.CorruptRecord):
        p.from_record(record)


def test_record_with_a_damaged_stored_proof_is_corrupt() -> None:
    alice, bob = make_pair()
    alice.feed(p.ActionPay(1, 10))
    deliver(alice, bob)
    fields = msgpack.unpackb(p.to_record(bob.state))
    fields[6][3][3] = 0   # the partner proof's nonce
    with pytest.raises(p.CorruptRecord):
        p.from_record(msgpack.packb(fields))


def test_restart_from_record_then_reestablish_converges() -> None:
    alice, bob = make_pair()
    alice.feed(p.ActionPay(1, 10))
    deliver(alice, bob)
    bob.restart()              # the acknowledgement never left
    alice.restart()
    alice.feed(p.ActionReconnected())
    bob.feed(p.ActionReconnected())
    settle_all(alice, bob)
    assert alice.state.in_flight == () and bob.state.partner.transferred == 10


def test_new_channel_and_announcement() -> None:
    alice = make_peer("alice", "bob")
    bob = make_peer("bob", "alice")
    announcement = p.announcement(alice.state)
    assert announcement == p.announcement(bob.state)
    p.check_announcement(bob.state, announcement)
    from dataclasses import replace

    with pytest.raises(p.WrongChannel):
        p.check_announcement(bob.state, replace(announcement, challenge_period=CHALLENGE + 1))
    with pytest.raises(p.IllegalAction):
        p.new_channel(CHAIN_ID, CONTRACT, CHANNEL_ID, CHALLENGE, alice.signer.address,
                      alice.signer.public_key)


def test_public_api() -> None:
    assert set(p.__all__) == {name for name in dir(p) if not name.startswith("_")} - {
        "annotations"} - {m for m in dir(p) if isinstance(getattr(p, m), type(p))}
    for name in p.__all__:
        assert getattr(p, name) is not None
    assert {"handle", "new_channel", "to_record", "from_record", "Signer", "ChannelState"} <= set(p.__all__)
    assert set(wire.__all__) >= {"Init", "Error", "Ping", "Pong", "encode", "decode", "DecodeError"}
