"""The batch end-to-end tests' network: an anvil with the channel contract and its batch extension, and a
hub daemon with its partner daemons, all started (one shared set-up for the batch tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from eth_account import Account

from channeld.chain import TransactionSender, TxRequest, connect_rpc, deploy, load_artifact
from channeld.chain import contract as hub_abi
from tests.node.helpers import Daemon, Zygote, make_daemon
from tests.tools import Anvil


def deploy_with_batch(anvil: Anvil) -> str:
    """Deploy the channel contract, attach the batch extension; return the contract's address."""
    backend = connect_rpc(anvil.url)
    payer = Account.create()
    backend.rpc("anvil_setBalance", [payer.address, hex(10**24)])
    artifact = load_artifact("ChannelHub")
    sender = TransactionSender(backend, payer, artifact.abi)
    contract = deploy(sender, artifact, [1, 10**7]).address
    extension = sender.transact(TxRequest(to=None, data=hub_abi.bytecode("ChannelBatch"))).contract_address
    assert extension is not None
    sender.transact(TxRequest(to=contract, data=hub_abi.encode_attach_extension(extension)))
    return contract


@contextmanager
def hub_network(root: Path, names: tuple[str, ...]) -> Iterator[tuple[Anvil, Daemon, list[Daemon]]]:
    """A private anvil and one started daemon per name in `root`: (anvil, the first (hub), the others)."""
    anvil = Anvil()
    zygote = Zygote()
    try:
        contract = deploy_with_batch(anvil)
        daemons = [make_daemon(root, name, anvil, contract, zygote) for name in names]
        for daemon in daemons:
            daemon.start()
        yield anvil, daemons[0], daemons[1:]
    finally:
        zygote.stop()
        anvil.stop()
