"""Fault injection for tests: cut a session's connection just before or just after it sends a message.

A `FaultPlan` is only ever active when a caller hands one to `SessionManager` (its `faults` attribute) or
to `establish_session`; without one the session's writer runs its ordinary loop and pays nothing for
this module. With one, the writer sends message by message and asks the plan before and after each: a
cut before drops that message (and the rest of the queue) and closes the connection; a cut after
closes it once the message is written to the socket (the peer may or may not read it before the reset:
both are legitimate outcomes a re-establishment must survive).

Each `Cut` fires once, on the `skip + 1`-th matching message; `FaultPlan.fired` records what fired, so a
test can assert that the fault it meant to inject really happened.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from channeld.errors import LocalFault
from channeld.transport._errors import ConnectionClosed
from channeld.wire import Message


class CutPoint(enum.Enum):
    BEFORE_SEND = "before_send"  # the message never leaves; the connection is cut in its place
    AFTER_SEND = "after_send"  # the message is written to the socket, then the connection is cut


class InjectedCut(ConnectionClosed):
    """The connection was cut on purpose by a `FaultPlan` (only in tests)."""


@dataclass(frozen=True, slots=True)
class Cut:
    """Cut the connection at `point` around the `skip + 1`-th message of type `message` sent."""

    message: type[Message]
    point: CutPoint
    skip: int = 0

    def __post_init__(self) -> None:
        if not (isinstance(self.message, type) and issubclass(self.message, Message)):
            raise LocalFault(f"a cut needs a wire message type, got {self.message!r}")
        if not isinstance(self.point, CutPoint):
            raise LocalFault(f"a cut needs a CutPoint, got {self.point!r}")
        if type(self.skip) is not int or self.skip < 0:
            raise LocalFault(f"skip must be a non-negative integer, got {self.skip!r}")


class FaultPlan:
    """The cuts still to inject (shared by every session it is given to) and those that fired."""

    def __init__(self, *cuts: Cut) -> None:
        self._armed: list[Cut] = list(cuts)
        self._seen: dict[Cut, int] = {}
        self.fired: list[Cut] = []

    def __repr__(self) -> str:
        return f"<FaultPlan armed={self._armed} fired={self.fired}>"

    @property
    def armed(self) -> tuple[Cut, ...]:
        return tuple(self._armed)

    def arm(self, cut: Cut) -> None:
        self._armed.append(cut)

    def should_cut(self, message: Message, point: CutPoint) -> bool:
        """Whether to cut now; a cut that answers yes is spent."""
        for cut in self._armed:
            if cut.point is point and type(message) is cut.message:
                seen = self._seen.get(cut, 0)
                self._seen[cut] = seen + 1
                if seen >= cut.skip:
                    self._armed.remove(cut)
                    self.fired.append(cut)
                    return True
        return False

    def check(self, message: Message, point: CutPoint) -> None:
        """Raise `InjectedCut` if the plan cuts here."""
        if self.should_cut(message, point):
            where = "before" if point is CutPoint.BEFORE_SEND else "after"
            raise InjectedCut(f"fault plan cut the connection {where} sending {type(message).__name__}")
