"""Channel graphs for routing tests: named nodes, channels announced by both sides, a chain to check."""

from __future__ import annotations

import random

from channeld import protocol as p
from channeld import routing as r

CHAIN_ID = 31337
CONTRACT = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")


class World:
    """Nodes by name, the chain's channels, and a graph as node `viewer` would build it from gossip."""

    def __init__(self) -> None:
        self.signers: dict[str, p.Signer] = {}
        self.chain: dict[bytes, r.OnChainChannel] = {}
        self.graph = r.ChannelGraph(CHAIN_ID, CONTRACT, self.chain.get)
        self.serial = 0

    def node(self, name: str) -> bytes:
        if name not in self.signers:
            self.signers[name] = p.Signer(p.keccak256(b"routing " + name.encode()))
        return self.signers[name].address

    def name_of(self, address: bytes) -> str:
        return next(n for n, s in self.signers.items() if s.address == address)

    def channel(self, a: str, b: str, capacity: int = 1000, fees_a: p.FeePolicy | None = None,
                fees_b: p.FeePolicy | None = None) -> bytes:
        """Open a channel on chain and gossip both sides' announcements (None: that side stays silent)."""
        cid = p.keccak256(f"channel {a}-{b}".encode())
        p1, p2 = sorted((self.node(a), self.node(b)))
        self.chain[cid] = r.OnChainChannel(p1, p2, capacity)
        for me, other, fees in ((a, b, fees_a or p.FeePolicy()), (b, a, fees_b or p.FeePolicy())):
            self.announce(me, other, cid, capacity, fees)
        return cid

    def announce(self, me: str, other: str, cid: bytes, capacity: int, fees: p.FeePolicy,
                 reveal_timeout: int = p.DEFAULT_REVEAL_TIMEOUT) -> r.ChannelAnnouncement:
        self.serial += 1
        a = r.sign_announcement(self.signers[me], CHAIN_ID, CONTRACT, cid, self.node(other), capacity, fees,
                                self.serial, reveal_timeout)
        assert self.graph.add_announcement(r.decode_announcement(r.encode_announcement(a)))
        return a

    def names(self, route: p.Route) -> list[str]:
        return [self.name_of(h) for h in route.hops]


def random_world(seed: int, nodes: int = 7, channels: int = 12) -> World:
    rng = random.Random(seed)
    world = World()
    names = [f"n{i}" for i in range(nodes)]
    for name in names:
        world.node(name)
    pairs = {tuple(sorted(rng.sample(names, 2))) for _ in range(channels)}
    for a, b in sorted(pairs):
        world.channel(a, b, rng.randint(50, 400), p.FeePolicy(rng.randint(0, 9), rng.randint(0, 50_000)),
                      p.FeePolicy(rng.randint(0, 9), rng.randint(0, 50_000)))
    return world
