"""The `channeld` command: `channeld [--datadir DIR] COMMAND ...`.

Each command is one `register_*` function adding a subparser whose `run` default takes the parsed
arguments and returns the exit status; add a command by appending its register function to `COMMANDS`.
Every `ChanneldError` ends as one line on stderr and exit status 1; argparse's usage errors exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from channeld import __version__
from channeld.chain.artifact import load_artifact
from channeld.chain.backend import connect_rpc
from channeld.chain.deploy import Deployment, deploy
from channeld.chain.sender import TransactionSender
from channeld.errors import ChanneldError, ConfigError
from channeld.node._cli import (
    register_client_commands,
    register_devnet,
    register_init,
    register_node,
    register_token,
)

DEPLOY_KEY_ENV = "CHANNELD_DEPLOY_KEY"
DEFAULT_MIN_CHALLENGE = 60  # seconds: long enough for a watcher to react on a dev chain
DEFAULT_MAX_CHALLENGE = 30 * 24 * 3600
TEST_TOKEN_ARGS = ("channeld test token", "CTT")

Subparsers = Any  # argparse's _SubParsersAction is private


def default_datadir() -> Path:
    return Path(os.environ.get("CHANNELD_DATADIR", Path.home() / ".channeld"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="channeld", description="A payment-channel node for EVM chains.")
    parser.add_argument("--version", action="version", version=f"channeld {__version__}")
    parser.add_argument("--datadir", type=Path, default=default_datadir(),
                        help="where the node keeps its key, config and database (default: %(default)s)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in COMMANDS:
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except ChanneldError as error:
        print(f"channeld {args.command}: error: {_one_line(str(error))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return status


def _one_line(text: str) -> str:
    return " ".join(text.split())


def emit(args: argparse.Namespace, document: dict[str, Any], lines: Sequence[str]) -> None:
    """Machine output with `--json`, else human lines."""
    if getattr(args, "json", False):
        print(json.dumps(document, indent=2, sort_keys=True))
    else:
        print("\n".join(lines))


# ------------------------------------------------------------------ deploy


def register_deploy(commands: Subparsers) -> None:
    deploy_parser = commands.add_parser("deploy", help="deploy the channel contract on a chain")
    deploy_parser.add_argument("--rpc-url", required=True, help="JSON-RPC URL of the chain (http or https)")
    deploy_parser.add_argument("--private-key-file", type=Path,
                               help=f"file holding the paying account's hex key (else env {DEPLOY_KEY_ENV})")
    deploy_parser.add_argument("--test-token", action="store_true", help="also deploy a mintable test ERC-20")
    deploy_parser.add_argument("--min-challenge-period", type=int, default=DEFAULT_MIN_CHALLENGE,
                               help="shortest challenge period a channel may choose, seconds")
    deploy_parser.add_argument("--max-challenge-period", type=int, default=DEFAULT_MAX_CHALLENGE,
                               help="longest challenge period a channel may choose, seconds")
    deploy_parser.add_argument("--json", action="store_true", help="print JSON")
    deploy_parser.set_defaults(run=run_deploy)


def read_deploy_key(key_file: Path | None, environ: dict[str, str] | None = None) -> LocalAccount:
    """The paying account from `--private-key-file` or the environment. The key is never echoed."""
    environ = dict(os.environ) if environ is None else environ
    if key_file is not None:
        try:
            text, source = key_file.read_text(), f"private key file {key_file}"
        except OSError as error:
            raise ConfigError(f"cannot read private key file {key_file}: {error.strerror}") from error
    elif environ.get(DEPLOY_KEY_ENV):
        text, source = environ[DEPLOY_KEY_ENV], f"environment variable {DEPLOY_KEY_ENV}"
    else:
        raise ConfigError(f"no paying key: pass --private-key-file or set {DEPLOY_KEY_ENV}")
    hex_key = text.strip().removeprefix("0x")
    try:
        secret = bytes.fromhex(hex_key)
        if len(secret) != 32:
            raise ValueError
        account: LocalAccount = Account.from_key(secret)
    except ValueError:
        raise ConfigError(f"{source} does not hold a 32-byte hex secp256k1 key") from None
    return account


def run_deploy(args: argparse.Namespace) -> int:
    if not 0 < args.min_challenge_period <= args.max_challenge_period:
        raise ConfigError("need 0 < --min-challenge-period <= --max-challenge-period")
    account = read_deploy_key(args.private_key_file)
    backend = connect_rpc(args.rpc_url)
    hub = load_artifact("ChannelHub")
    sender = TransactionSender(backend, account, hub.abi)
    deployments = [deploy(sender, hub, [args.min_challenge_period, args.max_challenge_period])]
    if args.test_token:
        deployments.append(deploy(sender, load_artifact("TestToken"), TEST_TOKEN_ARGS))
    document = {
        "chain_id": backend.chain_id(),
        "deployer": account.address,
        "contracts": {item.name: _deployment_json(item) for item in deployments},
    }
    lines = [f"chain {backend.chain_id()}, paid by {account.address}"] + [
        f"{item.name} at {item.address} (block {item.block}, gas {item.gas_used})" for item in deployments
    ]
    emit(args, document, lines)
    return 0


def _deployment_json(item: Deployment) -> dict[str, Any]:
    return {"address": item.address, "block": item.block, "tx_hash": "0x" + item.tx_hash.hex(),
            "gas_used": item.gas_used}


# ------------------------------------------------------------------ demo


def register_demo(commands: Subparsers) -> None:
    demo_parser = commands.add_parser(
        "demo", help="four nodes, direct, routed and cross-chain payments, disputes and settlement on two "
                     "embedded chains")
    demo_parser.add_argument("--json", action="store_true", help="print the steps as JSON")
    demo_parser.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from channeld.demo import run  # the embedded EVM is only loaded when the demo runs

    return run(json_output=args.json)


# ------------------------------------------------------------------ watchtower


def register_watchtower_commands(commands: Subparsers) -> None:
    """`watchtower run` serves a standalone tower; `watchtower add|list` set up the running node's towers."""
    from channeld.watchtower.cli import register_watchtower

    actions = register_watchtower(commands)
    add = actions.add_parser("add", help="delegate this node's channels to a tower (kept across restarts)")
    add.add_argument("uri", help="the tower's <node id>@host:port (printed by `watchtower run`)")
    add.add_argument("--chain", help="the chain the tower watches, by name or id (default: the node's only "
                                     "chain); a tower serves one chain")
    add.add_argument("--json", action="store_true", help="print JSON")
    add.set_defaults(run=run_tower_add)
    listing = actions.add_parser("list", help="the towers this node pushes proofs to, and how they are doing")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(run=run_tower_list)


