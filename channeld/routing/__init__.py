"""Routing: the channel graph from signed announcements and our own channels, and path finding.

The flow, for the node: build a `ChannelGraph(chain_id, contract, lookup)` where `lookup(channel_id)`
asks the chain for the channel (`OnChainChannel` or None); feed it our channels (`add_own_channel`, again
whenever one changes) and gossiped announcements (`decode_announcement` then `add_announcement`, which
verifies signature and chain and raises `BadAnnouncement`); announce our own with `sign_announcement`.
To pay, `plan_routes(graph, us, target, amount, fee_cap, online=...)` gives the routes the initiator
machine (`channeld.protocol.start_payment`) tries in order, or a `RoutingError` saying why there are
none. Report outcomes with `record_success` / `record_failure` so later searches learn from them.

Across chains and assets: a `CrossChainGraph` holds one `ChannelGraph` per `Asset` and the verified
`ConversionAnnouncement`s between them (`sign_conversion`, gossiped as `wire.ConversionGossip`:
`conversion_to_wire` / `conversion_from_wire`); `plan_crosschain(graph, CrossChainPayment(...), timings,
now)` gives routes with every lock's amount and expiry planned, or a `RoutingError` (`SpendCapExceeded`
when the rates put the payment over the payer's maximum).
"""

from channeld.protocol._crosschain import Asset, ChainTiming, ConversionTerms
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
from channeld.routing._conversion import (
    CONVERSION_VERSION,
    MAX_CONVERSION_LIFETIME,
    ConversionAnnouncement,
    conversion_digest,
    conversion_from_wire,
    conversion_to_wire,
    decode_conversion,
    encode_conversion,
    sign_conversion,
    verify_conversion,
)
from channeld.routing._crosschain import (
    DEFAULT_MAX_CONVERSIONS,
    CrossChainGraph,
    CrossChainPayment,
    CrossChainRoute,
    PlannedLock,
    RouteTooSlow,
    Search,
    Segment,
    SpendCapExceeded,
    UnknownChain,
    plan_crosschain,
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
    "CONVERSION_VERSION",
    "DEFAULT_MAX_CONVERSIONS",
    "DEFAULT_ROUTES",
    "MAX_CONVERSION_LIFETIME",
    "Asset",
    "BadAnnouncement",
    "ChainLookup",
    "ChainTiming",
    "ChannelAnnouncement",
    "ChannelGraph",
    "Constraints",
    "ConversionAnnouncement",
    "ConversionTerms",
    "CrossChainGraph",
    "CrossChainPayment",
    "CrossChainRoute",
    "Edge",
    "FeeCapExceeded",
    "NoCapacity",
    "NoRoute",
    "OnChainChannel",
    "Path",
    "PlannedLock",
    "RiskWeights",
    "RouteOffline",
    "RouteTooSlow",
    "RoutingError",
    "Search",
    "Segment",
    "SpendCapExceeded",
    "UnknownChain",
    "announcement_digest",
    "cheapest_path",
    "conversion_digest",
    "conversion_from_wire",
    "conversion_to_wire",
    "decode_announcement",
    "decode_conversion",
    "encode_announcement",
    "encode_conversion",
    "k_shortest_paths",
    "path_cost",
    "plan_crosschain",
    "plan_routes",
    "sign_announcement",
    "sign_conversion",
    "verify_announcement",
    "verify_conversion",
]
