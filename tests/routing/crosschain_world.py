"""Two chains, one asset on each, named nodes with channels and conversions, as a payer would see them."""

from __future__ import annotations

from channeld import protocol as p
from channeld import routing as r
from channeld.protocol._crosschain import Asset, ChainTiming, ConversionTerms

CHAIN_A, CHAIN_B = 31337, 10
CONTRACT_A = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
CONTRACT_B = bytes.fromhex("e7f1725e7734ce288f8367e1bb143e90bb3f0512")
TOKEN_Y = bytes.fromhex("9fe46736679d2d9a65f0992f2272de9f3c7fa6e0")
X = Asset(CHAIN_A, CONTRACT_A)           # the native coin on A
Y = Asset(CHAIN_B, CONTRACT_B, TOKEN_Y)  # a token on B
NOW = 1_700_000_000
# A is the slow chain (12 s blocks, 20 confirmations), B the fast one
TIMINGS = {CHAIN_A: ChainTiming(CHAIN_A, 12, 20, 120, 15), CHAIN_B: ChainTiming(CHAIN_B, 2, 30, 30, 5)}
REVEAL = {CHAIN_A: 900, CHAIN_B: 300}


class World:
    def __init__(self, assets: tuple[Asset, ...] = (X, Y)) -> None:
        self.signers: dict[str, p.Signer] = {}
        self.chains: dict[Asset, dict[bytes, r.OnChainChannel]] = {a: {} for a in assets}
        self.graphs = {a: r.ChannelGraph(a.chain_id, a.contract, self.chains[a].get) for a in assets}
        self.graph = r.CrossChainGraph(self.graphs)
        self.serial = 0

    def node(self, name: str) -> bytes:
        if name not in self.signers:
            self.signers[name] = p.Signer(p.keccak256(b"cross-chain " + name.encode()))
        return self.signers[name].address

    def name_of(self, address: bytes) -> str:
        return next(n for n, s in self.signers.items() if s.address == address)

    def channel(self, asset: Asset, a: str, b: str, capacity: int = 10_000, fees_a: p.FeePolicy | None = None,
                fees_b: p.FeePolicy | None = None) -> bytes:
        cid = p.keccak256(f"{asset.chain_id} {asset.token.hex()} {a}-{b}".encode())
        p1, p2 = sorted((self.node(a), self.node(b)))
        self.chains[asset][cid] = r.OnChainChannel(p1, p2, capacity)
        for me, other, fees in ((a, b, fees_a or p.FeePolicy()), (b, a, fees_b or p.FeePolicy())):
            self.serial += 1
            ann = r.sign_announcement(self.signers[me], asset.chain_id, asset.contract, cid, self.node(other),
                                      capacity, fees, self.serial, REVEAL[asset.chain_id])
            assert self.graphs[asset].add_announcement(ann)
        return cid

    def convert(self, name: str, source: Asset, target: Asset, numerator: int, denominator: int,
                fees: p.FeePolicy | None = None, margin: int = 0, expires_at: int = NOW + 3600,
                serial: int | None = None) -> r.ConversionAnnouncement:
        self.serial += 1
        terms = ConversionTerms(numerator, denominator, fees or p.FeePolicy())
        ann = r.sign_conversion(self.signers[name], source, target, terms, margin,
                                self.serial if serial is None else serial, expires_at)
        wired = r.conversion_from_wire(r.conversion_to_wire(ann))
        assert r.decode_conversion(r.encode_conversion(wired)) == ann
        self.graph.add_conversion(wired, NOW)
        return ann

    def plan(self, payer: str, recipient: str, amount: int, max_spend: int, pay: Asset = X,
             receive: Asset = Y, **search: object) -> tuple[r.CrossChainRoute, ...]:
        request = r.CrossChainPayment(self.node(payer), pay, self.node(recipient), receive, amount, max_spend)
        return r.plan_crosschain(self.graph, request, TIMINGS, NOW, r.Search(**search))  # type: ignore[arg-type]

    def names(self, route: r.CrossChainRoute) -> list[str]:
        return [self.name_of(h) if h in (s.address for s in self.signers.values()) else "marker"
                for h in route.metadata]


def bridge_world() -> World:
    """payer -X- m1 -X- conv ~convert~ conv -Y- m2 -Y- shop: one converter at 3/2 Y per X, fee 4."""
    w = World()
    w.channel(X, "payer", "m1")
    w.channel(X, "m1", "conv", fees_a=p.FeePolicy(1, 0))
    w.channel(Y, "conv", "m2", fees_a=p.FeePolicy(50, 0))  # the converter's channel fee is not charged
    w.channel(Y, "m2", "shop", fees_a=p.FeePolicy(2, 1000))
    w.convert("conv", X, Y, 3, 2, p.FeePolicy(4, 0))
    return w
