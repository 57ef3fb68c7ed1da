"""The node daemon: channels, peers, chain and control API in one trio nursery.

`Node(datadir, config, key)` is one node; `await node.run()` serves until cancelled (`run_node` adds
SIGINT/SIGTERM handling). Its parts: `ChannelService` (channel states, write-behind durable rounds),
`PeerService` (sessions and re-establishment), `ChainWatcher` (contract events in) and
`TransactionWorker` (the outbox out), an `EventBus` and `NodeMetrics`.
"""

from channeld.node._channels import ChannelEntry, ChannelService, UnknownChannel
from channeld.node._events import EventBus, NodeEvent
from channeld.node._metrics import NodeMetrics
from channeld.node._node import RUNTIME_FILE, STORE_DIR, ChainSetup, Node, run_node
from channeld.node._onchain import ChainAccess, ChainWatcher, OperationStatus, TransactionWorker
from channeld.node._ops import OperationRefused
from channeld.node._peers import PeerService
from channeld.node._records import Envelope, Operation

__all__ = [
    "RUNTIME_FILE",
    "STORE_DIR",
    "ChainAccess",
    "ChainSetup",
    "ChainWatcher",
    "ChannelEntry",
    "ChannelService",
    "Envelope",
    "EventBus",
    "Node",
    "NodeEvent",
    "NodeMetrics",
    "Operation",
    "OperationRefused",
    "OperationStatus",
    "PeerService",
    "TransactionWorker",
    "UnknownChannel",
    "run_node",
]
