"""A proof signed for one chain is refused on the other, in a live session with a real daemon.

An in-process node holds a channel with the daemon on each of two anvils and sends, through its real
BOLT 8 session, a `Payment` for its beta channel whose proof it signed for alpha (alpha's chain id and
contract: an EIP-712 domain the beta channel never accepts). The daemon answers with a refusal and
nothing it stores changes; the next honest proof on beta is accepted with the nonce that follows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio

from channeld import protocol as p
from channeld import wire
from channeld.chain import connect_rpc
from channeld.config import ChainConfig, Config
from channeld.keys import NodeKey
from channeld.limits import RiskLimits
from channeld.node import Node
from channeld.protocol import Signer
from tests.multichain.helpers import ChainEntry, MultiChainDaemon, make_multichain_daemon
from tests.node.helpers import Zygote, deploy_hub, wait_until
from tests.node.inprocess import anvil_node_config, until
from tests.tools import Anvil

ALPHA_ID, BETA_ID = 6161, 6262
DEPOSIT = 10**18
Chains = tuple[list[ChainEntry], MultiChainDaemon]


@pytest.fixture(scope="module")
def two_chains(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chains]:
    anvils = [Anvil(chain_id=ALPHA_ID), Anvil(chain_id=BETA_ID)]
    zygote = Zygote()
    try:
        chains = [ChainEntry("alpha", anvils[0], deploy_hub(anvils[0])),
                  ChainEntry("beta", anvils[1], deploy_hub(anvils[1]))]
        daemon = make_multichain_daemon(tmp_path_factory.mktemp("live-binding"), "d", chains, zygote)
        daemon.start(timeout=60)
        yield chains, daemon
    finally:
        zygote.stop()
        for anvil in anvils:
            anvil.stop()


def _config(chains: list[ChainEntry]) -> Config:
    entries = tuple(ChainConfig(name=c.name, rpc_url=c.anvil.url, contract=c.contract, confirmations=0,
                                chain_id=c.anvil.chain_id, poll_interval=0.05) for c in chains)
    return replace(anvil_node_config(RiskLimits()), chains=entries)


async def _channel_on(node: Node, daemon: MultiChainDaemon, chain: str) -> bytes:
    before = set(node.channels.channels)
    await node.open_channel(daemon.uri, DEPOSIT, None, 30, chain=chain)
    await until(lambda: set(node.channels.channels) - before, "our channel", 60)
    (cid,) = set(node.channels.channels) - before
    await until(lambda: node.channels.entry(cid).state.our.deposit == DEPOSIT, "our deposit", 60)
    return cid


def _recording(node: Node) -> list[wire.Message]:
    """What the node receives from its peers from now on (each message is still handled as usual)."""
    received: list[wire.Message] = []
    dispatch = node.peers._dispatch

    def recording(session: Any, message: wire.Message) -> None:
        received.append(message)
        dispatch(session, message)

    node.peers._dispatch = recording  # type: ignore[method-assign]
    return received


def _daemon_view(daemon: MultiChainDaemon) -> dict[str, tuple[int, str, str]]:
    return {c["chain"]: (c["partner_nonce"], c["our_balance"], c["partner_balance"])
            for c in daemon.call("GET", "/channels")}


async def test_a_proof_signed_for_alpha_is_refused_on_beta_and_changes_nothing(
        two_chains: Chains, tmp_path: Path) -> None:
    chains, daemon = two_chains
    key = NodeKey.generate()
    for chain in chains:
        connect_rpc(chain.anvil.url).rpc("anvil_setBalance", [key.address, hex(10**22)])
    (tmp_path / "w").mkdir(mode=0o700)
    async with trio.open_nursery() as nursery:
        node: Node = await nursery.start(Node(tmp_path / "w", _config(chains), key, api=False).run)
        await node.connect(daemon.uri)
        alpha, beta = await _channel_on(node, daemon, "alpha"), await _channel_on(node, daemon, "beta")
        assert (await node.pay(bytes.fromhex(daemon.node_id), 10, chain="alpha"))["status"] == "accepted"
        await trio.to_thread.run_sync(lambda: wait_until(lambda: len(_daemon_view(daemon)) == 2, timeout=60))
        before = await trio.to_thread.run_sync(_daemon_view, daemon)
        state = node.channels.entry(beta).state
        alpha_ns = node.channels.entry(alpha).ns
        as_if_alpha = replace(state, chain_id=alpha_ns.chain_id, contract=alpha_ns.contract)
        _, effects = p.handle(as_if_alpha, p.ActionPay(1, 7, b""), Signer(key.private_key.secret))
        (crafted,) = [e.message for e in effects if isinstance(e, p.Send)]
        assert isinstance(crafted, wire.Payment) and crafted.balance_proof.chain_id == ALPHA_ID
        assert crafted.balance_proof.channel_id == beta
        received = _recording(node)
        node.peers.send(bytes.fromhex(daemon.node_id), crafted)
        await until(lambda: any(isinstance(m, wire.PaymentRefused) for m in received), "the refusal", 30)
        refused = next(m for m in received if isinstance(m, wire.PaymentRefused))
        assert (refused.channel_id, refused.nonce) == (beta, crafted.balance_proof.nonce), refused
        assert "chain" in refused.reason, refused
        assert await trio.to_thread.run_sync(_daemon_view, daemon) == before
        # the session carries on: the honest proof on beta takes the very nonce the crafted one named
        result = await node.pay(bytes.fromhex(daemon.node_id), 7, chain="beta")
        assert result["status"] == "accepted" and result["nonce"] == crafted.balance_proof.nonce
        nursery.cancel_scope.cancel()
