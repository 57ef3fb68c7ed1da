"""What the transfer service reads: each chain's clock, and our channels as the payment machines see them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import trio

from channeld.node._records import addr_bytes
from channeld.protocol import ChannelState, ChannelStatus
from channeld.store import Namespace
from channeld.wire import LockExpired

if TYPE_CHECKING:
    from channeld.node._channels import ChannelService
    from channeld.node._rooms import ChainRoom

# seconds without a completed chain read (at least, and in polls) after which our clock may be far behind
STALE_VIEW, STALE_POLLS = 1.0, 3


class ChainClock:
    """One chain's time as its payment machines see it, and how far its secret registry was read."""

    def __init__(self, room: ChainRoom) -> None:
        self.room = room
        self.now = 0
        self.payments_now = 0  # the time of the block before the newest: the payment machines' clock
        self.registry: str | None = None
        self.next_registry_block = room.setup.deploy_block

    def current(self) -> int:
        """The latest time we know of this chain."""
        return max(self.room.watcher.chain_time, self.now)

    def is_fresh(self) -> bool:
        watcher = self.room.watcher
        stale_after = max(STALE_VIEW, STALE_POLLS * watcher.poll_interval)
        return trio.current_time() - watcher.fresh_as_of <= stale_after



class ChannelStates(Mapping[bytes, ChannelState]):
    """Every channel's state by id, read when asked: a payment looks up one or two of a hub's thousand
    channels, so copying them all into a dict per input made each payment O(channels)."""

    def __init__(self, channels: ChannelService) -> None:
        self._channels = channels.channels

    def __getitem__(self, channel_id: bytes) -> ChannelState:
        return self._channels[channel_id].state

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._channels)

    def __len__(self) -> int:
        return len(self._channels)


class PartnerChannels(Mapping[bytes, ChannelState]):
    """Our channel in one asset (chain, contract and token) with each partner address (an open one
    where there is one), found through the partner index rather than a scan of every channel per
    mediated lock. A lock is forwarded in the asset it arrived in: never on another chain or token."""

    def __init__(self, channels: ChannelService, node_ids: Mapping[bytes, bytes], ns: Namespace,
                 token: bytes) -> None:
        self._channels = channels
        self._node_ids = node_ids  # partner address -> node id
        self._ns = ns
        self._token = token

    def __getitem__(self, address: bytes) -> ChannelState:
        node_id = self._node_ids.get(address)
        found = None
        entries = self._channels.channels.values() if node_id is None else (
            entry for _, entry in self._channels.of_peer(node_id))
        for entry in entries:
            if entry.ns != self._ns or addr_bytes(entry.onchain.state.token) != self._token:
                continue
            state = entry.state
            if state.partner.address == address and (found is None or state.status is ChannelStatus.OPEN):
                found = state
        if found is None:
            raise KeyError(address)
        return found

    def __iter__(self) -> Iterator[bytes]:
        return iter({entry.state.partner.address: None for entry in self._channels.channels.values()})

    def __len__(self) -> int:
        return sum(1 for _ in self)


def lock_expired_in_flight(state: ChannelState, nonce: int) -> LockExpired | None:
    for message in state.locks_in_flight:
        if isinstance(message, LockExpired) and message.balance_proof.nonce == nonce:
            return message
    return None
