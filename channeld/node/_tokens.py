"""Assets on each chain: the per-chain token allow-list, each token's symbol and decimals from the chain, and
the refusal of tokens whose balances move without transfers.

A token with a fee on transfer (or a balance that rebases down during a deposit) is refused by the
contract itself: a deposit must grow the contract's balance by exactly the amount (`TokenAmountMismatch`),
so the open's outbox operation fails with that reason and no channel exists. The node checks before that
what it can without spending anything: the allow-list, that the address is an ERC-20 contract at all (its
`decimals()` and `symbol()` answer), and that the token does not rebase.

The rebasing rule: the hub's balance of a token (`balanceOf(hub)`) must equal what the token's `Transfer`
events to and from the hub account for (in minus out since the hub's deploy block), both read at the same
block. A token whose balances change without transfers (an elastic supply: stETH, AMPL) opens a gap there;
any gap refuses new opens and deposits in the token (`TokenRebasing`, naming the token and the drift) and
publishes a `token_drift` event, since a hub holding less than its channels owe cannot pay them all. The
sums are kept per chain and token and brought up to date incrementally (each check reads only new logs);
a gap is confirmed by a full rescan before it refuses, so a reorg that dropped a counted log does not
refuse a sound token. A token the hub holds none of yet shows no gap and cannot be judged this way: the
allow-list is the operator's control for it, and the exact-amount deposit check still catches a rebase
during the transfer itself.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import trio
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from channeld.chain import ChainBackend, TransactionReverted
from channeld.errors import ChainError, ChanneldError, LocalFault

if TYPE_CHECKING:
    from channeld.node._rooms import ChainRoom

DECIMALS_SELECTOR = bytes.fromhex("313ce567")
SYMBOL_SELECTOR = bytes.fromhex("95d89b41")
BALANCE_OF_SELECTOR = bytes.fromhex("70a08231")
TRANSFER_TOPIC = keccak(text="Transfer(address,address,uint256)")
WATCH_INTERVAL = 10.0  # seconds between measures of the tokens of open channels
LOG_SPAN = 10_000  # blocks per log query: providers cap the range one eth_getLogs may cover
NATIVE = bytes(20)


class TokenRefused(LocalFault):
    """A token channels may not be opened in on this chain (not allowed, or not an ERC-20 contract)."""


class TokenRebasing(TokenRefused):
    """The hub's balance of a token differs from what its Transfer events account for."""


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


@dataclass(frozen=True, slots=True)
class Holding:
    """The hub's balance of one token and what its Transfer events account for, both at `block`."""

    token: bytes
    balance: int
    transferred: int
    block: int

    @property
    def drift(self) -> int:
        return self.balance - self.transferred

    def describe(self, chain: str) -> str:
        return (f"token {to_checksum_address(self.token)} is refused on chain {chain}: its balances move "
                f"without transfers (rebasing): the hub holds {self.balance} but its Transfer events "
                f"account for {self.transferred} at block {self.block} (drift {self.drift:+d})")


def _topic(address: str) -> bytes:
    return abi_encode(["address"], [address])


def _transfer_value(data: bytes) -> int:
    # a log without a full uint256 counts as nothing: the gap it leaves refuses the token
    return int.from_bytes(data[:32], "big") if len(data) >= 32 else 0


def transferred(backend: ChainBackend, token: str, hub: str, first: int, last: int) -> int:
    """Blocking: the token's Transfer values into `hub` minus those out of it, in blocks first..last."""
    total = 0
    for start in range(first, last + 1, LOG_SPAN):
        end = min(start + LOG_SPAN - 1, last)
        incoming = backend.get_logs(token, start, end, [TRANSFER_TOPIC, None, _topic(hub)])
        outgoing = backend.get_logs(token, start, end, [TRANSFER_TOPIC, _topic(hub)])
        total += sum(_transfer_value(log.data) for log in incoming)
        total -= sum(_transfer_value(log.data) for log in outgoing)
    return total


def balance_at(backend: ChainBackend, token: str, holder: str, block: int) -> int:
    """Blocking: `holder`'s balance of `token` at `block`."""
    data = BALANCE_OF_SELECTOR + _topic(holder)
    try:
        return int(abi_decode(["uint256"], backend.call({"to": token, "data": data}, block=block))[0])
    except (TransactionReverted, ValueError, TypeError, OverflowError) as exc:
        raise TokenRefused(f"token {token} does not answer balanceOf() as an ERC-20: {str(exc)[:200]}") \
            from None


