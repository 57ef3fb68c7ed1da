"""Opening a channel exactly once, even when the node crashes around the open.

The contract names a channel `keccak256(opener, partner, salt, block timestamp)`, so re-sending the same
`openChannel` in a later block would open a second channel rather than fail. The outbox therefore keeps
the salt it chose (one row per open), and that salt carries the block the open was queued at in its high
bits: `salt = queued_block << 64 | 64 random bits`. Before the transaction worker sends an open (the first
time, or again after a restart), `find_opened` reads the contract's `ChannelOpened` logs from that block
on and recomputes each candidate's id with our salt and its block's timestamp; a match means the open was
already mined (the crash came between mining and removing the outbox row) and nothing is sent again.
"""

from __future__ import annotations

import secrets

from eth_utils import to_checksum_address

from channeld.chain import ChainBackend
from channeld.chain import contract as hub
from channeld.errors import ChainError
from channeld.node._records import Operation

RANDOM_BITS = 64


def open_salt(queued_block: int) -> int:
    """A fresh salt for an open queued while the chain's head is `queued_block`."""
    if queued_block < 0:
        raise ValueError(f"block {queued_block} is negative")
    return (queued_block << RANDOM_BITS) | secrets.randbits(RANDOM_BITS)


def salt_block(salt: int) -> int:
    """The earliest block an open with `salt` can have been mined in."""
    return salt >> RANDOM_BITS


def _block_timestamp(backend: ChainBackend, number: int) -> int:
    # eth-tester's provider takes the number as an int; JSON-RPC endpoints take a hex quantity
    block = backend.rpc("eth_getBlockByNumber", [number if backend.is_embedded else hex(number), False])
    if not isinstance(block, dict) or "timestamp" not in block:
        raise ChainError(f"block {number} is not available from the chain")
    stamp = block["timestamp"]
    return int(stamp, 16) if isinstance(stamp, str) else int(stamp)


def find_opened(backend: ChainBackend, contract: str, opener: str, op: Operation) -> bytes | None:
    """Blocking: the id of the channel `op` (an `open`) already created on chain, or None."""
    partner, salt = to_checksum_address(bytes(op.args[0])), int(op.args[3])
    pair = {opener.lower(), partner.lower()}
    for log in backend.get_logs(contract, salt_block(salt), backend.head()):
        try:
            event = hub.decode_event({"topics": log.topics, "data": log.data})
        except hub.UnknownEvent:
            continue
        if not isinstance(event, hub.ChannelOpened):
            continue
        if {event.participant1.lower(), event.participant2.lower()} != pair:
            continue
        opened_at = _block_timestamp(backend, log.block_number)
        if hub.channel_id(opener, partner, salt, opened_at) == event.channel_id:
            return event.channel_id
    return None
