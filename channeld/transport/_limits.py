"""Every transport limit in one frozen record, with defaults sane for a public node."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from channeld.errors import ConfigError
from channeld.transport._framing import MAX_BOLT8_MESSAGE


@dataclass(frozen=True, slots=True)
class TransportLimits:
    """Limits that keep one peer (or many) from exhausting the node. Times are in seconds.

    Back-pressure: `send_queue_size` messages wait for the socket; a full queue blocks `send()` (or makes
    `send_nowait()` raise). A peer that does not take our bytes for `send_timeout` is dropped. Received
    messages wait in a queue of `receive_queue_size`; while it is full we stop reading the socket, so the
    peer's own TCP window stalls it instead of our memory growing.
    """

    handshake_timeout: float = 10.0
    max_message_size: int = MAX_BOLT8_MESSAGE
    max_messages_per_second: float = 5000.0
    max_connections: int = 1024
    max_concurrent_handshakes: int = 128
    ping_interval: float = 30.0
    idle_timeout: float = 90.0
    send_timeout: float = 30.0
    send_queue_size: int = 256
    receive_queue_size: int = 256
    connect_timeout: float = 10.0
    # Enforced by the node, which holds the ids of channels a peer announced before the chain showed them.
    max_pending_channels: int = 16

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"transport limit {spec.name} must be a number, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"transport limit {spec.name} must be positive and finite, got {value!r}")
            if spec.type == "int" and not isinstance(value, int):
                raise ConfigError(f"transport limit {spec.name} must be an integer, got {value!r}")
        if self.max_message_size > MAX_BOLT8_MESSAGE:
            raise ConfigError(f"max_message_size cannot exceed BOLT 8's {MAX_BOLT8_MESSAGE} bytes")
        if self.idle_timeout <= self.ping_interval:
            raise ConfigError("idle_timeout must be longer than ping_interval, or live peers get dropped")
