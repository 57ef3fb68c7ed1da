"""Prometheus metrics of one node, in its own registry (several nodes may share a process: the demo)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from channeld.protocol import ChannelStatus


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.payments = Counter("channeld_payments", "Direct payments, by direction and outcome.",
                                ["direction", "outcome"], registry=self.registry)
        self.latency = Histogram("channeld_payment_latency_seconds",
                                 "From a payment request to the partner's durable acceptance.",
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                                 registry=self.registry)
        self.channels = Gauge("channeld_channels", "Channels by status.", ["status"], registry=self.registry)
        self.peers = Gauge("channeld_peers", "Connected peers.", registry=self.registry)
        self.chain_lag = Gauge("channeld_chain_lag_blocks", "Blocks between the chain head and the follower.",
                               registry=self.registry)
        self.pending_transactions = Gauge("channeld_pending_transactions",
                                          "Outbox operations not yet mined.", registry=self.registry)
        self.store_rounds = Gauge("channeld_store_rounds", "Durable commit rounds since start.",
                                  registry=self.registry)
        self.chain_stalled = Gauge("channeld_chain_stalled", "1 while the chain's RPC is failing, else 0.",
                                   ["chain", "chain_id"], registry=self.registry)
        self.chain_follower_lag = Gauge("channeld_chain_follower_lag_blocks",
                                        "Blocks between each chain's head and its follower.",
                                        ["chain", "chain_id"], registry=self.registry)
        self.chain_drifting_tokens = Gauge("channeld_chain_drifting_tokens",
                                           "Tokens whose balance in the chain's hub moved without transfers "
                                           "(rebasing); channels in them may be underfunded.",
                                           ["chain", "chain_id"], registry=self.registry)

    def refresh(self, statuses: Callable[[], list[ChannelStatus]], peers: int, lag: int, pending: int,
                rounds: int) -> None:
        counts = {status.name.lower(): 0 for status in ChannelStatus}
        for status in statuses():
            counts[status.name.lower()] += 1
        for name, count in counts.items():
            self.channels.labels(name).set(count)
        self.peers.set(peers)
        self.chain_lag.set(max(lag, 0))
        self.pending_transactions.set(pending)
        self.store_rounds.set(rounds)

    def refresh_chain(self, name: str, chain_id: int, stalled: bool, lag: int, drifting: int) -> None:
        self.chain_stalled.labels(name, str(chain_id)).set(1 if stalled else 0)
        self.chain_follower_lag.labels(name, str(chain_id)).set(max(lag, 0))
        self.chain_drifting_tokens.labels(name, str(chain_id)).set(drifting)

    def render(self) -> bytes:
        return generate_latest(self.registry)