def _api(args: argparse.Namespace) -> Any:
    from channeld.api._client import ApiClient

    return ApiClient(args.datadir)


def run_tower_add(args: argparse.Namespace) -> int:
    body = {"uri": args.uri} if args.chain is None else {"uri": args.uri, "chain": args.chain}
    tower = _api(args).call("POST", "/watchtowers", body)
    emit(args, tower, [f"watchtower {tower['uri']} added for chain {tower['chain']}; the node pushes its "
                       "partners' newest proofs on that chain to it"])
    return 0


def run_tower_list(args: argparse.Namespace) -> int:
    towers = _api(args).call("GET", "/watchtowers")
    lines = [f"{t['uri']}  chain {t['chain']}, {'connected' if t['connected'] else 'not connected'}, "
             f"{t['channels']} channels, {t['accepted']} pushes accepted, {t['pending']} pending"
             for t in towers]
    empty = ["no watchtowers: add one with `channeld watchtower add URI`"]
    emit(args, {"watchtowers": towers}, lines or empty)
    return 0


# ------------------------------------------------------------------ dashboard


def register_dashboard(commands: Subparsers) -> None:
    board = commands.add_parser("dashboard", help="print the node's dashboard URL with a one-time login link")
    board.add_argument("--scope", default="read", choices=["read", "invoice", "pay", "admin"],
                       help="what the page may do (default: %(default)s, look only)")
    board.add_argument("--session-hours", type=float, default=12.0,
                       help="how long the page stays signed in (default: %(default)s)")
    board.set_defaults(run=run_dashboard)


def run_dashboard(args: argparse.Namespace) -> int:
    from channeld.api._client import api_url
    from channeld.api._dashboard import LINK_LIFETIME, create_login_link
    from channeld.api._tokens import Scope

    url = api_url(args.datadir)
    code = create_login_link(args.datadir, Scope.parse(args.scope), session=args.session_hours * 3600)
    print(f"{url}/#login={code}")
    minutes = int(LINK_LIFETIME // 60)
    print(f"(a one-time {args.scope} login; the link works for {minutes} minutes)", file=sys.stderr)
    return 0


COMMANDS: list[Callable[[Subparsers], None]] = [
    register_init, register_node, register_client_commands, register_devnet, register_deploy, register_demo,
    register_watchtower_commands, register_token, register_dashboard,
]


if __name__ == "__main__":
    sys.exit(main())
