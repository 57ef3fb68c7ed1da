"""Scale: 10,000 channels' proofs stored through the push path, memory bounded (RSS measured), and a
close among them found by a point lookup of its channel id."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import trio

from channeld.chain.contract import ETHER, ChannelClosed, ChannelOpened
from channeld.store import Namespace
from channeld.watchtower import TowerDB, TowerSettings, Watchtower
from channeld.watchtower.client import authorize
from channeld.wire import PushAccepted, PushProof
from tests.watchtower.kit import Party, sign_proof

CHANNELS = 10_000
CHAIN, CONTRACT = 31337, bytes(range(20))
ALICE, BOB, TOWER = Party(b"\x0a" * 32), Party(b"\x0b" * 32), Party(b"\x0c" * 32)


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def channel_id(index: int) -> bytes:
    return hashlib.sha256(index.to_bytes(8, "big")).digest()


def opened(index: int) -> ChannelOpened:
    first, second = sorted([ALICE.address, BOB.address], key=lambda a: int(a, 16))
    return ChannelOpened(channel_id(index), first, second, ETHER, 600, 10**18, 0)


async def push_range(tower: Watchtower, start: int, stop: int, pusher: bytes) -> None:
    async def worker(indexes: range) -> None:
        for index in indexes:
            proof = sign_proof(CHAIN, CONTRACT, channel_id(index), ALICE.signer, 1 + index % 50, 10 + index)
            reply = await tower.handle_push(pusher, PushProof(proof, authorize(BOB.signer, proof)))
            assert isinstance(reply, PushAccepted), reply

    lanes = 32  # concurrent sessions: their fsyncs share LevelDB's group commit
    async with trio.open_nursery() as nursery:
        for lane in range(lanes):
            nursery.start_soon(worker, range(start + lane, stop, lanes))


async def test_ten_thousand_channels_in_bounded_memory(tmp_path: Path) -> None:
    db = TowerDB(tmp_path / "db", Namespace(CHAIN, CONTRACT))
    try:
        tower = Watchtower(db, TOWER.node_key, TowerSettings())
        for start in range(0, CHANNELS, 1000):
            await tower.apply_events([opened(i) for i in range(start, start + 1000)])
        pusher = BOB.signer.address
        began, rss_start = time.monotonic(), rss_mib()
        await push_range(tower, 0, CHANNELS // 2, pusher)
        rss_half = rss_mib()
        await push_range(tower, CHANNELS // 2, CHANNELS, pusher)
        rss_end, elapsed = rss_mib(), time.monotonic() - began
        assert tower.statistics().proofs_held == CHANNELS == db.count_held()

        target = 7_777
        closed = ChannelClosed(channel_id(target), ALICE.address, 10_000, 0, 0, 0, bytes(32))
        looked_up = time.monotonic()
        await tower.apply_events([closed])
        lookup = time.monotonic() - looked_up
        disputes = list(db.iter_disputes())
        assert [(d.channel_id, d.nonce) for d in disputes] == [(channel_id(target), 1 + target % 50)]
        print(f"\n{CHANNELS} pushes in {elapsed:.1f} s ({CHANNELS / elapsed:.0f}/s); RSS {rss_start:.1f} -> "
              f"{rss_half:.1f} -> {rss_end:.1f} MiB; close handled in {lookup * 1000:.1f} ms")
        # state lives in LevelDB: the second 5,000 channels add no more than the first did, and little
        assert rss_end - rss_half < 16
        assert rss_end - rss_start < 48
        assert lookup < 0.5
    finally:
        db.close()
