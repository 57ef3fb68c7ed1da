"""Real processes for the daemon cases: anvil, the contract, and `channeld node` daemons on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account

from channeld.api._client import ApiClient
from channeld.chain import ChainBackend, TransactionSender, connect_rpc, deploy, load_artifact
from channeld.errors import LocalFault
from channeld.keys import create_datadir

REPO = Path(__file__).resolve().parent.parent
ANVIL = REPO / ".tools" / "node_modules" / ".bin" / "anvil"
PASSWORD = "benchmark password"


class ClusterFailure(LocalFault):
    """A process of the benchmark did not start or answer as it should."""


class ArtifactChanged(ClusterFailure):
    """The daemon found the contract's code differing from the artifact it ships (rebuilt meanwhile)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cores() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def pin(pid: int, core: int | None) -> None:
    """Keep a process on one core (when the machine has several), so load and daemon do not fight."""
    if core is not None and len(cores()) > 1:
        os.sched_setaffinity(pid, {core})


class Chain:
    """A private anvil with the channel contract deployed."""

    def __init__(self) -> None:
        if not ANVIL.exists():
            raise ClusterFailure(f"anvil not found at {ANVIL}: run `make setup`")
        self.port = free_port()
        self.process = subprocess.Popen([str(ANVIL), "--port", str(self.port), "--host", "127.0.0.1",
                                         "--silent"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.backend = self._wait_ready()
        self.contract = self.deploy_hub()

    def deploy_hub(self) -> str:
        """A fresh ChannelHub from the artifact as it is now (each case takes its own: the daemon refuses
        a contract whose code is not the one it ships)."""
        payer = Account.create()
        self.backend.rpc("anvil_setBalance", [payer.address, hex(10**24)])
        artifact = load_artifact("ChannelHub")
        self.contract = deploy(TransactionSender(self.backend, payer, artifact.abi), artifact,
                               [1, 10**7]).address
        return self.contract

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_ready(self, timeout: float = 15.0) -> ChainBackend:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ClusterFailure("anvil exited at start")
            try:
                backend = connect_rpc(self.url, timeout=1.0)
                backend.chain_id()
                return backend
            except Exception:
                time.sleep(0.05)
        raise ClusterFailure("anvil did not answer")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@dataclass
class Daemon:
    """One `channeld node` process: its data directory, ports and pid."""

    datadir: Path
    address: str
    node_id: str
    chain: Chain
    contract: str
    extra: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    listen: int = field(default_factory=free_port)
    api: int = field(default_factory=free_port)

    @classmethod
    def create(cls, root: Path, name: str, chain: Chain, extra: list[str] | None = None) -> Daemon:
        datadir = root / name
        key = create_datadir(datadir, PASSWORD, scrypt_n=2)
        (root / f"{name}.password").write_text(PASSWORD)
        chain.backend.rpc("anvil_setBalance", [key.address, hex(10**24)])
        return cls(datadir, key.address, key.node_id, chain, chain.contract, list(extra or []))

    @property
    def uri(self) -> str:
        return f"{self.node_id}@127.0.0.1:{self.listen}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise ClusterFailure("the daemon is not running")
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.datadir.parent / f"{self.datadir.name}.log"

    def argv(self) -> list[str]:
        password = self.datadir.parent / f"{self.datadir.name}.password"
        return [sys.executable, "-m", "channeld.cli", "--datadir", str(self.datadir), "node",
                "--password-file", str(password), "--rpc-url", self.chain.url,
                "--contract", self.contract, "--listen", f"127.0.0.1:{self.listen}",
                "--api", f"127.0.0.1:{self.api}", "--set", "chain.confirmations=0",
                "--set", "chain.poll_interval=100ms", "--set", "node.log_level=warning", *self.extra]

    def start(self, core: int | None = None, timeout: float = 120.0) -> float:
        """Start the daemon; return the seconds until it reported itself ready."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._start_once(core, deadline)
            except ArtifactChanged:
                # another checkout user is rebuilding channeld/contracts/compiled.json; the daemon
                # refuses a contract whose code differs from the artifact it loaded. Wait for it to settle.
                if time.monotonic() + 5 > deadline:
                    raise
                time.sleep(1.0)

    def _start_once(self, core: int | None, deadline: float) -> float:
        runtime = self.datadir / "node.json"
        runtime.unlink(missing_ok=True)
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        started = time.perf_counter()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.argv(), stdout=log, stderr=log, cwd=REPO)
        pin(self.process.pid, core)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                text = self.log_path.read_bytes()[log_start:].decode(errors="replace")
                if "is not the ChannelHub contract" in text:
                    raise ArtifactChanged(text)
                raise ClusterFailure(f"node exited at start; log:\n{text[-3000:]}")
            if _runtime_pid(runtime) == self.process.pid:
                return time.perf_counter() - started
            time.sleep(0.005)
        raise ClusterFailure(f"node not ready in time; log:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return self.log_path.read_text()[-3000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return ApiClient(self.datadir, timeout=60.0).call(method, path, body)

    def store_bytes(self) -> int:
        return directory_bytes(self.datadir / "db")


def _runtime_pid(path: Path) -> int | None:
    try:
        return int(json.loads(path.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def directory_bytes(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def wait_until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise ClusterFailure(f"timed out waiting for {what}")
