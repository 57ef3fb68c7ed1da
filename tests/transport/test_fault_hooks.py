"""The fault-injection hook: a `FaultPlan` cuts a real loopback connection exactly where it says, once."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import trio

from channeld.errors import LocalFault
from channeld.transport import (
    Cut,
    CutPoint,
    FaultPlan,
    InjectedCut,
    Session,
    SessionManager,
    TransportLimits,
)
from channeld.wire import ZERO32, Error, Message, Payment, Ping
from tests.transport.helpers import ALICE, BOB, make_init

LIMITS = TransportLimits(handshake_timeout=2.0, ping_interval=30.0, idle_timeout=60.0)


def note(code: int) -> Error:
    return Error(channel_id=ZERO32, code=code, text=f"note {code}")


@dataclass
class Receiver:
    """A listening peer that records every message of every session, one list per session."""

    sessions: list[list[Message]] = field(default_factory=list)
    changed: trio.Event = field(default_factory=trio.Event)

    async def handle(self, session: Session) -> None:
        got: list[Message] = []
        self.sessions.append(got)
        async for message in session:
            got.append(message)
            self.changed.set()
            self.changed = trio.Event()

    async def wait_for(self, count: int, session: int = 0) -> None:
        with trio.fail_after(5):
            while len(self.sessions) <= session or len(self.sessions[session]) < count:
                await self.changed.wait()


async def _serve(manager: SessionManager, *, task_status: trio.TaskStatus[int]) -> None:
    async with manager:
        listener = await manager.listen()
        task_status.started(listener.port)
        await trio.sleep_forever()


async def pair(nursery: trio.Nursery, plan: FaultPlan | None) -> tuple[Receiver, SessionManager, str]:
    """A receiving node (BOB) and a dialling manager (ALICE) carrying `plan`; returns BOB's uri."""
    receiver = Receiver()
    port = await nursery.start(_serve, SessionManager(BOB, make_init(), receiver.handle, LIMITS))

    async def ignore(session: Session) -> None:
        await session.wait_closed()

    dialler = SessionManager(ALICE, make_init(), ignore, LIMITS, faults=plan)
    await nursery.start(_hold, dialler)
    return receiver, dialler, f"{BOB.public_key.format().hex()}@127.0.0.1:{port}"


async def _hold(manager: SessionManager, *, task_status: trio.TaskStatus[None]) -> None:
    async with manager:
        task_status.started()
        await trio.sleep_forever()


async def send_three_and_wait_closed(dialler: SessionManager, uri: str) -> Session:
    session = await dialler.connect(uri)
    for code in (1, 2, 3):
        session.send_nowait(note(code))
    with trio.fail_after(5):
        await session.wait_closed()
    return session


async def test_cut_before_send_drops_that_message_and_closes(nursery: trio.Nursery) -> None:
    cut = Cut(Error, CutPoint.BEFORE_SEND, skip=1)
    plan = FaultPlan(cut)
    receiver, dialler, uri = await pair(nursery, plan)
    session = await send_three_and_wait_closed(dialler, uri)
    assert isinstance(session.close_reason, InjectedCut)
    assert "before sending Error" in str(session.close_reason)
    await receiver.wait_for(1)
    await trio.sleep(0.05)  # anything else in flight would have arrived by now
    assert receiver.sessions[0] == [note(1)]
    assert plan.fired == [cut] and plan.armed == ()


async def test_cut_after_send_delivers_that_message_then_closes(nursery: trio.Nursery) -> None:
    cut = Cut(Error, CutPoint.AFTER_SEND, skip=1)
    plan = FaultPlan(cut)
    receiver, dialler, uri = await pair(nursery, plan)
    session = await send_three_and_wait_closed(dialler, uri)
    assert isinstance(session.close_reason, InjectedCut)
    assert "after sending Error" in str(session.close_reason)
    await receiver.wait_for(2)
    await trio.sleep(0.05)
    assert receiver.sessions[0] == [note(1), note(2)]
    assert plan.fired == [cut]


async def test_a_cut_fires_once_and_the_next_session_carries_everything(nursery: trio.Nursery) -> None:
    plan = FaultPlan(Cut(Error, CutPoint.BEFORE_SEND))
    receiver, dialler, uri = await pair(nursery, plan)
    first = await send_three_and_wait_closed(dialler, uri)
    assert isinstance(first.close_reason, InjectedCut)
    second = await dialler.connect(uri)
    for code in (4, 5, 6):
        second.send_nowait(note(code))
    await receiver.wait_for(3, session=1)
    assert receiver.sessions[0] == [] and receiver.sessions[1] == [note(4), note(5), note(6)]
    assert not second.closed and len(plan.fired) == 1


async def test_cuts_of_other_message_types_leave_traffic_alone(nursery: trio.Nursery) -> None:
    plan = FaultPlan(Cut(Payment, CutPoint.BEFORE_SEND), Cut(Ping, CutPoint.AFTER_SEND, skip=1000))
    receiver, dialler, uri = await pair(nursery, plan)
    session = await dialler.connect(uri)
    for code in range(1, 51):
        session.send_nowait(note(code))
    await receiver.wait_for(50)
    assert receiver.sessions[0] == [note(code) for code in range(1, 51)]
    assert plan.fired == [] and len(plan.armed) == 2 and not session.closed


async def test_without_a_plan_the_manager_gives_sessions_none(nursery: trio.Nursery) -> None:
    receiver, dialler, uri = await pair(nursery, None)
    session = await dialler.connect(uri)
    session.send_nowait(note(9))
    await receiver.wait_for(1)
    assert dialler.faults is None and session.faults is None


async def test_a_plan_armed_later_applies_to_the_next_session(nursery: trio.Nursery) -> None:
    receiver, dialler, uri = await pair(nursery, None)
    dialler.faults = FaultPlan()
    dialler.faults.arm(Cut(Error, CutPoint.AFTER_SEND))
    session = await send_three_and_wait_closed(dialler, uri)
    assert isinstance(session.close_reason, InjectedCut)
    await receiver.wait_for(1)
    assert receiver.sessions[0][0] == note(1)


@pytest.mark.parametrize("bad", [
    {"message": int, "point": CutPoint.AFTER_SEND},
    {"message": Error, "point": "after_send"},
    {"message": Error, "point": CutPoint.BEFORE_SEND, "skip": -1},
    {"message": Error, "point": CutPoint.BEFORE_SEND, "skip": True},
])
def test_a_malformed_cut_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(LocalFault):
        Cut(**bad)  # type: ignore[arg-type]
