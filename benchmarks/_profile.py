"""Profile of the direct pipelined case: both daemons run under pyinstrument while the payer's bench
endpoint pays over their channel (or, for a daemon build without it, the payee daemon while a wallet
pays it, the wallet profiling itself); each side is summarised as the functions with the most self time."""

from __future__ import annotations

import marshal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import direct as two_daemons
from benchmarks._cases import PIPELINE_WINDOW, Sizes, core, phase, run_driver, wallet_spec
from benchmarks._cluster import Chain, Daemon
from channeld.api._client import ApiError

TOP = 15


@dataclass(frozen=True, slots=True)
class Hotspot:
    share: float  # of all sampled time in the profiled thread
    function: str


@dataclass(frozen=True, slots=True)
class Profile:
    pps: float
    method: str
    sides: list[tuple[str, list[Hotspot]]]


class ProfiledDaemon(Daemon):
    """The daemon, started under pyinstrument; its profile is written when it shuts down cleanly."""

    profile_path: Path | None = None

    def argv(self) -> list[str]:
        plain = super().argv()
        assert self.profile_path is not None
        return [sys.executable, "-m", "pyinstrument", "-r", "pstats", "-o", str(self.profile_path),
                "-m", *plain[2:]]


def _profiled(root: Path, name: str, chain: Chain) -> ProfiledDaemon:
    base = Daemon.create(root, name, chain)
    daemon = ProfiledDaemon(base.datadir, base.address, base.node_id, chain, base.contract)
    daemon.profile_path = root / f"{name}.pstats"
    return daemon


def profile_case(chain: Chain, root: Path, sizes: Sizes) -> Profile:
    """Both daemons profiled through the node's load path; a wallet into a daemon if it has none."""
    chain.deploy_hub()
    payer, payee = _profiled(root, "profiled-payer", chain), _profiled(root, "profiled-payee", chain)
    payer.start(core(0))
    payee.start(core(1))
    try:
        channel = two_daemons._open_channel(payer, payee)
        result = _bench_pay(payer, channel, sizes)
    finally:
        payer.stop()
        payee.stop()
    if result is None:
        return _wallet_profile(chain, root, sizes)
    assert payer.profile_path is not None and payee.profile_path is not None
    return Profile(float(result["pps"]), "two daemons, the payer driven by its bench endpoint",
                   [("Payer daemon", hotspots(payer.profile_path)),
                    ("Payee daemon", hotspots(payee.profile_path))])


def _bench_pay(payer: Daemon, channel: str, sizes: Sizes) -> dict[str, Any] | None:
    """Warm up, then the profiled pipelined run; None if the daemon has no bench endpoint."""
    try:
        payer.call("POST", "/bench/pay",
                   {"channel": channel, "count": sizes.warmup, "window": PIPELINE_WINDOW})
    except ApiError as error:
        if "Not Found" in str(error):
            return None
        raise
    found: dict[str, Any] = payer.call("POST", "/bench/pay", {"channel": channel, "count": sizes.pipelined,
                                                              "window": PIPELINE_WINDOW})
    return found


def _wallet_profile(chain: Chain, root: Path, sizes: Sizes) -> Profile:
    chain.deploy_hub()
    daemon = _profiled(root, "profiled", chain)
    payer_path = root / "payer.pstats"
    daemon.start(core(0))
    try:
        phases = [phase("warmup", sizes.warmup, PIPELINE_WINDOW),
                  phase("pipelined", sizes.pipelined, PIPELINE_WINDOW, profile=True)]
        result = run_driver(wallet_spec(chain, daemon, root / "profiled-wallet", 1, phases, payer_path))
    finally:
        daemon.stop()
    assert daemon.profile_path is not None
    return Profile(result["phases"][-1]["pps"], "a wallet (load generator) paying a daemon",
                   [("Payee daemon", hotspots(daemon.profile_path)), ("Paying wallet", hotspots(payer_path))])


def hotspots(path: Path, top: int = TOP) -> list[Hotspot]:
    """The functions with the most self time in a pyinstrument pstats file."""
    stats = marshal.loads(path.read_bytes())
    total = sum(entry[2] for entry in stats.values()) or 1.0
    ranked = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:top]
    return [Hotspot(entry[2] / total, _label(key)) for key, entry in ranked]


def _label(key: tuple[str, int, str]) -> str:
    file, line, function = key
    parts = Path(file).parts
    for anchor in ("channeld", "site-packages", "lib"):
        if anchor in parts:
            parts = parts[parts.index(anchor) + (anchor != "channeld"):]
            break
    return f"{'/'.join(parts[-3:])}:{line} {function}" if file else function
