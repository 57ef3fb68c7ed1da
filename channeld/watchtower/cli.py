"""`channeld [--datadir DIR] watchtower run ...`: the standalone tower as a command.

`register_watchtower(commands)` adds the `watchtower` command to the `channeld` argument parser (each
sub-command's `run` default takes the parsed arguments and returns the exit status, as in
`channeld.cli`). The tower keeps its own key, database and chain account under `DIR/watchtower/`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import trio
from eth_account import Account
from eth_utils import is_address, to_checksum_address

from channeld.amounts import AmountError, parse_amount
from channeld.chain import AsyncSender, EventFollower, TransactionSender, connect_rpc, find_deploy_block
from channeld.chain.artifact import load_artifact
from channeld.chain.deploy import verify_deployment
from channeld.chain.sender import DEFAULT_FEE_CAP, FeePolicy
from channeld.errors import ConfigError
from channeld.keys import KEYSTORE_FILE, NodeKey, create_datadir, load_key, read_key_file, resolve_password
from channeld.store import Namespace
from channeld.watchtower._api import serve_status
from channeld.watchtower._db import TowerDB
from channeld.watchtower._service import TowerSettings, Watchtower

log = logging.getLogger("channeld.watchtower")


def register_watchtower(commands: Any) -> Any:
    """Add `watchtower run`; returns the `watchtower` actions so a node's CLI can add its own to them."""
    tower = commands.add_parser("watchtower", help="run a standalone watchtower that disputes stale closes")
    actions = tower.add_subparsers(dest="tower_command", metavar="ACTION", required=True)
    run = actions.add_parser("run", help="serve clients and watch the chain until interrupted")
    run.add_argument("--rpc-url", required=True, help="JSON-RPC URL of the chain (http or https)")
    run.add_argument("--contract", required=True, help="address of the channel contract to watch")
    run.add_argument("--listen", required=True, type=host_port, help="HOST:PORT for client sessions")
    run.add_argument("--api", type=host_port, help="HOST:PORT for a read-only JSON status endpoint")
    run.add_argument("--deploy-block", type=_non_negative, help="the contract's deploy block (else found)")
    run.add_argument("--confirmations", type=_non_negative, default=1,
                     help="blocks on top of an event before it is acted on (default: %(default)s)")
    run.add_argument("--poll-interval", type=_seconds, default=1.0,
                     help="seconds between polls of the chain (default: %(default)s)")
    run.add_argument("--bump-after", type=_seconds, default=12.0,
                     help="seconds an unconfirmed dispute waits for a higher fee (default: %(default)s)")
    run.add_argument("--safety-margin", type=_seconds, default=60.0,
                     help="a dispute's fee reaches the cap by its deadline less this (default: %(default)s)")
    run.add_argument("--max-fee-per-gas", type=_fee_cap, default=DEFAULT_FEE_CAP,
                     help="fee cap of re-sent disputes: wei, or with a unit as in 500gwei (default: 500gwei)")
    run.add_argument("--password-file", type=Path, help="keystore password file (else $CHANNELD_PASSWORD)")
    run.add_argument("--import-key", type=Path,
                     help="on first run, use this key (keystore JSON or hex) instead of a new one")
    run.set_defaults(run=run_tower)
    return actions


def host_port(text: str) -> tuple[str, int]:
    host, colon, port = text.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not colon or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host, int(port)


def _non_negative(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a non-negative integer")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < 86400:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 86400 seconds")
    return value


def _fee_cap(text: str) -> int:
    try:
        cap = parse_amount(text)
    except AmountError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if cap == 0:
        raise argparse.ArgumentTypeError("the fee cap must be above 0")
    return cap


def tower_key(tower_dir: Path, password_file: Path | None, import_key: Path | None) -> NodeKey:
    """The tower's own key: its keystore under `tower_dir`, created (or imported) on first run."""
    password = resolve_password(password_file, confirm=False)
    if (tower_dir / KEYSTORE_FILE).exists():
        return load_key(tower_dir, password)
    imported = None if import_key is None else read_key_file(import_key, password)
    return create_datadir(tower_dir, password, imported)


def run_tower(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not is_address(args.contract):
        raise ConfigError(f"--contract {args.contract!r} is not a 20-byte hex address")
    contract = to_checksum_address(args.contract)
    tower_dir = Path(args.datadir) / "watchtower"
    key = tower_key(tower_dir, args.password_file, args.import_key)
    backend = connect_rpc(args.rpc_url)
    hub = load_artifact("ChannelHub")
    verify_deployment(backend, hub, contract)
    deploy_block = args.deploy_block
    if deploy_block is None:
        deploy_block = find_deploy_block(backend, contract)
    db = TowerDB(tower_dir / "db", Namespace(backend.chain_id(), bytes.fromhex(contract[2:])))
    try:
        settings = TowerSettings(poll_interval=args.poll_interval, safety_margin=args.safety_margin,
                                 confirmations=args.confirmations)
        fees = FeePolicy(args.bump_after, args.max_fee_per_gas)
        sender = AsyncSender(TransactionSender(backend, Account.from_key(key.private_key.secret), hub.abi,
                                               fee_policy=fees))
        tower = Watchtower(db, key.private_key, settings, backend, sender, deploy_block)
        follower = EventFollower(backend, contract, db, deploy_block, args.confirmations)
        trio.run(_serve, tower, follower, args.listen, args.api)
    finally:
        db.close()
    return 0


async def _serve(tower: Watchtower, follower: EventFollower, listen: tuple[str, int],
                 api: tuple[str, int] | None) -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(tower.run, follower, *listen)
        if api is not None:
            await nursery.start(serve_status, tower, *api)
        # one line on stdout for whoever started us: the URI clients dial
        print(f"watchtower {tower.node_id.hex()}@{listen[0]}:{port} account "
              f"{to_checksum_address(tower.account_address())}", flush=True)
