"""The floor: the work no design can avoid per direct payment, timed alone in a tight loop.

Payer: one EIP-712 digest and one secp256k1 signature. Payee: one digest and one signature check against
the partner's known key, done as the protocol does it (ECDSA verification of (r, s); `v` is fixed only
when a proof is used on chain, see proto/messages.md#signatures).
Both use channeld.protocol's own functions. The two sides run in two processes at once, one per core, as
two nodes would; the floor is the slower side's rate. Beside it, the durability floor: one fsynced store
commit of one channel record, which each side needs once per payment (or per group of them).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from pathlib import Path

from channeld.protocol import KnownKey, Signer, balance_proof_digest
from channeld.store import Batch, Namespace, Store

CHAIN_ID = 31337
CONTRACT = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
CHANNEL_ID = bytes(range(32))
LOCKS_ROOT = bytes(32)
PAYER_SECRET = bytes(31) + b"\x07"
DISTINCT_SIGNATURES = 512  # the payee cycles over these (each check costs the same)


@dataclass(frozen=True, slots=True)
class Rate:
    """Payments per second of wall-clock time, and per second of this process's own CPU time (what a
    core of its own would give: on a shared machine the two differ)."""

    wall: float
    cpu: float


@dataclass(frozen=True, slots=True)
class FloorResult:
    payer: Rate
    payee: Rate

    @property
    def payer_pps(self) -> float:
        return self.payer.wall

    @property
    def payee_pps(self) -> float:
        return self.payee.wall

    @property
    def floor_pps(self) -> float:
        return min(self.payer.wall, self.payee.wall)

    @property
    def floor_cpu_pps(self) -> float:
        return min(self.payer.cpu, self.payee.cpu)


def _digest(nonce: int) -> bytes:
    return balance_proof_digest(CHAIN_ID, CONTRACT, CHANNEL_ID, nonce, nonce * 1000, 0, LOCKS_ROOT)


def _timed(count: int, loop: Callable[[], None]) -> Rate:
    wall, cpu = time.perf_counter(), time.process_time()
    loop()
    return Rate(count / (time.perf_counter() - wall), count / max(time.process_time() - cpu, 1e-9))


def payer_rate(count: int) -> Rate:
    """Payments one core can sign: digest, then sign."""
    signer = Signer(PAYER_SECRET)

    def loop() -> None:
        for nonce in range(1, count + 1):
            signer.sign(_digest(nonce))

    return _timed(count, loop)


def _signed(count: int) -> list[tuple[int, bytes]]:
    signer = Signer(PAYER_SECRET)
    return [(nonce, signer.sign(_digest(nonce))) for nonce in range(1, count + 1)]


def payee_rate(count: int, signed: list[tuple[int, bytes]] | None = None) -> Rate:
    """Payments one core can check: digest, then verify (r, s) against the partner's key."""
    signed = signed or _signed(min(count, DISTINCT_SIGNATURES))
    partner = KnownKey(Signer(PAYER_SECRET).public_key)
    cycle = len(signed)

    def loop() -> None:
        for i in range(count):
            nonce, signature = signed[i % cycle]
            partner.check_rs(_digest(nonce), signature)

    return _timed(count, loop)


def _side(role: str, count: int, barrier: Barrier, results: multiprocessing.Queue[tuple[str, Rate]]) -> None:
    signed = _signed(min(count, DISTINCT_SIGNATURES)) if role == "payee" else None
    payer_rate(200)  # warm caches and the allocator before the timed loop
    barrier.wait()
    rate = payer_rate(count) if role == "payer" else payee_rate(count, signed)
    results.put((role, rate))


def commit_times(path: Path, count: int) -> list[float]:
    """Seconds per durable store commit (one small record, fsynced), as every payment needs on each side."""
    ns = Namespace(CHAIN_ID, CONTRACT)
    times = []
    with Store.open(path) as store:
        for nonce in range(count):
            batch = Batch().put_channel(ns, CHANNEL_ID, nonce.to_bytes(8, "big") * 40)
            started = time.perf_counter()
            store.commit_sync(batch)
            times.append(time.perf_counter() - started)
    return times


def measure_floor(count: int) -> FloorResult:
    """Both sides at once in two fresh processes; each does `count` payments."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results: multiprocessing.Queue[tuple[str, Rate]] = context.Queue()
    sides = [context.Process(target=_side, args=(role, count, barrier, results))
             for role in ("payer", "payee")]
    for process in sides:
        process.start()
    rates = dict(results.get(timeout=120) for _ in sides)
    for process in sides:
        process.join(timeout=30)
    return FloorResult(rates["payer"], rates["payee"])
