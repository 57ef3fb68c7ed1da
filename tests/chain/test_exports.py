"""The chain layer's public face is exactly what `channeld.chain.__all__` promises."""

from __future__ import annotations

import channeld.chain


def test_every_public_name_resolves() -> None:
    missing = [name for name in channeld.chain.__all__ if not hasattr(channeld.chain, name)]
    assert missing == []


def test_public_names_are_the_intended_set() -> None:
    assert {"ChainBackend", "TransactionSender", "EventFollower", "CursorStore", "AsyncSender", "follow",
            "connect_rpc", "start_embedded", "deploy", "verify_deployment"} <= set(channeld.chain.__all__)
    assert not [name for name in channeld.chain.__all__ if name.startswith("_")]
