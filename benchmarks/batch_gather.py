"""Wall time for a hub to gather and aggregate N partners' consents over loopback (docs/gas.md, "Gathering
consents"; docs/gas.json `batch.gather_seconds`): `python -m benchmarks.batch_gather`.

Real daemons on one anvil: a hub and 16 partners, their channels opened by the hub in one batch open.
Each measured batch is a batch withdraw over exactly N channels (the N partners pay the hub a little
first, so only their channels hold anything for the hub). The hub's own summary of each batch says where
its time went (`seconds`: asking and answers, waiting for keys, aggregation, registering the signer list,
mining); the figure written is gathering plus aggregation, mining left out. ECDSA: N = 1, 4, 16, three
runs each. BLS: N = 1, 4, a first run (it registers the partners' keys and the signer list, so it is not
counted) then two; every partner signs in its own worker processes, all on this machine's 2 cores.
The median of the runs is written; the machine is shared, so figures are noisy.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from channeld.api._client import ApiClient  # noqa: E402
from tests.batch.hub import deploy_with_batch  # noqa: E402
from tests.node.helpers import Daemon, Zygote, make_daemon, wait_until  # noqa: E402
from tests.tools import Anvil  # noqa: E402

PARTNERS = 16
SIZES = {"ecdsa": (1, 4, 16), "bls": (1, 4)}
RUNS = {"ecdsa": 3, "bls": 2}
DEPOSIT = 10**15
EARNING = 10
MD_HEADING = "## Gathering consents: wall time over loopback"


def _long(daemon: Daemon) -> ApiClient:
    return ApiClient(daemon.datadir, timeout=300.0)


def _channels_by_peer(hub: Daemon) -> dict[str, dict[str, Any]]:
    return {c["peer"]: c for c in hub.call("GET", "/channels")}


class Network:
    def __init__(self, root: Path) -> None:
        self.anvil = Anvil()
        self.zygote = Zygote()
        try:
            contract = deploy_with_batch(self.anvil)
            self.hub = make_daemon(root, "hub", self.anvil, contract, self.zygote)
            self.partners = [make_daemon(root, f"p{i}", self.anvil, contract, self.zygote)
                             for i in range(PARTNERS)]
            for daemon in (self.hub, *self.partners):
                daemon.start(timeout=120.0)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.zygote.stop()
        self.anvil.stop()

    def open_all(self) -> None:
        body = {"uris": [p.uri for p in self.partners], "deposit": str(DEPOSIT), "challenge_period": 30}
        result = _long(self.hub).call("POST", "/batch/open", body)
        assert result["operation"]["status"] == "mined", result
        wait_until(lambda: len(self.hub.call("GET", "/channels")) == PARTNERS, 120.0, "hub sees its channels")
        for partner in self.partners:
            wait_until(lambda p=partner: len(p.call("GET", "/channels")) == 1, 120.0, "partner's channel")
            half = {"node_id": partner.node_id, "amount": str(DEPOSIT // 2)}
            paid = self.hub.call("POST", "/payments", half)
            assert paid["status"] == "accepted", paid

    def batch(self, scheme: str, payers: list[Daemon]) -> dict[str, float]:
        """Pay the hub from `payers`, batch-withdraw from exactly their channels; the hub's timings."""
        for payer in payers:
            paid = payer.call("POST", "/payments", {"node_id": self.hub.node_id, "amount": str(EARNING)})
            assert paid["status"] == "accepted", paid
        return self.withdraw(scheme, len(payers))

    def withdraw(self, scheme: str, n: int) -> dict[str, float]:
        before = {peer: int(c["our_withdrawn"]) + int(c["our_balance"])
                  for peer, c in _channels_by_peer(self.hub).items() if int(c["our_balance"]) > 0}
        assert len(before) == n, before
        body = {"scheme": scheme, "min_amount": "1", "timeout": 120}
        (batch,) = _long(self.hub).call("POST", "/batch/withdraw", body)["batches"]
        assert (batch["operation"] or {}).get("status") == "mined" and len(batch["included"]) == n, batch
        wait_until(lambda: all(int(_channels_by_peer(self.hub)[peer]["our_withdrawn"]) == total
                               for peer, total in before.items()), 120.0, "withdrawals seen by the hub")
        return dict(batch["seconds"])


def gathered(seconds: dict[str, float]) -> float:
    """Consent gathering plus aggregation: the batch's wall time less mining and one-time registrations."""
    return sum(v for k, v in seconds.items() if k not in ("mine", "register_signers"))


