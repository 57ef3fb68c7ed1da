"""Real daemons for the node tests: data directories on a real anvil, started as separate processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account

from channeld.api._client import ApiClient, ApiError, NodeNotRunning
from channeld.chain import TransactionSender, connect_rpc, deploy, load_artifact
from channeld.keys import create_datadir
from tests.tools import REPO, Anvil, free_port

PASSWORD = "correct horse battery staple"


def deploy_hub(anvil: Anvil) -> str:
    backend = connect_rpc(anvil.url)
    payer = Account.create()
    backend.rpc("anvil_setBalance", [payer.address, hex(10**24)])
    artifact = load_artifact("ChannelHub")
    return deploy(TransactionSender(backend, payer, artifact.abi), artifact, [1, 10**7]).address


class Zygote:
    """The pre-imported launcher (tests/node/zygote.py) and the daemons it forked."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "tests.node.zygote"], cwd=REPO, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.children: list[int] = []

    def spawn(self, argv: list[str], log: Path, env: dict[str, str] | None = None) -> int:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"argv": argv, "log": str(log), "env": env or {}}) + "\n")
        self.process.stdin.flush()
        pid = int(self.process.stdout.readline())
        self.children.append(pid)
        return pid

    def stop(self) -> None:
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.kill()
        self.process.wait()


@dataclass
class Daemon:
    """One node: its data directory, ports and (while running) its pid."""

    datadir: Path
    address: str
    node_id: str
    rpc_url: str
    contract: str
    zygote: Zygote
    pid: int | None = None

    def __post_init__(self) -> None:
        self.listen = free_port()
        self.api = free_port()
        self.password_file = self.datadir.parent / f"{self.datadir.name}.password"

    @property
    def uri(self) -> str:
        return f"{self.node_id}@127.0.0.1:{self.listen}"

    def argv(self) -> list[str]:
        return ["--datadir", str(self.datadir), "node", "--password-file", str(self.password_file),
                "--rpc-url", self.rpc_url, "--contract", self.contract,
                "--listen", f"127.0.0.1:{self.listen}", "--api", f"127.0.0.1:{self.api}",
                "--set", "chain.confirmations=0", "--set", "chain.poll_interval=100ms"]

    def start(self, timeout: float = 30.0) -> None:
        self.pid = self.zygote.spawn(self.argv(), self.datadir.parent / f"{self.datadir.name}.log")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready():
                return
            time.sleep(0.02)
        raise AssertionError(f"node did not start; log:\n{self.log()[-3000:]}")

    def _ready(self) -> bool:
        try:
            runtime = json.loads((self.datadir / "node.json").read_text())
        except (OSError, ValueError):
            return False
        return bool(runtime.get("pid") == self.pid)

    def log(self) -> str:
        path = self.datadir.parent / f"{self.datadir.name}.log"
        return path.read_text() if path.exists() else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.pid is not None
        os.kill(self.pid, sig)
        self.wait_gone()

    def wait_gone(self, timeout: float = 20.0) -> None:
        assert self.pid is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.pid = None
                return
            time.sleep(0.01)
        raise AssertionError("node did not exit")

    def client(self) -> ApiClient:
        return ApiClient(self.datadir, timeout=30.0)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.client().call(method, path, body)

    def channel(self) -> dict[str, Any]:
        channels = self.call("GET", "/channels")
        assert len(channels) == 1, channels
        return dict(channels[0])


def make_daemon(root: Path, name: str, anvil: Anvil, contract: str, zygote: Zygote) -> Daemon:
    datadir = root / name
    key = create_datadir(datadir, PASSWORD, scrypt_n=2)
    password_file = root / f"{name}.password"
    password_file.write_text(PASSWORD)
    password_file.chmod(0o600)
    connect_rpc(anvil.url).rpc("anvil_setBalance", [key.address, hex(10**22)])
    return Daemon(datadir, key.address, key.node_id, anvil.url, contract, zygote)


def wait_until(predicate: Any, timeout: float = 20.0, what: str = "condition",
               between: Callable[[], None] = lambda: time.sleep(0.05)) -> Any:
    """`predicate()` once it is truthy (API errors and stopped nodes count as not yet); `between` runs
    after each miss."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (ApiError, NodeNotRunning) as exc:
            last = exc
        else:
            if last:
                return last
        between()
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def open_channel(a: Daemon, b: Daemon, deposit: int) -> str:
    a.call("POST", "/channels", {"uri": b.uri, "deposit": str(deposit), "challenge_period": 30})
    wait_until(lambda: a.call("GET", "/channels") and b.call("GET", "/channels"), what="channel on both")
    return str(a.channel()["channel_id"])
