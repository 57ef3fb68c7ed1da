"""Crash safety: two daemons stream payments both ways; one is SIGKILLed at random moments, many times.

After each restart both sides must agree on every balance and nonce; every payment the API acknowledged
is included; none is applied twice (every payment is 1 wei, so a side's transferred amount must equal its
nonce, and lie between what was acknowledged and what was attempted).
"""

from __future__ import annotations

import random
import signal
import threading
from pathlib import Path

from channeld.api._client import ApiError, NodeNotRunning
from tests.node.helpers import Daemon, Zygote, make_daemon, open_channel, wait_until
from tests.tools import Anvil

ROUNDS = 50
ETH = 10**18


class Streamer(threading.Thread):
    """Pays 1 wei at a time from `payer` to `payee` until stopped; counts attempts and acknowledgements."""

    def __init__(self, payer: Daemon, payee: Daemon) -> None:
        super().__init__(daemon=True)
        self.payer, self.payee = payer, payee
        self.attempted = self.acknowledged = 0
        self.halt = threading.Event()

    def run(self) -> None:
        body = {"node_id": self.payee.node_id, "amount": "1"}
        while not self.halt.is_set():
            try:
                client = self.payer.client()
                self.attempted += 1
                if client.call("POST", "/payments", body)["status"] == "accepted":
                    self.acknowledged += 1
            except (ApiError, NodeNotRunning):
                self.halt.wait(0.02)


def _transferred(ours: dict[str, object], deposit: int, withdrawn: int = 0) -> int:
    # our balance = deposit - withdrawn - transferred + received; with received known from the partner
    return deposit - withdrawn - int(str(ours["our_balance"]))


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(
        tmp_path: Path, chain: tuple[Anvil, str], zygote: Zygote) -> None:
    anvil, contract = chain
    a = make_daemon(tmp_path, "a", anvil, contract, zygote)
    b = make_daemon(tmp_path, "b", anvil, contract, zygote)
    a.start()
    b.start()
    cid = open_channel(a, b, ETH // 10)
    b.call("POST", f"/channels/{cid}/deposit", {"amount": str(ETH // 10)})
    wait_until(lambda: a.channel()["partner_deposit"] == b.channel()["our_deposit"] == str(ETH // 10),
               what="B's deposit, seen by both")
    rng = random.Random(20240601)
    streams = [Streamer(a, b), Streamer(b, a)]
    for stream in streams:
        stream.start()
    for _ in range(ROUNDS):
        victim = rng.choice((a, b))
        wait_until(lambda: min(s.acknowledged for s in streams) > 0, what="payments flowing")
        threading.Event().wait(rng.uniform(0.0, 0.15))
        victim.kill(signal.SIGKILL)
        assert anvil.process.poll() is None, anvil.process.stderr.read()  # type: ignore[union-attr]
        victim.start()
        _check(a, b, streams, quiesce=False)
    for stream in streams:
        stream.halt.set()
        stream.join()
    _check(a, b, streams, quiesce=True)
    for daemon in (a, b):
        daemon.kill(signal.SIGTERM)


def _check(a: Daemon, b: Daemon, streams: list[Streamer], quiesce: bool) -> None:
    def settled() -> tuple[dict[str, object], dict[str, object]] | None:
        ca = a.channel()
        cb = b.channel()
        if ca["our_nonce"] != cb["partner_nonce"] or ca["partner_nonce"] != cb["our_nonce"]:
            return None
        if quiesce and (ca["in_flight"] or cb["in_flight"]):
            return None
        return ca, cb

    ca, cb = wait_until(settled, timeout=30, what="nonces to agree after the restart")
    if not quiesce:
        return
    assert ca["our_balance"] == cb["partner_balance"] and cb["our_balance"] == ca["partner_balance"]
    a_to_b, b_to_a = int(str(ca["our_nonce"])), int(str(cb["our_nonce"]))
    # each payment is 1 wei and one nonce: balance moved == nonces, so nothing applied twice
    assert int(str(ca["our_balance"])) == ETH // 10 - a_to_b + b_to_a
    assert streams[0].acknowledged <= a_to_b <= streams[0].attempted
    assert streams[1].acknowledged <= b_to_a <= streams[1].attempted