class HubHoldings:
    """One chain's running sums of each token's Transfer events to and from the hub (one per token, each
    with the block it is summed to), so each check reads only the logs since the last one."""

    def __init__(self, hub: str, deploy_block: int) -> None:
        self.hub = to_checksum_address(hub)
        self.deploy_block = deploy_block
        self._sums: dict[bytes, tuple[int, int]] = {}  # token -> (transferred, summed to block)
        self._lock = threading.Lock()  # checks run in worker threads
        self.drifting: dict[bytes, Holding] = {}  # the last gap seen per token, shown by `info`
        self.watched_at = 0.0  # when the tokens of open channels were last measured (trio clock)

    def measure(self, backend: ChainBackend, token: bytes) -> Holding:
        """Blocking: the hub's balance of `token` against its Transfer sum, at the chain's head."""
        address = to_checksum_address(token)
        with self._lock:
            block = backend.head()
            holding = self._measure(backend, address, token, block, rescan=False)
            known = self.drifting.get(token)
            # a new gap is confirmed from scratch (a reorg may have dropped a log we had counted); a gap
            # already confirmed at the same size is not rescanned on every watch
            if holding.drift and (known is None or known.drift != holding.drift):
                holding = self._measure(backend, address, token, block, rescan=True)
            if holding.drift:
                self.drifting[token] = holding
            else:
                self.drifting.pop(token, None)
            return holding

    def drifting_json(self) -> list[dict[str, Any]]:
        with self._lock:
            found = list(self.drifting.values())
        return [{"token": to_checksum_address(h.token), "balance": str(h.balance),
                 "transferred": str(h.transferred), "drift": str(h.drift), "block": h.block} for h in found]

    def _measure(self, backend: ChainBackend, address: str, token: bytes, block: int,
                 rescan: bool) -> Holding:
        total, summed_to = self._sums.get(token, (0, self.deploy_block - 1))
        if rescan or summed_to > block:
            total, summed_to = 0, self.deploy_block - 1
        total += transferred(backend, address, self.hub, summed_to + 1, block)
        self._sums[token] = (total, block)
        return Holding(token, balance_at(backend, address, self.hub, block), total, block)


def _publish_drift(room: ChainRoom, holding: Holding) -> None:
    room.watcher.bus.publish("token_drift", None, chain=room.name, token=to_checksum_address(holding.token),
                             balance=str(holding.balance), transferred=str(holding.transferred),
                             drift=str(holding.drift), block=holding.block)


async def check_holding(room: ChainRoom, token: bytes) -> None:
    """Refuse (`TokenRebasing`) a token whose balance on the hub drifts from its Transfer events, and
    publish the drift as a `token_drift` event."""
    if token == NATIVE:
        return
    holding = await room.chain.run(room.holdings.measure, room.chain.backend, token)
    if holding.drift:
        _publish_drift(room, holding)
        raise TokenRebasing(holding.describe(room.name))


async def watch_holdings(room: ChainRoom, tokens: set[bytes]) -> None:
    """Every `WATCH_INTERVAL`, measure the tokens of open channels; a token whose drift appears or changes
    is published once as `token_drift` (and stays listed in `info` while it lasts)."""
    holdings = room.holdings
    if trio.current_time() - holdings.watched_at < WATCH_INTERVAL:
        return
    holdings.watched_at = trio.current_time()
    for token in tokens - {NATIVE}:
        before = holdings.drifting.get(token)
        try:
            holding = await room.chain.run(holdings.measure, room.chain.backend, token)
        except (TokenRefused, ChainError):
            continue  # an unreachable chain is reported by its watcher; the next round tries again
        if holding.drift and (before is None or before.drift != holding.drift):
            _publish_drift(room, holding)


async def check_token(room: ChainRoom, token: bytes) -> Asset:
    """The asset a channel in `token` would hold on `room`'s chain, or `TokenRefused` saying why not."""
    if token == NATIVE:
        return ETHER
    allowed = room.config.tokens
    address = to_checksum_address(token)
    if allowed is not None and address not in allowed:
        shown = ", ".join(allowed) or "none (native coin only)"
        raise TokenRefused(f"token {address} is not in chain {room.name}'s allow-list ({shown})")
    asset = await asset_of(room, token)
    await check_holding(room, token)
    return asset


async def asset_of(room: ChainRoom, token: bytes) -> Asset:
    """The asset of `token` on `room`'s chain (read once, then remembered)."""
    if token == NATIVE:
        return ETHER
    found = room.assets.get(token)
    if found is None:
        found = room.assets[token] = await room.chain.run(read_asset, room.chain.backend, token)
    return found
