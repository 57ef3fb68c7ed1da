"""One session per peer, replacement, and reconnect with backoff, over real loopback sockets."""

from __future__ import annotations

import random

import pytest
import trio

from channeld.errors import ConfigError
from channeld.transport import Backoff, Session, SessionManager, SessionReplaced, TransportLimits
from channeld.wire import ZERO32, Error
from tests.tools import free_port
from tests.transport.helpers import ALICE, BOB, make_init, node_id

LIMITS = TransportLimits(handshake_timeout=2.0, connect_timeout=2.0)
QUICK = Backoff(initial=0.01, factor=2.0, maximum=0.05, jitter=0.5)


class Recorder:
    """A session hook that remembers every session it was given and reads each until it ends."""

    def __init__(self) -> None:
        self.sessions: list[Session] = []
        self.received: list[object] = []
        self.changed = trio.Event()

    async def __call__(self, session: Session) -> None:
        self.sessions.append(session)
        self._poke()
        async for message in session:
            self.received.append(message)
            self._poke()

    def _poke(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    async def wait_for(self, count: int) -> None:
        with trio.fail_after(5):
            while len(self.sessions) < count:
                await self.changed.wait()


async def run_manager(nursery: trio.Nursery, manager: SessionManager) -> SessionManager:
    async def hold(*, task_status: trio.TaskStatus[None]) -> None:
        async with manager:
            task_status.started()
            await trio.sleep_forever()

    await nursery.start(hold)
    return manager


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    backoff = Backoff(initial=1.0, factor=2.0, maximum=30.0, jitter=0.25)
    rng = random.Random(7)
    for attempt, ceiling in enumerate([1, 2, 4, 8, 16, 30, 30, 30]):
        delays = [backoff.delay(attempt, rng) for _ in range(200)]
        assert all(0.75 * ceiling <= d <= ceiling for d in delays)
        assert len(set(delays)) > 100  # jitter really spreads them
    assert backoff.delay(10_000, rng) <= 30.0
    for bad in ({"initial": 0}, {"initial": 5, "maximum": 1}, {"factor": 0.5}, {"jitter": 1.5}):
        with pytest.raises(ConfigError):
            Backoff(**bad)  # type: ignore[arg-type]


async def test_a_second_connection_from_the_same_peer_replaces_the_first(nursery: trio.Nursery) -> None:
    bob_hook, alice_hook = Recorder(), Recorder()
    bob = await run_manager(nursery, SessionManager(BOB, make_init(), bob_hook, LIMITS))
    listener = await bob.listen()
    alice = await run_manager(nursery, SessionManager(ALICE, make_init(), alice_hook, LIMITS))
    uri = f"{node_id(BOB).hex()}@127.0.0.1:{listener.port}"
    first = await alice.connect(uri)
    await bob_hook.wait_for(1)
    second = await alice.connect(uri)  # alice replaces her own first session at once
    await bob_hook.wait_for(2)
    old, new = bob_hook.sessions
    with trio.fail_after(5):
        await old.wait_closed()
        await first.wait_closed()
    assert isinstance(old.close_reason, SessionReplaced)
    assert dict(bob.sessions) == {node_id(ALICE): new}
    assert dict(alice.sessions) == {node_id(BOB): second}
    await second.send(Error(channel_id=ZERO32, code=1, text="on the new session"))
    with trio.fail_after(5):
        while not bob_hook.received:
            await bob_hook.changed.wait()
    assert bob_hook.received == [Error(channel_id=ZERO32, code=1, text="on the new session")]


async def test_reconnect_loop_backs_off_until_the_peer_is_up_and_reruns_the_hook(
    nursery: trio.Nursery,
) -> None:
    port = free_port()
    alice_hook, bob_hook = Recorder(), Recorder()
    alice = await run_manager(nursery, SessionManager(ALICE, make_init(), alice_hook, LIMITS, QUICK))
    alice.keep_connected([f"{node_id(BOB).hex()}@127.0.0.1:{port}"])
    await trio.sleep(0.2)  # several refused dials, backing off
    assert alice.sessions == {}
    bob = await run_manager(nursery, SessionManager(BOB, make_init(), bob_hook, LIMITS))
    await bob.listen(port=port)
    await alice_hook.wait_for(1)
    bob.sessions[node_id(ALICE)].close()  # bob hangs up; alice must redial and rerun her hook
    await alice_hook.wait_for(2)
    assert alice_hook.sessions[0].closed and not alice_hook.sessions[1].closed
    assert dict(alice.sessions) == {node_id(BOB): alice_hook.sessions[1]}


async def test_manager_refuses_use_outside_async_with() -> None:
    from channeld.transport import TransportMisuse
    manager = SessionManager(ALICE, make_init(), Recorder(), LIMITS)
    with pytest.raises(TransportMisuse):
        await manager.listen()
