"""Routing: the channel graph from signed announcements and our own channels, and path finding.

The flow, for the node: build a `ChannelGraph(chain_id, contract, lookup)` where `lookup(channel_id)`
asks the chain for the channel (`OnChainChannel` or None); feed it our channels (`add_own_channel`, again
whenever one changes) and gossiped announcements (`decode_announcement` then `add_announcement`, which
verifies signature and chain and raises `BadAnnouncement`); announce our own with `sign_announcement`.
To pay, `plan_routes(graph, us, target, amount, fee_cap, online=...)` gives the routes the initiator
machine (`channeld.protocol.start_payment`) tries in order, or a `RoutingError` saying why there are
none. Report outcomes with `record_success` / `record_failure` so later searches learn from them.
"""

from channeld.routing._announce import (
    ANNOUNCEMENT_VERSION,
    BadAnnouncement,
    ChainLookup,
    ChannelAnnouncement,
    OnChainChannel,
    announcement_digest,
    decode_announcement,
    encode_announcement,
    sign_announcement,
    verify_announcement,
)
from channeld.routing._graph import ChannelGraph, Edge
from channeld.routing._paths import (
    Constraints,
    Path,
    RiskWeights,
    cheapest_path,
    k_shortest_paths,
    path_cost,
)
from channeld.routing._planner import (
    DEFAULT_ROUTES,
    FeeCapExceeded,
    NoCapacity,
    NoRoute,
    RouteOffline,
    RoutingError,
    plan_routes,
)

__all__ = [
    "ANNOUNCEMENT_VERSION",
    "DEFAULT_ROUTES",
    "BadAnnouncement",
    "ChainLookup",
    "ChannelAnnouncement",
    "ChannelGraph",
    "Constraints",
    "Edge",
    "FeeCapExceeded",
    "NoCapacity",
    "NoRoute",
    "OnChainChannel",
    "Path",
    "RiskWeights",
    "RouteOffline",
    "RoutingError",
    "announcement_digest",
    "cheapest_path",
    "decode_announcement",
    "encode_announcement",
    "k_shortest_paths",
    "path_cost",
    "plan_routes",
    "sign_announcement",
    "verify_announcement",
]
