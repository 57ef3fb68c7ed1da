"""Request bodies and field types of the control API: every field typed and bounded.

Amounts are decimal strings of base units below 2**256 (a JSON number would round), addresses are EIP-55
checksummed, ids are hex of the right length. A bad field is answered 422 naming it; nothing is stored.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from eth_utils import is_checksum_address
from fastapi import HTTPException
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

_DIGITS = re.compile(r"[0-9]{1,78}")
_HEX32 = re.compile(r"0x[0-9a-fA-F]{64}")
_NODE_ID = re.compile(r"(0x)?0[23][0-9a-fA-F]{64}")
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
U63 = 2**63


def _amount(text: str) -> str:
    if not _DIGITS.fullmatch(text) or int(text) >= 2**256:
        raise ValueError("must be a decimal string of base units below 2**256")
    if int(text) == 0:
        raise ValueError("must be positive")
    return text


def _address(text: str) -> str:
    if not is_checksum_address(text):
        raise ValueError("must be a 0x-prefixed, EIP-55 checksummed 20-byte address")
    return text


def _node_id(text: str) -> str:
    if not _NODE_ID.fullmatch(text):
        raise ValueError("must be a 33-byte compressed public key in hex")
    return text.removeprefix("0x").lower()


Amount = Annotated[str, Field(max_length=78), AfterValidator(_amount)]
Address = Annotated[str, Field(max_length=42), AfterValidator(_address)]
NodeId = Annotated[str, Field(max_length=68), AfterValidator(_node_id)]
# a configured chain, by its name or its chain id (the node resolves it)
ChainRef = Annotated[str, Field(min_length=1, max_length=64)]
ChannelStatusName = Literal["open", "closed", "settled"]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConnectBody(Body):
    uri: str = Field(max_length=300)


class BenchBody(Body):
    """`POST /bench/pay`: the node pays `count` payments of `amount` over `channel`, `window` unanswered."""

    channel: str = Field(pattern=f"^{_HEX32.pattern}$")  # pydantic searches: anchor it
    count: int = Field(ge=1, le=1_000_000)
    amount: Amount = "1"
    window: int = Field(default=64, ge=1, le=64)


class BenchRequestsBody(Body):
    """`POST /bench/pay-requests`: the node pays these payment requests, `window` at a time."""

    requests: list[str] = Field(min_length=1, max_length=10_000)
    window: int = Field(default=16, ge=1, le=64)
    max_fee: Amount | None = None

    @model_validator(mode="after")
    def _sizes(self) -> BenchRequestsBody:
        if any(not 8 <= len(text) <= 1024 for text in self.requests):
            raise ValueError("a payment request is 8-1024 characters")
        return self


class OpenBody(Body):
    uri: str = Field(max_length=300)
    deposit: Amount
    token: Address | None = None
    challenge_period: int = Field(default=3600, ge=1, lt=2**64)
    chain: ChainRef | None = None


class AmountBody(Body):
    amount: Amount


class WithdrawBody(Body):
    amount: Amount
    to: Address | None = None


class PayBody(Body):
    """Either `node_id` and `amount` (a direct payment) or `request` (a payment request string)."""

    node_id: NodeId | None = None
    amount: Amount | None = None
    request: str | None = Field(default=None, min_length=8, max_length=1024)
    max_fee: Amount | None = None  # the most a routed payment may pay the mediators in fees
    max_spend: Amount | None = None  # a request: the most to spend in our asset (across assets: required)
    # direct: pay on this chain only; a request: pay from our native coin on this chain
    chain: ChainRef | None = None

    @model_validator(mode="after")
    def _one_form(self) -> PayBody:
        direct = self.node_id is not None and self.amount is not None
        if self.request is None and not direct:
            raise ValueError("give node_id and amount, or request")
        if self.request is not None and (self.node_id is not None or self.amount is not None):
            raise ValueError("give request alone, without node_id or amount")
        return self


class CloseBody(Body):
    force: bool = False


class PathBody(Body):
    path: str = Field(min_length=1, max_length=4096)


class RequestBody(Body):
    amount: Amount
    description: str = Field(default="", max_length=256)
    expires_in: int = Field(default=3600, ge=1, le=365 * 24 * 3600)
    chain: ChainRef | None = None  # default: the primary chain
    token: Address | None = None  # paid in this ERC-20 (default: the chain's native coin)


class DecodeBody(Body):
    request: str = Field(min_length=8, max_length=1024)


class TowerBody(Body):
    uri: str = Field(max_length=300)
    chain: ChainRef | None = None  # the chain the tower watches


class WebhookBody(Body):
    url: str = Field(min_length=8, max_length=2048, pattern=r"^https?://[^\s]+$")


def field_error(where: str, name: str, message: str) -> HTTPException:
    return HTTPException(422, detail=[{"loc": [where, name], "msg": message, "type": "value_error"}])


def channel_id_param(text: str) -> bytes:
    if not _HEX32.fullmatch(text):
        raise field_error("path", "channel_id", "must be 0x-hex of 32 bytes")
    return bytes.fromhex(text[2:])


def hash_param(text: str) -> bytes:
    if not _HEX32.fullmatch(text):
        raise field_error("path", "payment_hash", "must be 0x-hex of 32 bytes")
    return bytes.fromhex(text[2:])
