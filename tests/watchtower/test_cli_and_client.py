"""The command's argument checks, the status endpoint, and the client's local rules."""

from __future__ import annotations

import argparse
from pathlib import Path

import httpx
import pytest

from channeld.cli import main
from channeld.store import Namespace
from channeld.watchtower import ClientMisuse, TowerDB, Watchtower
from channeld.watchtower._api import status_app
from channeld.watchtower.cli import host_port, register_watchtower
from channeld.watchtower.client import TowerClient
from tests.watchtower.kit import Party, sign_proof

CHAIN, CONTRACT, CID = 31337, bytes(range(20)), b"\x42" * 32
ALICE, BOB, TOWER = Party(b"\x01" * 32), Party(b"\x02" * 32), Party(b"\x03" * 32)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="channeld")
    parser.add_argument("--datadir", type=Path)
    register_watchtower(parser.add_subparsers(dest="command", required=True))
    return parser


def test_run_parses_its_flags() -> None:
    args = _parser().parse_args(["watchtower", "run", "--rpc-url", "http://127.0.0.1:8545", "--contract",
                                 "0x" + CONTRACT.hex(), "--listen", "[::1]:9750", "--api", "127.0.0.1:9751",
                                 "--confirmations", "3", "--bump-after", "5", "--safety-margin", "90",
                                 "--max-fee-per-gas", "20gwei"])
    assert (args.listen, args.api) == (("::1", 9750), ("127.0.0.1", 9751))
    assert (args.confirmations, args.bump_after, args.safety_margin) == (3, 5.0, 90.0)
    assert args.max_fee_per_gas == 20 * 10**9


@pytest.mark.parametrize("flags", [["--listen", "nohost"], ["--listen", "h:99999"], ["--confirmations", "-1"],
                                   ["--bump-after", "0"], ["--poll-interval", "soon"],
                                   ["--max-fee-per-gas", "0"], ["--max-fee-per-gas", "lots"],
                                   ["--safety-margin", "-5"]])
def test_bad_flags_are_usage_errors(flags: list[str]) -> None:
    argv = ["watchtower", "run", "--rpc-url", "http://x", "--contract", "0x" + CONTRACT.hex(), "--listen",
            "127.0.0.1:1", *flags]
    with pytest.raises(SystemExit) as caught:
        _parser().parse_args(argv)
    assert caught.value.code == 2


def test_host_port_accepts_port_zero_for_an_ephemeral_port() -> None:
    assert host_port("0.0.0.0:0") == ("0.0.0.0", 0)


def test_a_bad_contract_is_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["--datadir", str(tmp_path), "watchtower", "run", "--rpc-url", "http://127.0.0.1:1",
                   "--contract", "0x1234", "--listen", "127.0.0.1:0"])
    assert status == 1
    assert "not a 20-byte hex address" in capsys.readouterr().err


async def test_status_endpoint_reports_counts_only(tmp_path: Path) -> None:
    db = TowerDB(tmp_path / "db", Namespace(CHAIN, CONTRACT))
    try:
        tower = Watchtower(db, TOWER.node_key)
        transport = httpx.ASGITransport(app=status_app(tower))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://tower") as client:
            status = (await client.get("/status")).json()
            missing = await client.get("/channels")
        assert status["proofs_held"] == 0 and status["node_id"] == tower.node_id.hex()
        assert missing.status_code == 404
    finally:
        db.close()


def test_the_client_keeps_only_the_newest_proof_and_refuses_other_chains() -> None:
    client = TowerClient(f"{TOWER.node_key.public_key.format().hex()}@127.0.0.1:1", BOB.node_key, CHAIN,
                         CONTRACT)
    client.push(sign_proof(CHAIN, CONTRACT, CID, ALICE.signer, 5, 50))
    client.push(sign_proof(CHAIN, CONTRACT, CID, ALICE.signer, 3, 30))  # older: ignored
    stats = client.statistics()
    assert (stats.channels, stats.pending, stats.connected) == (1, 1, False)
    assert not client.is_synced()
    with pytest.raises(ClientMisuse):
        client.push(sign_proof(1, CONTRACT, CID, ALICE.signer, 6, 60))
    client.forget(CID)
    assert client.statistics().channels == 0
