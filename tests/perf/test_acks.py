"""Cumulative acknowledgement: of consecutive acceptances on one channel in a round, only the last is sent."""

from __future__ import annotations

from channeld.node._channels import covered_acknowledgements
from channeld.protocol import EventPaymentReceived, Send
from channeld.wire import Error, PaymentAccepted

A, B = b"\x0a" * 32, b"\x0b" * 32


def _ack(cid: bytes, nonce: int) -> tuple[bytes, Send]:
    return cid, Send(PaymentAccepted(cid, nonce, 100 + nonce))


def _received(cid: bytes, nonce: int) -> tuple[bytes, EventPaymentReceived]:
    return cid, EventPaymentReceived(100 + nonce, 1, nonce, b"")


def test_a_run_of_acknowledgements_is_answered_by_its_last() -> None:
    effects = [_ack(A, 1), _received(A, 1), _ack(A, 2), _received(A, 2), _ack(A, 3), _received(A, 3)]
    assert covered_acknowledgements(effects) == {0, 2}  # events are never dropped, only acks 1 and 2


def test_channels_are_merged_separately_and_interleaving_does_not_matter() -> None:
    effects = [_ack(A, 1), _ack(B, 7), _ack(A, 2), _ack(B, 8)]
    assert covered_acknowledgements(effects) == {0, 1}


def test_another_message_on_the_channel_stops_the_merge() -> None:
    refusal = (A, Send(Error(A, 16, "no")))
    effects = [_ack(A, 1), refusal, _ack(A, 2), _ack(A, 3)]
    assert covered_acknowledgements(effects) == {2}  # ack 1 still goes out before the error


def test_an_older_duplicate_after_a_newer_acknowledgement_is_sent_as_well() -> None:
    effects = [_ack(A, 5), _ack(A, 3)]
    assert covered_acknowledgements(effects) == set()


def test_a_lone_acknowledgement_is_sent() -> None:
    assert covered_acknowledgements([_ack(A, 1)]) == set()
