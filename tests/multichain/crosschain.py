"""Three daemons on two anvils (alpha, the primary, and beta) for the routed and cross-chain tests.

`a` and `c` are the ends, `b` sits between them with channels on both chains (it mediates, and converts
where its config says so). Channels are opened with `open_between`, which waits until both sides hold
them open, and topped up from the partner's side with `deposit_from`, so payments can run both ways.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from channeld.api._client import ApiError
from tests.multichain.helpers import ChainEntry, MultiChainDaemon, chains_toml, make_multichain_daemon
from tests.node.helpers import Zygote, deploy_hub, wait_until
from tests.tools import Anvil

ALPHA_ID, BETA_ID = 5151, 5252
DEPOSIT = 10**18
FEE_BASE = 3
# blocks come when the tests mine them: a second each at most, a registration mined at once
TIMING = "block_time = 1\nregister_time = 5\nclock_skew = 2\n"
ROUTING = f'[routing]\ngossip_interval = "300ms"\nfee_base = {FEE_BASE}\n'


@dataclass
class World:
    alpha: ChainEntry
    beta: ChainEntry
    a: MultiChainDaemon
    b: MultiChainDaemon
    c: MultiChainDaemon

    @property
    def daemons(self) -> tuple[MultiChainDaemon, ...]:
        return self.a, self.b, self.c


def write_config(daemon: MultiChainDaemon, chains: list[ChainEntry], extra: str = "") -> None:
    """Chains with their timing, fast gossip, and `extra` (e.g. `[[conversions]]` tables)."""
    timed = [ChainEntry(c.name, c.anvil, c.contract, c.extra + TIMING) for c in chains]
    (daemon.datadir / "channeld.toml").write_text(chains_toml(timed) + ROUTING + extra)


@contextmanager
def three_nodes(root: Path, converter: str = "") -> Iterator[World]:
    """Anvils alpha and beta, daemons a, b (its config gets `converter` appended) and c, all started."""
    anvils = [Anvil(chain_id=ALPHA_ID), Anvil(chain_id=BETA_ID)]
    zygote = Zygote()
    try:
        alpha = ChainEntry("alpha", anvils[0], deploy_hub(anvils[0]))
        beta = ChainEntry("beta", anvils[1], deploy_hub(anvils[1]))
        chains = [alpha, beta]
        daemons = [make_multichain_daemon(root, name, chains, zygote) for name in ("a", "b", "c")]
        for daemon in daemons:
            write_config(daemon, chains, converter if daemon is daemons[1] else "")
            daemon.start(timeout=60)
        yield World(alpha, beta, *daemons)
    finally:
        zygote.stop()
        for anvil in anvils:
            anvil.stop()


def channels_on(daemon: MultiChainDaemon, chain: str, partner: MultiChainDaemon) -> list[dict[str, Any]]:
    return [c for c in daemon.call("GET", "/channels")
            if c["chain"] == chain and c["peer"] == partner.node_id and c["status"] == "open"]


def open_between(payer: MultiChainDaemon, payee: MultiChainDaemon, chain: str, deposit: int = DEPOSIT) -> str:
    """A channel on `chain` opened (and funded with `deposit`) by `payer`; its id once both hold it open."""
    payer.call("POST", "/peers", {"uri": payee.uri})
    body = {"uri": payee.uri, "deposit": str(deposit), "challenge_period": 30, "chain": chain}
    payer.call("POST", "/channels", body)
    wait_until(lambda: channels_on(payer, chain, payee) and channels_on(payee, chain, payer), timeout=60,
               what=f"channel on {chain}")
    return str(channels_on(payer, chain, payee)[0]["channel_id"])


def deposit_from(daemon: MultiChainDaemon, channel_id: str, amount: int = DEPOSIT) -> None:
    """`daemon` (the side that did not open the channel) deposits `amount` into it too."""
    daemon.call("POST", f"/channels/{channel_id}/deposit", {"amount": str(amount)})
    wait_until(lambda: int(view(daemon, channel_id)["our_deposit"]) >= amount, timeout=60,
               what="the partner's deposit")


def view(daemon: MultiChainDaemon, channel_id: str) -> dict[str, Any]:
    return dict(daemon.call("GET", f"/channels/{channel_id}"))


def balance(daemon: MultiChainDaemon, channel_id: str) -> int:
    return int(view(daemon, channel_id)["our_balance"])


def request(payee: MultiChainDaemon, amount: int, chain: str, **extra: Any) -> str:
    body = {"amount": str(amount), "description": "across", "chain": chain, **extra}
    return str(payee.call("POST", "/requests", body)["request"])


def pay_when_routable(payer: MultiChainDaemon, body: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    """POST /payments, retried while gossip has not yet brought a route (nothing is locked meanwhile)."""
    def attempt() -> dict[str, Any] | None:
        try:
            return dict(payer.call("POST", "/payments", body))
        except ApiError as exc:
            if "NoRoute" in str(exc) or "no path" in str(exc):
                return None
            raise

    result: dict[str, Any] = wait_until(attempt, timeout=timeout, what="a route to the payee")
    return result
