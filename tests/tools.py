"""Shared test helpers: the repo's own anvil and solc, and free loopback ports."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOOLS_BIN = REPO / ".tools" / "node_modules" / ".bin"
ANVIL = TOOLS_BIN / "anvil"
SOLCJS = TOOLS_BIN / "solcjs"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Anvil:
    """A real anvil process on a free loopback port; stopped by `stop()`."""

    def __init__(self, chain_id: int = 31337, block_time: float | None = None) -> None:
        if not ANVIL.exists():
            raise RuntimeError(f"anvil not found at {ANVIL}: run `make setup`")
        self.port = free_port()
        self.chain_id = chain_id
        args = [str(ANVIL), "--port", str(self.port), "--host", "127.0.0.1",
                "--chain-id", str(chain_id), "--silent"]
        if block_time is not None:
            args += ["--block-time", str(block_time)]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_ready()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"anvil exited: {self.process.stderr.read()!r}")  # type: ignore[union-attr]
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("anvil did not start in time")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
