"""Profile of the direct pipelined case: both daemons run under pyinstrument while the payer's bench
endpoint pays over their channel (or, for a daemon build without it, the payee daemon while a wallet
pays it, the wallet profiling itself); each side is summarised as the functions with the most self time."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import direct as two_daemons
from benchmarks._cases import PIPELINE_WINDOW, Sizes, core, phase, run_driver, wallet_spec
from benchmarks._cluster import Chain, Daemon
from channeld.api._client import ApiError

TOP = 15
IDLE = {"epoll.poll", "poll", "select"}  # the trio loop waiting for sockets, timers or a thread's result


@dataclass(frozen=True, slots=True)
class Hotspot:
    share: float  # of all sampled time in the profiled thread
    function: str


@dataclass(frozen=True, slots=True)
class Side:
    """One profiled process: the share of its loop's time spent idle, and where the busy time went."""

    name: str
    idle: float
    busiest: list[Hotspot]  # shares of the busy (non-idle) time


@dataclass(frozen=True, slots=True)
class Profile:
    pps: float
    method: str
    sides: list[Side]

    def as_json(self) -> dict[str, Any]:
        return {"pps": self.pps, "method": self.method,
                "sides": [{"name": side.name, "idle": side.idle,
                           "busiest": [[spot.share, spot.function] for spot in side.busiest]}
                          for side in self.sides]}

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Profile:
        sides = [Side(side["name"], side["idle"], [Hotspot(share, name) for share, name in side["busiest"]])
                 for side in document["sides"]]
        return cls(document["pps"], document["method"], sides)


class ProfiledDaemon(Daemon):
    """The daemon, started under pyinstrument; its profile is written when it shuts down cleanly."""

    profile_path: Path | None = None

    def argv(self) -> list[str]:
        plain = super().argv()
        assert self.profile_path is not None
        return [sys.executable, "-m", "pyinstrument", "-r", "pyisession", "-o", str(self.profile_path),
                "-m", *plain[2:]]


def _profiled(root: Path, name: str, chain: Chain) -> ProfiledDaemon:
    base = Daemon.create(root, name, chain)
    daemon = ProfiledDaemon(base.datadir, base.address, base.node_id, chain, base.contract)
    daemon.profile_path = root / f"{name}.pyisession"
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
                   [hotspots("Payer daemon", payer.profile_path),
                    hotspots("Payee daemon", payee.profile_path)])


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
    payer_path = root / "payer.pyisession"
    daemon.start(core(0))
    try:
        phases = [phase("warmup", sizes.warmup, PIPELINE_WINDOW),
                  phase("pipelined", sizes.pipelined, PIPELINE_WINDOW, profile=True)]
        result = run_driver(wallet_spec(chain, daemon, root / "profiled-wallet", 1, phases, payer_path))
    finally:
        daemon.stop()
    assert daemon.profile_path is not None
    return Profile(result["phases"][-1]["pps"], "a wallet (load generator) paying a daemon",
                   [hotspots("Payee daemon", daemon.profile_path), hotspots("Paying wallet", payer_path)])


def hotspots(name: str, path: Path, top: int = TOP) -> Side:
    """The functions with the most self time in a pyinstrument session, counted only inside trio's run
    loop (the imports and set-up before it are start-up, not payments), idle waiting apart."""
    from pyinstrument.frame import Frame
    from pyinstrument.session import Session

    root = Session.load(path).root_frame()
    loop = _find(root, "run", "trio/_core/_run.py") if root is not None else None
    totals: dict[tuple[str, int, str], float] = {}

    def add(frame: Frame) -> None:
        if not frame.is_synthetic:
            key = (frame.file_path or "", frame.line_no or 0, frame.function)
            totals[key] = totals.get(key, 0.0) + frame.total_self_time
        for child in frame.children:
            add(child)

    if loop is not None:
        add(loop)
    whole = sum(totals.values()) or 1.0
    idle = sum(seconds for key, seconds in totals.items() if key[2] in IDLE)
    busy = (whole - idle) or 1.0
    ranked = sorted(((k, v) for k, v in totals.items() if k[2] not in IDLE), key=lambda kv: kv[1],
                    reverse=True)[:top]
    return Side(name, idle / whole, [Hotspot(seconds / busy, _label(key)) for key, seconds in ranked])


def _find(frame: Any, function: str, file_suffix: str) -> Any:
    """The outermost frame of `function` in a file ending with `file_suffix` (breadth first)."""
    queue = [frame]
    while queue:
        current = queue.pop(0)
        if current.function == function and (current.file_path or "").endswith(file_suffix):
            return current
        queue.extend(current.children)
    return None


def _label(key: tuple[str, int, str]) -> str:
    file, line, function = key
    parts = Path(file).parts
    for anchor in ("channeld", "site-packages", "lib"):
        if anchor in parts:
            parts = parts[parts.index(anchor) + (anchor != "channeld"):]
            break
    return f"{'/'.join(parts[-3:])}:{line} {function}" if file else function
