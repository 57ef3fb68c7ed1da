"""Profile of the direct pipelined case: the payee daemon runs under pyinstrument, the paying wallet
profiles its own pipelined phase; both are summarised as the functions with the most self time."""

from __future__ import annotations

import marshal
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks._cases import PIPELINE_WINDOW, Sizes, core, phase, run_driver, wallet_spec
from benchmarks._cluster import Chain, Daemon

TOP = 15


@dataclass(frozen=True, slots=True)
class Hotspot:
    share: float  # of all sampled time in the profiled thread
    function: str


@dataclass(frozen=True, slots=True)
class Profile:
    pps: float
    payee: list[Hotspot]
    payer: list[Hotspot]


class ProfiledDaemon(Daemon):
    """The daemon, started under pyinstrument; its profile is written when it shuts down cleanly."""

    profile_path: Path | None = None

    def argv(self) -> list[str]:
        plain = super().argv()
        assert self.profile_path is not None
        return [sys.executable, "-m", "pyinstrument", "-r", "pstats", "-o", str(self.profile_path),
                "-m", *plain[2:]]


def profile_case(chain: Chain, root: Path, sizes: Sizes) -> Profile:
    chain.deploy_hub()
    base = Daemon.create(root, "profiled", chain)
    daemon = ProfiledDaemon(base.datadir, base.address, base.node_id, chain, base.contract)
    daemon.profile_path = root / "payee.pstats"
    payer_path = root / "payer.pstats"
    daemon.start(core(0))
    try:
        phases = [phase("warmup", sizes.warmup, PIPELINE_WINDOW),
                  phase("pipelined", sizes.pipelined, PIPELINE_WINDOW, profile=True)]
        result = run_driver(wallet_spec(chain, daemon, root / "profiled-wallet", 1, phases, payer_path))
    finally:
        daemon.stop()
    return Profile(result["phases"][-1]["pps"], hotspots(daemon.profile_path), hotspots(payer_path))


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
