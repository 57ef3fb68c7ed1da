"""The routed load path `POST /bench/pay-requests`: three daemons in a line, the payer paying the payee's
requests itself (journaled, locked at every hop, the receipt back), and what it refuses before paying."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from channeld.api._client import ApiError
from channeld.client._payreq import PaymentRequest
from tests.node.helpers import Daemon, Zygote
from tests.node.multihop import balance, open_to, pay_request, request, start
from tests.tools import Anvil

AMOUNT = 1_000


class Line:
    def __init__(self, a: Daemon, b: Daemon, c: Daemon) -> None:
        self.a, self.b, self.c = a, b, c
        self.ab, self.bc = open_to(a, b), open_to(b, c)


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory, chain: tuple[Anvil, str],
         zygote: Zygote) -> Iterator[Line]:
    root = tmp_path_factory.mktemp("benchline")
    daemons = tuple(start(root, name, chain, zygote) for name in "abc")
    built = Line(*daemons)
    assert pay_request(built.a, built.c, AMOUNT)["status"] == "accepted"  # the route is known
    yield built
    for daemon in daemons:
        if daemon.pid is not None:
            daemon.kill(signal.SIGTERM)


def test_the_payer_pays_every_request_and_each_is_paid_at_the_payee(line: Line) -> None:
    requests = [request(line.c, AMOUNT) for _ in range(12)]
    before = balance(line.c, line.bc)
    result = line.a.call("POST", "/bench/pay-requests", {"requests": requests, "window": 4})
    assert result["payments"] == 12 and result["window"] == 4
    assert result["pps"] > 0 and 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
    for text in requests:
        payment_hash = PaymentRequest.decode(text).payment_hash.hex()
        assert line.c.call("GET", f"/requests/0x{payment_hash}")["status"] == "paid"
    assert balance(line.c, line.bc) == before + 12 * AMOUNT


def test_a_request_already_paid_is_refused_before_anything_is_paid(line: Line) -> None:
    fresh, paid = request(line.c, AMOUNT), request(line.c, AMOUNT)
    line.a.call("POST", "/bench/pay-requests", {"requests": [paid], "window": 1})
    before = balance(line.a, line.ab)
    with pytest.raises(ApiError, match="already paid"):
        line.a.call("POST", "/bench/pay-requests", {"requests": [fresh, paid], "window": 2})
    assert balance(line.a, line.ab) == before
    payment_hash = PaymentRequest.decode(fresh).payment_hash.hex()
    assert line.c.call("GET", f"/requests/0x{payment_hash}")["status"] == "open"


def test_a_request_listed_twice_or_a_bad_window_is_refused(line: Line) -> None:
    text = request(line.c, AMOUNT)
    with pytest.raises(ApiError, match="listed twice"):
        line.a.call("POST", "/bench/pay-requests", {"requests": [text, text]})
    with pytest.raises(ApiError, match="window"):
        line.a.call("POST", "/bench/pay-requests", {"requests": [text], "window": 65})
    with pytest.raises(ApiError, match="requests"):
        line.a.call("POST", "/bench/pay-requests", {"requests": []})