def measure(network: Network, progress: Any = print) -> dict[str, Any]:
    first_run = network.withdraw("ecdsa", PARTNERS)  # takes the hub's share of the opening payments
    progress(f"ecdsa N={PARTNERS} (first, after the open): {first_run}")
    figures: dict[str, dict[str, float]] = {"ecdsa": {}, "bls": {}}
    details: dict[str, dict[str, list[dict[str, float]]]] = {"ecdsa": {}, "bls": {}}
    for scheme, sizes in SIZES.items():
        for n in sizes:
            payers = network.partners[:n]
            if scheme == "bls":
                started = time.monotonic()
                warm = network.batch(scheme, payers)
                progress(f"bls N={n} first (registers keys and the signer list): {warm}, "
                         f"{time.monotonic() - started:.1f} s in all")
            runs = [network.batch(scheme, payers) for _ in range(RUNS[scheme])]
            for run in runs:
                progress(f"{scheme} N={n}: {run}")
            figures[scheme][str(n)] = round(statistics.median(gathered(r) for r in runs), 3)
            details[scheme][str(n)] = runs
    return {"gather_seconds": figures, "gather_laps": details}


def carry_over(old_json: Path, result: dict[str, Any]) -> None:
    """Keep the gather figures (measured here, not by `make gas`) when `make gas` rewrites docs/gas.json."""
    try:
        old = json.loads(old_json.read_text()).get("batch", {})
    except (OSError, ValueError):
        return
    for key in ("gather_seconds", "gather_laps"):
        if key in old:
            result.setdefault("batch", {})[key] = old[key]


def render(batch: dict[str, Any]) -> list[str]:
    figures, laps = batch.get("gather_seconds"), batch.get("gather_laps", {})
    if not figures:
        return []
    intro = ("Written by `python -m benchmarks.batch_gather` (benchmarks/batch_gather.py): a hub "
             "daemon and 16 partner daemons on one anvil, over loopback TCP, on this shared 2-core "
             "machine (heavily loaded by other work while measured). A batch withdraw over exactly N "
             "channels; *gather* is from the hub sending its requests to the last answer (for BLS, "
             "each partner signing in its own worker processes), *keys* the hub checking on chain that"
             " each BLS signer's key is registered, *aggregate* building the calldata (BLS: "
             "aggregating and verifying the aggregate in the hub's worker processes). Mining and the "
             "one-time registration of keys and signer lists are left out (the first BLS batch over a "
             "new set of partners, which does them, is not counted). Median of the runs; every run is "
             "in docs/gas.json `batch.gather_laps`.")
    lines = [MD_HEADING, "", *textwrap.wrap(intro, 110), "",
             "| scheme | N | gather | keys | aggregate | seconds in all (`batch.gather_seconds`) |",
             "|---|---:|---:|---:|---:|---:|"]
    for scheme in ("ecdsa", "bls"):
        for n, value in figures.get(scheme, {}).items():
            runs = laps.get(scheme, {}).get(n, [])
            parts = [statistics.median(r.get(k, 0.0) for r in runs) if runs else 0.0
                     for k in ("gather", "keys", "aggregate")]
            cells = " | ".join(f"{x:.2f}" for x in (*parts, value))
            lines.append(f"| {scheme} | {n} | {cells} |")
    outro = ("BLS time is py-ecc's: about 0.2 s a signature and 0.6 s to verify the aggregate on an "
             "idle core; here 17 daemons, their BLS worker processes and other engineers' work share 2"
             " cores, so signing is serialised and the hub's aggregate-and-verify took 4 to 13 s a "
             "batch. ECDSA is one round trip and one signature check per partner. The hub remembers "
             "keys it has seen registered (a key is set once), so after the first batch *keys* reads "
             "nothing from the chain and is only scheduling delay.")
    return [*lines, "", *textwrap.wrap(outro, 110), ""]


def write(batch_figures: dict[str, Any]) -> None:
    gas_json, gas_md = REPO / "docs" / "gas.json", REPO / "docs" / "gas.md"
    document = json.loads(gas_json.read_text())
    document.setdefault("batch", {}).update(batch_figures)
    gas_json.write_text(json.dumps(document, indent=1) + "\n")
    text = gas_md.read_text()
    if MD_HEADING in text:
        text = text[:text.index(MD_HEADING)].rstrip("\n") + "\n"
    gas_md.write_text(text + "\n" + "\n".join(render(document["batch"])))


def main() -> int:
    if sys.argv[1:] == ["--render"]:  # rewrite the docs/gas.md section from docs/gas.json alone
        write({})
        return 0
    root = Path(tempfile.mkdtemp(prefix="batch-gather-"))
    network = None
    try:
        network = Network(root)
        network.open_all()
        write(measure(network))
    finally:
        if network is not None:
            network.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
