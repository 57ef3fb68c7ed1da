"""The wallet library: a channel peer inside your own trio program, without a daemon or an API.

    async with Wallet.open(directory, password, rpc_url=..., contract=...) as wallet:
        await wallet.connect(node_uri)
        channel_id = await wallet.open_channel(node_uri, deposit=10**18)
        await wallet.pay(node_id, 10**15)
        request = wallet.create_request(5 * 10**14, "refund")     # a payment request string to hand out
        await wallet.wait_payment(request)                         # until the node pays it
        await wallet.close(channel_id)                             # cooperative: settles at once

A wallet is the node's own machinery (`channeld.node.Node` with its API off): the same channel service,
protocol, transport, LevelDB store and on-chain worker, so there is one implementation of the protocol.
Its state lives in `directory` (keystore, store, journal) and survives restarts; it listens for its
partners on a loopback port and keeps them connected. `add_watchtower` delegates disputes to a tower.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from channeld.client._payreq import PaymentRequest
from channeld.config import ChainConfig, Config, HostPort, NodeConfig
from channeld.errors import LocalFault
from channeld.keys import create_datadir, load_key
from channeld.node._events import NodeEvent
from channeld.node._node import Node
from channeld.protocol import ChannelStatus
from channeld.transport import PeerUri

CHAIN_WAIT = 60.0


class WalletTimeout(LocalFault):
    """What the wallet waited for (a channel on chain, a payment, a settlement) did not happen in time."""


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Wallet:
    def __init__(self, node: Node) -> None:
        self.node = node

    @classmethod
    @asynccontextmanager
    async def open(cls, directory: Path | str, password: str, *, rpc_url: str, contract: str,
                   confirmations: int = 0, poll_interval: float = 0.5,
                   scrypt_n: int | None = None) -> AsyncIterator[Wallet]:
        """Open (creating on first use) the wallet in `directory` and run it until the block exits."""
        directory = Path(directory)
        if (directory / "keystore.json").exists():
            key = load_key(directory, password)
        else:
            key = (create_datadir(directory, password) if scrypt_n is None
                   else create_datadir(directory, password, scrypt_n=scrypt_n))
        listen = HostPort("127.0.0.1", _free_loopback_port())
        config = Config(node=NodeConfig(listen=listen),
                        chain=ChainConfig(rpc_url=rpc_url, contract=contract, confirmations=confirmations,
                                          poll_interval=poll_interval))
        node = Node(directory, config, key, api=False)
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            try:
                yield cls(node)
            finally:
                node.stop()

    # --- identity ------------------------------------------------------------------------------------

    @property
    def node_id(self) -> str:
        return self.node.key.node_id

    @property
    def address(self) -> str:
        return self.node.key.address

    @property
    def uri(self) -> str:
        return self.node.uri

    # --- channels ------------------------------------------------------------------------------------

    async def connect(self, uri: str) -> str:
        return (await self.node.connect(uri)).hex()

    async def open_channel(self, uri: str, deposit: int, token: str | None = None,
                           challenge_period: int = 3600) -> str:
        """Open a channel with the node at `uri` and deposit; return its id once the chain shows it."""
        partner = "0x" + PeerUri.parse(uri).node_id.hex()
        with self.node.bus.subscribe() as events:
            await self.node.open_channel(uri, deposit, token, challenge_period)
            event = await _next(events, lambda e: e.kind == "channel_opened"
                                and self._peer_of(e.channel_id) == partner)
        assert event.channel_id is not None
        return "0x" + event.channel_id.hex()

    def _peer_of(self, channel_id: bytes | None) -> str | None:
        entry = self.node.channels.channels.get(channel_id or b"")
        return None if entry is None else "0x" + entry.peer_id.hex()

    def channels(self) -> list[dict[str, Any]]:
        return self.node.list_channels()

    def channel(self, channel_id: str) -> dict[str, Any]:
        return self.node.channel(bytes.fromhex(channel_id.removeprefix("0x")))

    async def deposit(self, channel_id: str, amount: int) -> None:
        cid = bytes.fromhex(channel_id.removeprefix("0x"))
        target = self.node.channels.entry(cid).state.our.deposit + amount
        await self.node.deposit(cid, amount)
        await self._wait_channel(cid, lambda e: e.state.our.deposit >= target)

    async def withdraw(self, channel_id: str, amount: int, to: str | None = None) -> None:
        """Withdraw `amount` from an open channel (the partner co-signs); return once mined."""
        cid = bytes.fromhex(channel_id.removeprefix("0x"))
        target = self.node.channels.entry(cid).state.our.withdrawn + amount
        await self.node.withdraw(cid, amount, to)
        await self._wait_channel(cid, lambda e: e.state.our.withdrawn >= target)

    async def close(self, channel_id: str) -> None:
        """Close cooperatively: both sign the final balances and the contract pays out at once."""
        cid = bytes.fromhex(channel_id.removeprefix("0x"))
        await self.node.close(cid, force=False)
        await self._wait_channel(cid, lambda e: e.state.status is ChannelStatus.SETTLED)

    async def _wait_channel(self, cid: bytes, done: Any) -> None:
        with self.node.bus.subscribe() as events, trio.move_on_after(CHAIN_WAIT) as scope:
            while not done(self.node.channels.entry(cid)):
                await events.receive()
        if scope.cancelled_caught:
            raise WalletTimeout(f"channel 0x{cid.hex()} did not reach the wanted state in {CHAIN_WAIT:.0f}s")

    # --- payments ------------------------------------------------------------------------------------

    async def pay(self, node_id: str, amount: int) -> dict[str, Any]:
        """Pay a partner directly; the result's `status` is `accepted` once it holds our signed proof."""
        return await self.node.pay(bytes.fromhex(node_id.removeprefix("0x")), amount)

    async def pay_request(self, request: str) -> dict[str, Any]:
        """Pay a payment request string; the result carries the `preimage` (the receipt)."""
        return await self.node.requests.pay(request)

    def create_request(self, amount: int, description: str = "", expires_in: int = 3600) -> str:
        return str(self.node.requests.create(amount, description, expires_in)["request"])

    async def wait_payment(self, request: str, timeout: float = CHAIN_WAIT) -> dict[str, Any]:
        """Wait until a request this wallet made is paid; return its record."""
        payment_hash = PaymentRequest.decode(request).payment_hash
        with self.node.bus.subscribe() as events, trio.move_on_after(timeout):
            while (record := self.node.requests.get(payment_hash))["status"] != "paid":
                await events.receive()
            return record
        raise WalletTimeout(f"request 0x{payment_hash.hex()} was not paid in {timeout:.0f}s")

    # --- watchtowers ---------------------------------------------------------------------------------

    def add_watchtower(self, uri: str) -> dict[str, Any]:
        """Delegate disputes to the tower at `uri`: our partners' newest proofs are pushed to it."""
        return self.node.towers.add(uri)

    def watchtowers(self) -> list[dict[str, Any]]:
        return self.node.towers.list()


async def _next(events: trio.MemoryReceiveChannel[NodeEvent], wanted: Any) -> NodeEvent:
    with trio.move_on_after(CHAIN_WAIT):
        async for event in events:
            if wanted(event):
                return event
    raise WalletTimeout(f"nothing happened on chain in {CHAIN_WAIT:.0f}s")


__all__ = ["Wallet", "WalletTimeout"]
