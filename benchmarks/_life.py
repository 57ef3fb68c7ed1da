"""Start-up with many channels in the store, and a long life: N payments, then store size and restart.

Start-up: 10,000 channels on chain would take anvil and the node's follower minutes to create, so the
daemon's store is filled directly with 10,000 channel records made by the node's own record code
(`channeld.node._records.Envelope`, the protocol's `to_record`, the contract view the node derives from a
ChannelOpened event) and 10,000 peer records, exactly what the node itself writes for an opened channel.
The daemon then starts on that store as it would after a restart; the measured time runs from process
spawn to its readiness file (imports, store open, loading every channel, chain catch-up, listeners).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import coincurve
import msgpack
from eth_utils import to_checksum_address

from benchmarks._cases import DEPOSIT, PPS, Sizes, busy, core, cpu_per_payment, phase, run_driver, wallet_spec
from benchmarks._cluster import ArtifactChanged, Chain, Daemon, directory_bytes
from benchmarks._report import Result, Target
from benchmarks._stats import Figure
from channeld.chain import contract as hub
from channeld.node._records import Envelope, encode_onchain
from channeld.protocol import ContractReceiveDeposit, KnownKey, Signer, handle, new_channel, to_record
from channeld.store import Batch, Namespace, Store

FILL_CHUNK = 1_000
LONG_CHUNKS = 10
MB = 1_000_000


def fill_channels(daemon: Daemon, count: int) -> None:
    """Write `count` open, funded channels with distinct partners into the stopped daemon's store."""
    chain_id = daemon.chain.backend.chain_id()
    contract = bytes.fromhex(daemon.contract[2:])
    ours = bytes.fromhex(daemon.address[2:])
    ns = Namespace(chain_id, contract)
    signer = Signer(secrets.token_bytes(32))  # deposits are not signed; handle() only needs a signer
    with Store.open(daemon.datadir / "db") as store:
        for start in range(0, count, FILL_CHUNK):
            batch = Batch()
            for _ in range(min(FILL_CHUNK, count - start)):
                _add_channel(batch, ns, ours, signer)
            store.commit_sync(batch)


def _add_channel(batch: Batch, ns: Namespace, ours: bytes, signer: Signer) -> None:
    peer_id = coincurve.PrivateKey().public_key.format(compressed=True)
    partner = KnownKey(peer_id).address
    channel_id = secrets.token_bytes(32)
    state = new_channel(ns.chain_id, ns.contract, channel_id, 3600, ours, peer_id)
    state, _ = handle(state, ContractReceiveDeposit(partner, DEPOSIT), signer)
    low, high = sorted((ours, partner))
    deposits = (DEPOSIT, 0) if low == partner else (0, DEPOSIT)
    opened = hub.ChannelOpened(channel_id, to_checksum_address(low), to_checksum_address(high), hub.ETHER,
                               3600, *deposits)
    envelope = Envelope(to_record(state), peer_id, encode_onchain(hub.apply_event(None, opened)))
    batch.put_channel(ns, channel_id, envelope.encode())
    batch.put_peer(peer_id, msgpack.packb([partner, ""]))


