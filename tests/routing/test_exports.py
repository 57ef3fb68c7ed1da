"""The routing package's public face, and that it stays pure (no IO libraries loaded)."""

from __future__ import annotations

import subprocess
import sys

from channeld import routing as r


def test_public_api_is_what_all_says() -> None:
    modules = {m for m in dir(r) if isinstance(getattr(r, m), type(r))}
    assert set(r.__all__) == {name for name in dir(r) if not name.startswith("_")} - {"annotations"} - modules
    assert {"ChannelGraph", "plan_routes", "sign_announcement", "RoutingError"} <= set(r.__all__)


def test_routing_and_protocol_load_no_io_library() -> None:
    code = ("import sys, channeld.routing, channeld.protocol; "
            "print(sorted(m for m in ('trio', 'plyvel', 'web3') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
