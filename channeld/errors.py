"""The exception hierarchy: one root, a branch for faults of the peer and one for our own.

Code that talks to a peer converts `PeerFault` into a protocol error message at one boundary; a
`LocalFault` is a misuse or a bug and is reported to the operator. A refused input never leaves the
state that refused it half-updated.
"""


class ChanneldError(Exception):
    """Root of every error channeld raises on purpose."""


class PeerFault(ChanneldError):
    """The remote side broke the rules: answered with a protocol error, maybe a disconnect."""


class LocalFault(ChanneldError):
    """We were asked to do something invalid (bad argument, wrong state) or hit a bug."""


class ConfigError(LocalFault):
    """The configuration, a flag or an environment variable has a bad value."""


class ChainError(ChanneldError):
    """The chain refused or failed a call (revert, RPC failure, insufficient funds for gas)."""
