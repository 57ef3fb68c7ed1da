"""The chain: contract bindings, backends, event follower and transaction sender.

The names below are the chain layer's public face; the node, the CLI and the demo use only these
(and `channeld.chain.contract`, the channel contract's binding).
"""

from channeld.chain.aio import AsyncSender, follow
from channeld.chain.artifact import ContractArtifact, decode_revert, load_artifact
from channeld.chain.backend import ChainBackend, connect_rpc, start_embedded
from channeld.chain.deploy import Deployment, deploy, find_deploy_block, verify_deployment
from channeld.chain.errors import (
    ConfirmationTimeout,
    DeploymentMismatch,
    InsufficientFunds,
    ReorgTooDeep,
    RpcFailed,
    RpcUnreachable,
    TransactionReverted,
)
from channeld.chain.follower import (
    CursorStore,
    EventFollower,
    FollowerCursor,
    FollowerUpdate,
    MemoryCursorStore,
)
from channeld.chain.records import BlockMark, RawLog, Receipt
from channeld.chain.sender import SubmittedTx, TransactionSender, TxRequest

__all__ = [
    "AsyncSender", "BlockMark", "ChainBackend", "ConfirmationTimeout", "ContractArtifact", "CursorStore",
    "Deployment", "DeploymentMismatch", "EventFollower", "FollowerCursor", "FollowerUpdate",
    "InsufficientFunds", "MemoryCursorStore", "RawLog", "Receipt", "ReorgTooDeep", "RpcFailed",
    "RpcUnreachable", "SubmittedTx", "TransactionReverted", "TransactionSender", "TxRequest",
    "connect_rpc", "decode_revert", "deploy", "find_deploy_block", "follow", "load_artifact",
    "start_embedded", "verify_deployment",
]