def import_seconds() -> float:
    """A fresh interpreter importing what `channeld node` imports, and nothing else: the share of a
    start-up that is Python loading code (web3, FastAPI, py-evm...) rather than the node's own work."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import channeld.cli, channeld.node, channeld.api"], check=True)
    return time.perf_counter() - started


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU a live process has used so far (load-insensitive, unlike wall time)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def restarts(daemon: Daemon, runs: int, imports: list[float] | None = None,
             cpu: list[float] | None = None) -> Figure:
    """Stop and start the daemon `runs` times; the seconds each start took until ready. With `imports`,
    a bare import is timed right before each start, so both see the same machine load; with `cpu`, the
    CPU seconds the daemon had used when it reported itself ready."""
    times = []
    for _ in range(runs):
        daemon.stop()
        if imports is not None:
            imports.append(import_seconds())
        times.append(daemon.start(core(0)))
        if cpu is not None:
            cpu.append(process_cpu_seconds(daemon.pid))
    return Figure.of(times)


# --- 6. start-up with many channels ---------------------------------------------------------------------


def startup_case(chain: Chain, root: Path, sizes: Sizes) -> list[Result]:
    chain.deploy_hub()
    daemon = Daemon.create(root, "startup", chain)
    daemon.start(core(0))
    try:
        imports: list[float] = []
        empty_start = restarts(daemon, sizes.runs, imports)
        daemon.stop()
        empty_bytes = daemon.store_bytes()
        fill_channels(daemon, sizes.startup_channels)
        daemon.start(core(0))  # the first start after filling also lets LevelDB settle its files
        full_start = restarts(daemon, sizes.runs)
    finally:
        daemon.stop()
    per_channel = (daemon.store_bytes() - empty_bytes) / sizes.startup_channels
    n = f"{sizes.startup_channels:,}"
    return [
        Result("startup_empty_s", "start-up, empty store (process spawn to ready)", "s", empty_start),
        Result("startup_imports_s", "a bare interpreter importing the node's modules (timed beside it)", "s",
               Figure.of(imports)),
        Result("startup_10k_channels_s", f"start-up with {n} channels in the store", "s", full_start,
               Target.below(3, "< 3")),
        Result("store_bytes_per_channel", f"store size per channel (over {n})", "bytes",
               Figure.of([per_channel])),
    ]


# --- 7. long life ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class DiskUse:
    """Bytes on disk of a daemon's data directory, by part: the state store without its audit log, the
    audit log's segments, and the journal (the API's event history, pruned by age)."""

    state: int
    audit: int
    journal: int

    @classmethod
    def of(cls, daemon: Daemon) -> DiskUse:
        db = daemon.datadir / "db"
        audit = directory_bytes(db / "audit") if (db / "audit").exists() else 0
        journal = daemon.datadir / "journal"
        return cls(directory_bytes(db) - audit, audit, directory_bytes(journal) if journal.exists() else 0)


def long_life_case(chain: Chain, root: Path, sizes: Sizes) -> list[Result]:
    chain.deploy_hub()
    daemon = Daemon.create(root, "long", chain)
    daemon.start(core(0))
    imports: list[float] = []
    cpu: list[float] = []
    try:
        before = DiskUse.of(daemon)
        chunk = sizes.long_payments // LONG_CHUNKS
        phases = [phase(f"chunk{i}", chunk, sizes.long_window) for i in range(LONG_CHUNKS)]
        result = run_driver(wallet_spec(chain, daemon, root / "long-wallets", sizes.long_wallets, phases))
        daemon.stop()
        after = DiskUse.of(daemon)
        restart: Figure | str = restarts(daemon, sizes.runs, imports, cpu)
    except ArtifactChanged:
        # the figures of the run stand; only the restart needs the daemon to accept the contract again
        restart = ("the contract artifact (channeld/contracts/compiled.json) was rebuilt during the run, "
                   "and a daemon refuses a contract whose code is not the one it ships")
    finally:
        daemon.stop()
    total = chunk * LONG_CHUNKS
    seconds = sum(p["seconds"] for p in result["phases"])
    rates = [p["pps"] for p in result["phases"]]
    n = f"{total:,}"
    return [
        Result("long_life_seconds", f"time to pay {n} payments through one node ({sizes.long_wallets} "
               f"channels, window {sizes.long_window} each)", "s",
               Figure.of([seconds])),
        Result("long_life_pps", f"throughput over the {n} payments, per tenth (first and last in json)",
               PPS, Figure.of(rates)),
        busy(result, "chunk", "long_life_daemon_cpu", "long life: daemon busy"),
        cpu_per_payment(result, "chunk", "long_life_daemon_cpu_us", "long life: daemon CPU"),
        Result("store_bytes_per_payment", f"state store growth per payment over {n} payments (audit log "
               "excluded)", "bytes", Figure.of([(after.state - before.state) / total]),
               Target.below(1, "< 1 (grows with channels, not history)")),
        Result("audit_log_bytes_per_payment", f"audit log (segment files) growth per payment over {n}",
               "bytes",
               Figure.of([(after.audit - before.audit) / total])),
        Result("journal_bytes_per_payment", f"journal (API event history, pruned by age) growth per payment "
               f"over {n}", "bytes", Figure.of([(after.journal - before.journal) / total])),
        *_after_history(total, Figure.of([after.state / MB]), restart),
        *([Result("restart_imports_s", "a bare interpreter importing the node's modules, timed before each "
                  "restart", "s", Figure.of(imports)),
           Result("restart_cpu_s", f"daemon CPU from spawn to ready, restart after {n} payments", "s",
                  Figure.of(cpu))] if imports else []),
        Result("long_life_first_tenth_pps", "throughput, first tenth of the long run", PPS,
               Figure.of([rates[0]])),
        Result("long_life_last_tenth_pps", "throughput, last tenth of the long run", PPS,
               Figure.of([rates[-1]])),
    ]


def _after_history(total: int, store_mb: Figure, restart: Figure | str) -> list[Result]:
    """Store size and restart after the long run; under the `_1m_` keys only when it was 1,000,000."""
    n = f"{total:,}"
    restarted = (Result("restart_after_long_run_s", f"restart after {n} payments", "s", restart,
                        Target.below(5, "< 5")) if isinstance(restart, Figure) else
                 Result.unavailable("restart_after_long_run_s", f"restart after {n} payments", "s", restart,
                                    Target.below(5, "< 5")))
    found = [Result("store_mb_after_long_run", f"state store size after {n} payments (audit log excluded)",
                    "MB", store_mb), restarted]
    if total == 1_000_000:
        return [*found, dataclasses.replace(found[0], key="store_mb_after_1m_payments"),
                dataclasses.replace(found[1], key="restart_after_1m_payments_s")]
    reason = (f"this run paid {n} payments (--long-payments), not 1,000,000: see store_mb_after_long_run "
              "and restart_after_long_run_s")
    return [*found,
            Result.unavailable("store_mb_after_1m_payments", "store size after 1,000,000 payments", "MB",
                               reason),
            Result.unavailable("restart_after_1m_payments_s", "restart after 1,000,000 payments", "s", reason,
                               Target.below(5, "< 5"))]
