"""Two chains for the multi-chain tests: anvils that can be stopped and resumed, and daemons on both."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

import httpx
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import keccak

from channeld.chain import TransactionSender, TxRequest, connect_rpc, deploy, load_artifact
from channeld.keys import create_datadir
from tests.node.helpers import PASSWORD, Daemon, Zygote
from tests.tools import Anvil


def _process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (the npm `anvil` is a node.js launcher that runs the real binary)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split() if (task / "children").exists() else []
        for child in children:
            found += _process_tree(int(child))
    return found


def freeze(anvil: Anvil) -> None:
    """Stop the anvil processes (SIGSTOP): the RPC hangs, as a provider that stops answering does, while
    its port and chain stay ours so that `thaw` brings the same chain back."""
    for pid in _process_tree(anvil.process.pid):
        os.kill(pid, signal.SIGSTOP)


def thaw(anvil: Anvil) -> None:
    for pid in _process_tree(anvil.process.pid):
        os.kill(pid, signal.SIGCONT)


@dataclass(frozen=True)
class ChainEntry:
    name: str
    anvil: Anvil
    contract: str
    extra: str = ""  # more lines for this chain's table (e.g. its token allow-list)


@dataclass
class MultiChainDaemon(Daemon):
    """A daemon whose chains come from `[[chains]]` in its channeld.toml, not from flags."""

    def argv(self) -> list[str]:
        return ["--datadir", str(self.datadir), "node", "--password-file", str(self.password_file),
                "--listen", f"127.0.0.1:{self.listen}", "--api", f"127.0.0.1:{self.api}"]


def chains_toml(chains: list[ChainEntry]) -> str:
    return "".join(f'[[chains]]\nname = "{c.name}"\nrpc_url = "{c.anvil.url}"\ncontract = "{c.contract}"\n'
                   f'chain_id = {c.anvil.chain_id}\nconfirmations = 0\npoll_interval = "100ms"\n{c.extra}\n'
                   for c in chains)


def make_multichain_daemon(root: Path, name: str, chains: list[ChainEntry],
                           zygote: Zygote) -> MultiChainDaemon:
    datadir = root / name
    key = create_datadir(datadir, PASSWORD, scrypt_n=2)
    password_file = root / f"{name}.password"
    password_file.write_text(PASSWORD)
    password_file.chmod(0o600)
    (datadir / "channeld.toml").write_text(chains_toml(chains))
    for chain in chains:
        connect_rpc(chain.anvil.url).rpc("anvil_setBalance", [key.address, hex(10**22)])
    primary = chains[0]
    return MultiChainDaemon(datadir, key.address, key.node_id, primary.anvil.url, primary.contract, zygote)


def funded_sender(anvil: Anvil, abi_of: str = "TestToken") -> TransactionSender:
    """A fresh account with ether on `anvil`, sending with contract `abi_of`'s errors decoded."""
    backend = connect_rpc(anvil.url)
    payer = Account.create()
    backend.rpc("anvil_setBalance", [payer.address, hex(10**24)])
    return TransactionSender(backend, payer, load_artifact(abi_of).abi)


def send_call(sender: TransactionSender, to: str, signature: str, types: list[str],
              values: list[object]) -> None:
    """Send `signature(values)` to `to` from `sender` and wait until it is mined."""
    sender.transact(TxRequest(to=to, data=keccak(text=signature)[:4] + abi_encode(types, values)))


def deploy_token(anvil: Anvil, name: str, args: list[object], holder: str, amount: int,
                 sender: TransactionSender | None = None) -> str:
    """Deploy test token `name` (channeld/contracts/test) and mint `amount` of it to `holder`; `sender`
    (by default a fresh account) deploys it and so owns it."""
    sender = sender or funded_sender(anvil, name)
    token = str(deploy(sender, load_artifact(name), args).address)
    send_call(sender, token, "mint(address,uint256)", ["address", "uint256"], [holder, amount])
    return token


def metrics(daemon: MultiChainDaemon) -> str:
    """The daemon's Prometheus page (the metrics endpoint needs a token like the rest of the API)."""
    response = httpx.get(f"http://127.0.0.1:{daemon.api}/metrics",
                         headers={"Authorization": f"Bearer {daemon.client().token}"}, timeout=30.0)
    assert response.status_code == 200
    return response.text
