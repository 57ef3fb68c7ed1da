"""Our balance proofs a partner refused: offered again after a back-off, or given up on for good.

A signed proof cannot be taken back (proto/state-machine.md, "Acknowledgements"), so while the partner
has not accepted our proof `n`, every later proof of ours waits behind it at the partner (held, or
refused as too far ahead). Whether `n` can ever pass depends on the refusal's code:

* A **transient** refusal (the partner has not yet seen our deposit, its pending locks are at a limit,
  its clock is behind, ...) may pass later. Every unacknowledged proof of the channel from `n` on is
  offered again, in nonce order, after a back-off that doubles from `RETRY_FIRST` to `RETRY_LONGEST`
  seconds; duplicates are idempotent at the partner. Until `n` is accepted, new payments on the channel
  are refused at once (they would wait behind it).
* A **permanent** refusal (`PERMANENT_REFUSALS`: the proof itself is wrong for the partner, which nothing
  on our side or its side can change) is never offered again: the node publishes `channel_blocked`
  (nonce, code, reason), logs an error, and refuses new payments on the channel telling the operator to
  close it.

The messages re-offered are part of the stored channel state since they were first sent, so a re-offer
needs no store round. The stall check and the bookkeeping run only when a partner refuses something,
never on an accepted payment's path.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from channeld.protocol import PERMANENT_REFUSALS, ChannelStatus, EventPaymentRefused
from channeld.wire import Message

if TYPE_CHECKING:
    from channeld.node._channels import ChannelEntry, ChannelService
    from channeld.node._events import EventBus

log = logging.getLogger("channeld.node")

RETRY_FIRST = 1.0  # seconds before a refused message is offered again; doubled after each offer
RETRY_LONGEST = 60.0


def next_delay(previous: float | None) -> float:
    """The back-off before a refused message is offered again (here, and `LockExpired` in _transfers)."""
    return RETRY_FIRST if previous is None else min(previous * 2, RETRY_LONGEST)
TICK_INTERVAL = 0.25


@dataclass(slots=True)
class Refusal:
    """The earliest of our proofs on a channel that the partner refused and has not accepted since."""

    nonce: int
    code: int
    reason: str
    due: float  # trio time of the next offer (inf: never again, the refusal is permanent)
    delay: float

    @property
    def permanent(self) -> bool:
        return self.code in PERMANENT_REFUSALS


def _standing(entry: ChannelEntry, nonce: int) -> bool:
    """Our proof `nonce` is still unacknowledged on an open channel."""
    state = entry.state
    return state.status is ChannelStatus.OPEN and any(
        m.balance_proof.nonce == nonce for m in (*state.in_flight, *state.locks_in_flight))


class RefusalBook:
    """Per channel, the refusal that holds our later proofs back, and its next offer."""

    def __init__(self, channels: ChannelService, bus: EventBus,
                 send: Callable[[bytes, Message], None]) -> None:
        self._channels = channels
        self._bus = bus
        self._send = send
        self.refused: dict[bytes, Refusal] = {}

    def note(self, outcome: EventPaymentRefused) -> None:
        """Payment listener: the partner refused one of our proofs (a payment or a lock message)."""
        found = self._channel_of(outcome)
        if found is None:
            return
        cid, entry = found
        current = self.refused.get(cid)
        if current is not None and current.nonce < outcome.nonce and _standing(entry, current.nonce):
            return  # a later proof waits behind the earlier refusal: the next offer resends it too
        if current is None or current.nonce != outcome.nonce:
            current = self.refused[cid] = Refusal(outcome.nonce, outcome.code, outcome.reason,
                                                  trio.current_time() + next_delay(None), next_delay(None))
        current.code, current.reason = outcome.code, outcome.reason
        if current.permanent and current.due != math.inf:
            current.due = math.inf
            log.error("channel 0x%s: the partner refused our proof %d for good (code %d: %s); every later "
                      "payment on it waits behind that proof: close the channel", cid.hex(), outcome.nonce,
                      outcome.code, outcome.reason)
            self._bus.publish("channel_blocked", cid, nonce=outcome.nonce, code=outcome.code,
                              reason=outcome.reason)

    def _channel_of(self, outcome: EventPaymentRefused) -> tuple[bytes, ChannelEntry] | None:
        for cid, entry in self._channels.channels.items():
            state = entry.state
            for msg in (*state.in_flight, *state.locks_in_flight):
                ours = getattr(msg, "payment_id", 0) == outcome.payment_id  # LockExpired has none: 0
                if ours and msg.balance_proof.nonce == outcome.nonce:
                    return cid, entry
        return None

    def standing(self, cid: bytes) -> Refusal | None:
        """The refusal that holds this channel's later proofs back now, if any."""
        refusal = self.refused.get(cid)
        if refusal is None:
            return None
        entry = self._channels.channels.get(cid)
        if entry is None or not _standing(entry, refusal.nonce):
            del self.refused[cid]  # accepted since (offered again), or the channel is closing
            return None
        return refusal

    def offer_due(self) -> int:
        """Offer again each refused channel's unacknowledged proofs whose back-off is over; how many."""
        now, sent = trio.current_time(), 0
        for cid in list(self.refused):
            refusal = self.standing(cid)
            if refusal is None or refusal.due > now:
                continue
            entry = self._channels.channels[cid]
            for message in self._from(entry, refusal.nonce):
                self._send(entry.peer_id, message)
                sent += 1
            # offered again later even if no answer comes (a lost message, a partner that went quiet)
            refusal.delay = next_delay(refusal.delay)
            refusal.due = now + refusal.delay
        return sent

    @staticmethod
    def _from(entry: ChannelEntry, nonce: int) -> Iterator[Message]:
        """Our unacknowledged proofs from `nonce` on, payments and lock messages together, in nonce order
        (what re-establishment would resend)."""
        state = entry.state
        later = [m for m in (*state.in_flight, *state.locks_in_flight) if m.balance_proof.nonce >= nonce]
        yield from sorted(later, key=lambda m: m.balance_proof.nonce)

    async def run(self) -> None:
        while True:
            await trio.sleep(TICK_INTERVAL)
            if self.refused:
                self.offer_due()
