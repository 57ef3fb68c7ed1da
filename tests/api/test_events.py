"""The live event stream: a client that disconnects and reconnects (even across a node restart) with the
last sequence number it saw gets every event it missed, once, in order."""

from __future__ import annotations

import json
import signal
from typing import Any

import httpx
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from tests.api.conftest import Api, Network
from tests.node.helpers import wait_until


def _pay(network: Network, count: int, amount: int = 7) -> None:
    for _ in range(count):
        assert network.api_a.ok("POST", "/payments", {"node_id": network.b.node_id,
                                                      "amount": str(amount)})["status"] == "accepted"


def _ws_url(api: Api, after: int) -> str:
    return f"ws://127.0.0.1:{api.daemon.api}/api/v1/events/ws?after={after}"


async def _collect(api: Api, after: int, until: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
    """Events from the WebSocket after `after` until `until(events)` holds."""
    headers = [("Authorization", f"Bearer {api.token}")]
    events: list[dict[str, Any]] = []
    with trio.fail_after(timeout):
        async with open_websocket_url(_ws_url(api, after), extra_headers=headers) as socket:
            while not until(events):
                events.append(json.loads(await socket.get_message()))
    return events


def _received(events: list[dict[str, Any]]) -> int:
    return sum(1 for e in events if e["kind"] == "payment_received")


def _contiguous(events: list[dict[str, Any]], after: int) -> bool:
    return [e["seq"] for e in events] == list(range(after + 1, after + 1 + len(events)))


async def test_reconnecting_websocket_client_misses_nothing(network: Network) -> None:
    api = network.api_b
    start = api.ok("GET", "/health")["last_event"]
    await trio.to_thread.run_sync(_pay, network, 3)
    first = await _collect(api, start, lambda ev: _received(ev) >= 3)
    assert _contiguous(first, start)
    seen = first[-1]["seq"]
    await trio.to_thread.run_sync(_pay, network, 4)  # while no client is connected
    second = await _collect(api, seen, lambda ev: _received(ev) >= 4)
    assert _contiguous(second, seen)
    assert not {e["seq"] for e in first} & {e["seq"] for e in second}


async def test_websocket_refuses_bad_tokens(network: Network) -> None:
    for headers in ([], [("Authorization", "Bearer nope")]):
        try:
            async with open_websocket_url(_ws_url(network.api_b, 0), extra_headers=headers) as socket:
                await socket.get_message()
        except ConnectionRejected as exc:
            assert exc.status_code in (401, 403)
        except ConnectionClosed as exc:
            assert exc.reason.code == 1008
        else:
            raise AssertionError("an unauthenticated client got an event")


def test_server_sent_events_replay_from_last_event_id(network: Network) -> None:
    api = network.api_b
    start = api.ok("GET", "/health")["last_event"]
    _pay(network, 2)
    wait_until(lambda: api.ok("GET", "/health")["last_event"] >= start + 2, what="events")
    seqs: list[int] = []
    headers = {"Authorization": f"Bearer {api.token}", "Last-Event-ID": str(start)}
    with httpx.stream("GET", api.base + "/events", headers=headers, timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("id: "):
                seqs.append(int(line[4:]))
            if len(seqs) >= 2:
                break
    assert seqs == [start + 1, start + 2]


async def test_events_survive_a_node_restart(network: Network) -> None:
    api = network.api_b
    start = api.ok("GET", "/health")["last_event"]
    await trio.to_thread.run_sync(_pay, network, 2)
    # accepted means B made the payment durable and published (journaled) its event first
    network.b.kill(signal.SIGTERM)
    network.b.start()
    wait_until(lambda: network.b.node_id in network.api_a.ok("GET", "/info")["peers"], what="reconnect")
    await trio.to_thread.run_sync(_pay, network, 1)
    events = await _collect(api, start, lambda ev: _received(ev) >= 3)
    assert _contiguous(events, start)
    kinds = [e["kind"] for e in events]
    assert "peer_disconnected" in kinds and kinds.count("payment_received") == 3



async def test_browsers_may_pass_the_token_in_the_query(network: Network) -> None:
    api = network.api_b
    start = api.ok("GET", "/health")["last_event"]
    url = _ws_url(api, max(start - 1, 0)) + f"&access_token={api.token}"
    with trio.fail_after(20):
        async with open_websocket_url(url) as socket:
            event = json.loads(await socket.get_message())
    assert event["seq"] == max(start, 1)
