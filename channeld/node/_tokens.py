"""Assets on each chain: the per-chain token allow-list, and each token's symbol and decimals from the chain.

A token with a fee on transfer (or a balance that rebases down) is refused by the contract itself: a
deposit must grow the contract's balance by exactly the amount (`TokenAmountMismatch`), so the open's
outbox operation fails with that reason and no channel exists. The node checks before that what it can
without spending anything: the allow-list, and that the address is an ERC-20 contract at all (its
`decimals()` and `symbol()` answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from eth_abi import decode as abi_decode
from eth_utils import to_checksum_address

from channeld.chain import ChainBackend
from channeld.errors import ChanneldError, LocalFault

if TYPE_CHECKING:
    from channeld.node._rooms import ChainRoom

DECIMALS_SELECTOR = bytes.fromhex("313ce567")
SYMBOL_SELECTOR = bytes.fromhex("95d89b41")
NATIVE = bytes(20)


class TokenRefused(LocalFault):
    """A token channels may not be opened in on this chain (not allowed, or not an ERC-20 contract)."""


@dataclass(frozen=True, slots=True)
class Asset:
    """What amounts of one token are shown in: its symbol and decimals, as the chain reports them."""

    symbol: str
    decimals: int

    def human(self, amount: int) -> str:
        """`amount` (smallest units) in whole tokens, exact: 1500000 at 6 decimals is `1.5 USDC`."""
        value = Decimal(amount).scaleb(-self.decimals)
        text = format(value.normalize(), "f") if amount else "0"
        return f"{text} {self.symbol}"


ETHER = Asset("ETH", 18)


def read_asset(backend: ChainBackend, token: bytes) -> Asset:
    """Blocking: the token's symbol and decimals; raises `TokenRefused` if it does not answer as ERC-20."""
    address = to_checksum_address(token)
    try:
        decimals = abi_decode(["uint8"], backend.call({"to": address, "data": DECIMALS_SELECTOR}))[0]
        symbol = abi_decode(["string"], backend.call({"to": address, "data": SYMBOL_SELECTOR}))[0]
    except (ChanneldError, ValueError, TypeError, OverflowError) as exc:
        raise TokenRefused(f"token {address} does not answer decimals() and symbol() as an ERC-20: "
                           f"{str(exc)[:200]}") from None
    clean = "".join(ch for ch in str(symbol) if ch.isprintable())[:16] or "?"
    return Asset(clean, int(decimals))


async def check_token(room: ChainRoom, token: bytes) -> Asset:
    """The asset a channel in `token` would hold on `room`'s chain, or `TokenRefused` saying why not."""
    if token == NATIVE:
        return ETHER
    allowed = room.config.tokens
    address = to_checksum_address(token)
    if allowed is not None and address not in allowed:
        shown = ", ".join(allowed) or "none (native coin only)"
        raise TokenRefused(f"token {address} is not in chain {room.name}'s allow-list ({shown})")
    return await asset_of(room, token)


async def asset_of(room: ChainRoom, token: bytes) -> Asset:
    """The asset of `token` on `room`'s chain (read once, then remembered)."""
    if token == NATIVE:
        return ETHER
    found = room.assets.get(token)
    if found is None:
        found = room.assets[token] = await room.chain.run(read_asset, room.chain.backend, token)
    return found
