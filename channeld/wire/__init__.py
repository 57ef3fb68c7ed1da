"""Wire messages and their strict msgpack codec (normative spec: proto/messages.md).

Build a message (`Payment(...)`, `Ping(...)`: a frozen dataclass that refuses invalid values with
`InvalidMessage`), turn it into bytes with `encode`, and back with `decode` (one framed payload, as the
BOLT 8 transport delivers) or `MessageStream` (a byte stream). Every decoding failure is a
`DecodeError`, a `PeerFault`: answer it with an `Error` message and drop the connection.
"""

from channeld.wire._codec import MAX_MESSAGE_SIZE, MessageStream, decode, encode
from channeld.wire._errors import (
    DecodeError,
    InvalidField,
    InvalidMessage,
    MessageTooLarge,
    UnknownMessageType,
    UnsupportedVersion,
)
from channeld.wire._messages import (
    PROTOCOL_VERSION,
    ZERO32,
    BalanceProof,
    ChannelOpened,
    Error,
    Init,
    Lock,
    LockedTransfer,
    LockExpired,
    Payment,
    PaymentAccepted,
    PaymentRefused,
    Ping,
    Pong,
    Reestablish,
    SecretReveal,
    SettleRequest,
    SettleSignature,
    Unlock,
    WithdrawRequest,
    WithdrawSignature,
    secrethash_of,
)
from channeld.wire._part import CATALOGUE, Message, Part

__all__ = [
    "CATALOGUE",
    "MAX_MESSAGE_SIZE",
    "PROTOCOL_VERSION",
    "ZERO32",
    "BalanceProof",
    "ChannelOpened",
    "DecodeError",
    "Error",
    "Init",
    "InvalidField",
    "InvalidMessage",
    "Lock",
    "LockExpired",
    "LockedTransfer",
    "Message",
    "MessageStream",
    "MessageTooLarge",
    "Part",
    "Payment",
    "PaymentAccepted",
    "PaymentRefused",
    "Ping",
    "Pong",
    "Reestablish",
    "SecretReveal",
    "SettleRequest",
    "SettleSignature",
    "UnknownMessageType",
    "Unlock",
    "UnsupportedVersion",
    "WithdrawRequest",
    "WithdrawSignature",
    "decode",
    "encode",
    "secrethash_of",
]
