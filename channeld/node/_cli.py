"""The node's CLI commands: `init`, `node`, `restore`, `devnet` work on the data directory; the rest talk
to the running node's control API (`channeld.api._client`). Tables by default, `--json` for scripts."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from rich.console import Console
from rich.table import Table

from channeld.amounts import format_amount, parse_amount
from channeld.errors import ConfigError

Subparsers = Any


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document = {"t": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name,
                    "msg": record.getMessage()}
        if record.exc_info:
            document["exc"] = self.formatException(record.exc_info)
        return json.dumps(document)


def setup_logging(fmt: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("hypercorn").setLevel(logging.WARNING)


def _print(args: argparse.Namespace, document: Any, table: Table | list[str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(document, indent=2, sort_keys=True))
    elif isinstance(table, Table):
        Console(width=200).print(table)
    else:
        print("\n".join(table))


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def _client(args: argparse.Namespace) -> Any:
    from channeld.api._client import ApiClient

    return ApiClient(args.datadir)


# --- init and node ---------------------------------------------------------------------------------


def register_init(commands: Subparsers) -> None:
    p = commands.add_parser("init", help="create the data directory: a new key, an API token, a config")
    p.add_argument("--password-file", type=Path, help="file holding the keystore password")
    _json_flag(p)
    p.set_defaults(run=run_init)


def run_init(args: argparse.Namespace) -> int:
    from channeld.config import CONFIG_FILE
    from channeld.config_reference import write_default_file
    from channeld.keys import create_datadir, resolve_password

    password = resolve_password(args.password_file, confirm=True)
    key = create_datadir(args.datadir, password)
    if not (args.datadir / CONFIG_FILE).exists():
        write_default_file(args.datadir)
    _print(args, {"address": key.address, "node_id": key.node_id, "datadir": str(args.datadir)},
           [f"address {key.address}", f"node id {key.node_id}", f"data directory {args.datadir}"])
    return 0


def register_node(commands: Subparsers) -> None:
    p = commands.add_parser("node", help="run the node daemon (until SIGINT/SIGTERM)")
    p.add_argument("--password-file", type=Path, help="file holding the keystore password")
    p.add_argument("--rpc-url", help="chain JSON-RPC URL")
    p.add_argument("--chain", choices=("embedded",), help="use an in-process EVM instead of --rpc-url")
    p.add_argument("--contract", help="channel contract address")
    p.add_argument("--listen", help="peer listen HOST:PORT")
    p.add_argument("--api", help="control API HOST:PORT")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="any config setting (repeatable)")
    p.add_argument("--chain-entry", action="append", default=[], metavar="'KEY=VALUE ...'",
                   help="one chain of the [[chains]] list, e.g. 'name=base rpc_url=https://… contract=0x… "
                        "chain_id=8453' (repeatable; replaces the file's and CHANNELD_CHAINS' list)")
    p.set_defaults(run=run_node_command)


def node_flags(args: argparse.Namespace) -> dict[str, object]:
    from channeld.config import CHAINS_KEY, parse_set_flags

    flags: dict[str, object] = dict(parse_set_flags(args.set))
    if args.rpc_url and args.chain:
        raise ConfigError("give --rpc-url or --chain embedded, not both")
    for key, value in (("chain.rpc_url", args.rpc_url or args.chain), ("chain.contract", args.contract),
                       ("node.listen", args.listen), ("node.api", args.api)):
        if value is not None:
            flags[key] = value
    if args.chain_entry:
        flags[CHAINS_KEY] = args.chain_entry
    return flags


def run_node_command(args: argparse.Namespace) -> int:
    import trio

    from channeld.config import load_config
    from channeld.keys import load_key, resolve_password
    from channeld.node._node import Node, run_node

    config = load_config(args.datadir, flags=node_flags(args))
    key = load_key(args.datadir, resolve_password(args.password_file))
    _check_writable(args.datadir)
    setup_logging(config.node.log_format, config.node.log_level)
    try:
        trio.run(run_node, Node(args.datadir, config, key))
    except BaseExceptionGroup as group:
        raise _first_error(group) from None
    return 0


def _first_error(group: BaseExceptionGroup) -> BaseException:
    """The error a nursery wrapped, unwrapped so the CLI reports it as one line."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_error(exc)
        return exc
    return group


def _check_writable(datadir: Path) -> None:
    probe = datadir / ".write-probe"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"data directory {datadir} is not writable: {exc.strerror}") from None


# --- commands through the API ----------------------------------------------------------------------


def register_client_commands(commands: Subparsers) -> None:
    p = commands.add_parser("info", help="the running node's identity, addresses and chain")
    _json_flag(p)
    p.set_defaults(run=run_info)
    p = commands.add_parser("connect", help="connect to a peer (kept connected)")
    p.add_argument("uri", help="<node id>@host:port")
    _json_flag(p)
    p.set_defaults(run=lambda a: _simple(a, "POST", "/peers", {"uri": a.uri}, "connected to {node_id}"))
    p = commands.add_parser("open", help="open a channel with a peer (--batch: with many, one transaction)")
    p.add_argument("uri", nargs="?", help="<node id>@host:port")
    p.add_argument("--batch", metavar="FILE_OR_URIS",
                   help="open with every partner listed (a file of URIs, one a line, or URIs joined by ','),"
                        " DEPOSIT each, in one transaction")
    p.add_argument("--deposit", required=True, help="our deposit (wei, or with a unit: 0.5eth)")
    p.add_argument("--token", help="ERC-20 token address (default: ether)")
    p.add_argument("--challenge-period", type=int, default=3600, help="seconds (default %(default)s)")
    p.add_argument("--chain", help="chain name or id (default: the node's only chain)")
    _json_flag(p)
    p.set_defaults(run=run_open)
    for name, help_text in (("deposit", "raise our deposit in a channel by AMOUNT"),
                            ("withdraw", "withdraw AMOUNT from an open channel (the partner co-signs)")):
        p = commands.add_parser(name, help=help_text)
        p.add_argument("channel", nargs="?", help="channel id (0x...)")
        p.add_argument("amount", nargs="?", help="wei, or with a unit")
        if name == "deposit":
            p.add_argument("--all", action="store_true",
                           help="raise our deposit by --amount in every open channel, one transaction")
            p.add_argument("--amount", dest="all_amount", help="with --all: the top-up per channel")
            p.add_argument("--token", help="with --all: the channels' ERC-20 token (default: ether)")
            p.add_argument("--chain", help="with --all: the channels' chain, by name or id (default: the "
                                           "node's only chain)")
        if name == "withdraw":
            p.add_argument("--to", help="receiver address (default: ours)")
            _batch_flags(p, "withdraw our balance from every open channel in one transaction per token")
            p.add_argument("--min-amount", default="0", help="with --all: skip channels holding less for us")
        _json_flag(p)
        p.set_defaults(run=run_deposit if name == "deposit" else run_withdraw)
    p = commands.add_parser("pay", help="pay a peer directly (NODE_ID AMOUNT) or pay a request (chpr1...)")
    p.add_argument("node_id", help="the payee's node id, or a payment request string")
    p.add_argument("amount", nargs="?", help="wei, or with a unit (not with a payment request)")
    p.add_argument("--max-fee", help="the most a routed payment may pay in fees (wei, or with a unit)")
    p.add_argument("--chain", help="pay on this chain (name or id); a request: from its coin (converted)")
    p.add_argument("--max-spend", help="a request paid from another asset: the most to spend in ours")
    _json_flag(p)
    p.set_defaults(run=run_pay)
    p = commands.add_parser("request", help="create a payment request for AMOUNT (prints the string)")
    p.add_argument("amount", help="wei, or with a unit")
    p.add_argument("--description", default="", help="what it is for (up to 256 bytes)")
    p.add_argument("--expires", default="1h", help="how long it can be paid: 30m, 1h, 7d (default 1h)")
    p.add_argument("--chain", help="to be paid on this chain (name or id; default: the first configured)")
    p.add_argument("--token", help="to be paid in this ERC-20 token (default: the chain's native coin)")
    _json_flag(p)
    p.set_defaults(run=run_request)
    _register_reads(commands)
    _register_closing(commands)


def _register_reads(commands: Subparsers) -> None:
    p = commands.add_parser("channels", help="list channels")
    _json_flag(p)
    p.set_defaults(run=run_channels)
    p = commands.add_parser("payments", help="list recent payments (from the audit log)")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--before", help="only payments numbered below this seq (the next older page)")
    _json_flag(p)
    p.set_defaults(run=run_payments)
    p = commands.add_parser("backup", help="write a consistent backup of the running node's store")
    p.add_argument("file", type=Path)
    _json_flag(p)
    p.set_defaults(run=lambda a: _simple(a, "POST", "/backup", {"path": str(a.file.resolve())},
                                         "{records} records written to {path}"))
    p = commands.add_parser("audit", help="verify or export the audit log")
    p.add_argument("action", choices=("verify", "export"))
    p.add_argument("file", type=Path, nargs="?", help="export target (JSONL)")
    _json_flag(p)
    p.set_defaults(run=run_audit)


def _register_closing(commands: Subparsers) -> None:
    p = commands.add_parser("close", help="close a channel (cooperatively; --force: unilaterally)")
    p.add_argument("channel", nargs="?")
    p.add_argument("--force", action="store_true")
    _batch_flags(p, "with --cooperative: close every open channel in one transaction per token")
    p.add_argument("--cooperative", action="store_true", help="with --all: the partners co-sign")
    p.add_argument("--to", help="with --all: receiver of our payouts (default: ours)")
    _json_flag(p)
    p.set_defaults(run=run_close)
    p = commands.add_parser("settle", help="settle a closed channel after its challenge period")
    p.add_argument("channel")
    _json_flag(p)
    p.set_defaults(run=lambda a: _operation(a, "POST", f"/channels/{a.channel}/settle", None))
    p = commands.add_parser("restore", help="restore a backup into this (empty) data directory's store")
    p.add_argument("file", type=Path)
    _json_flag(p)
    p.set_defaults(run=run_restore)


def _simple(args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None,
            line: str) -> int:
    document = _client(args).call(method, path, body)
    _print(args, document, [line.format(**document)])
    return 0


def _operation(args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None) -> int:
    document = _client(args).call(method, path, body)
    tx = document.get("tx_hash") or "not yet sent"
    _print(args, document, [f"operation {document.get('operation_id')} ({document.get('kind', '-')}): "
                            f"{document.get('status')}, transaction {tx}"])
    return 0


def run_info(args: argparse.Namespace) -> int:
    info = _client(args).call("GET", "/info")
    _print(args, info, [f"node id   {info['node_id']}", f"address   {info['address']}",
                        f"listen    {info['uri']}", f"chain id  {info['chain_id']}",
                        f"contract  {info['contract']}", f"channels  {info['channels']}",
                        *(_chain_line(c) for c in info.get("chains", []))])
    return 0


def _chain_line(chain: dict[str, Any]) -> str:
    problem = f" ({chain['error']})" if chain.get("error") else ""
    drifts = "".join(f"; token {d['token']} rebasing (drift {int(d['drift']):+d})"
                     for d in chain.get("drifting_tokens", []))
    return f"chain     {chain['name']}: id {chain['chain_id']}, contract {chain['contract']}, " \
           f"{chain['status']}{problem}{drifts}"


def run_open(args: argparse.Namespace) -> int:
    if args.batch is not None:
        if args.uri is not None:
            raise ConfigError("open --batch takes its partners from FILE_OR_URIS, not a URI argument")
        body = {"uris": batch_uris(args.batch), "deposit": str(parse_amount(args.deposit)),
                "token": args.token, "challenge_period": args.challenge_period, "chain": args.chain}
        document = _client(args).call("POST", "/batch/open", body)
        op = document["operation"]
        each = format_amount(int(document["deposit"]))
        error = f" ({op['error']})" if op.get("error") else ""
        _print(args, document, [f"{len(document['partners'])} channels, {each} each: operation "
                                f"{op['operation_id']} {op['status']}, transaction {op.get('tx_hash') or '-'}"
                                + error])
        return 0 if op["status"] == "mined" else 1
    if args.uri is None:
        raise ConfigError("open needs a URI, or --batch FILE_OR_URIS")
    body = {"uri": args.uri, "deposit": str(parse_amount(args.deposit)), "token": args.token,
            "challenge_period": args.challenge_period, "chain": args.chain}
    return _operation(args, "POST", "/channels", body)


def batch_uris(spec: str) -> list[str]:
    """Partner URIs from a file (one a line; blank lines and '#' comments skipped) or a ','-joined list."""
    path = Path(spec)
    if "@" not in spec and path.is_file():
        lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
        uris = [line for line in lines if line]
    else:
        uris = [part.strip() for part in spec.split(",") if part.strip()]
    if not uris:
        raise ConfigError(f"no partner URI in {spec[:120]!r}")
    return uris


def run_deposit(args: argparse.Namespace) -> int:
    if args.all:
        if args.channel is not None or args.amount is not None or args.all_amount is None:
            raise ConfigError("deposit --all needs --amount A, and takes no CHANNEL or AMOUNT")
        body = {"amount": str(parse_amount(args.all_amount)), "token": args.token, "chain": args.chain}
        document = _client(args).call("POST", "/batch/deposit", body)
        op = document["operation"]
        _print(args, document, [f"{len(document['channels'])} channels topped up by "
                                f"{format_amount(int(document['amount']))}: operation {op['operation_id']} "
                                f"{op['status']}, transaction {op.get('tx_hash') or '-'}"])
        return 0 if op["status"] == "mined" else 1
    if args.channel is None or args.amount is None:
        raise ConfigError("deposit needs CHANNEL and AMOUNT, or --all --amount A")
    body = {"amount": str(parse_amount(args.amount))}
    return _operation(args, "POST", f"/channels/{args.channel}/deposit", body)


def run_withdraw(args: argparse.Namespace) -> int:
    if args.all:
        if args.channel is not None:
            raise ConfigError("withdraw --all takes no CHANNEL or AMOUNT")
        body = {"min_amount": str(parse_amount(args.min_amount)), "to": args.to, "scheme": args.scheme,
                "timeout": args.timeout, "chain": args.chain}
        return _batches(args, "/batch/withdraw", body)
    if args.channel is None or args.amount is None:
        raise ConfigError("withdraw needs CHANNEL and AMOUNT, or --all")
    body = {"amount": str(parse_amount(args.amount)), "to": args.to}
    return _operation(args, "POST", f"/channels/{args.channel}/withdraw", body)


def run_close(args: argparse.Namespace) -> int:
    if args.all:
        if args.channel is not None or args.force or not args.cooperative:
            raise ConfigError("close --all needs --cooperative, and takes no CHANNEL or --force")
        return _batches(args, "/batch/close", {"to": args.to, "scheme": args.scheme, "timeout": args.timeout,
                                               "chain": args.chain})
    if args.channel is None:
        raise ConfigError("close needs CHANNEL, or --all --cooperative")
    return _operation(args, "POST", f"/channels/{args.channel}/close", {"force": args.force})


def _batch_flags(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--all", action="store_true", help=help_text)
    parser.add_argument("--scheme", choices=("auto", "ecdsa", "bls"), default="auto",
                        help="with --all: how partners consent (default: the cheaper for the batch's size)")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="with --all: seconds to wait for partners (default %(default)s)")
    parser.add_argument("--chain", help="with --all: only the channels on this chain, by name or id "
                                        "(default: every chain, one batch per chain and token)")


def _batches(args: argparse.Namespace, path: str, body: dict[str, Any]) -> int:
    """Run a batch through the API and show one row per batch (one per chain and token), then who was
    left out."""
    document = _client(args).call("POST", path, body)
    table = Table("kind", "chain", "scheme", "channels", "left out", "amount", "status", "transaction")
    notes: list[str] = []
    for batch in document["batches"]:
        op = batch["operation"] or {}
        counts = (str(len(batch["included"])), str(len(batch["left_out"])))
        table.add_row(batch["kind"], batch["chain"], batch["scheme"], *counts,
                      format_amount(int(batch["amount"])), op.get("status", "nothing sent"),
                      op.get("tx_hash") or "-")
        notes += [f"left out {cid}: {why}" for cid, why in batch["left_out"].items()]
    _print(args, document, table)
    if not getattr(args, "json", False) and notes:
        print("\n".join(notes))
    ok = all((b["operation"] or {}).get("status") == "mined" for b in document["batches"])
    return 0 if ok else 1


def run_pay(args: argparse.Namespace) -> int:
    if args.node_id.lower().startswith("chpr1"):
        if args.amount is not None:
            raise ConfigError("a payment request carries its amount: give no AMOUNT")
        body: dict[str, Any] = {"request": args.node_id}
    elif args.amount is None:
        raise ConfigError("pay NODE_ID needs an AMOUNT")
    else:
        body = {"node_id": args.node_id, "amount": str(parse_amount(args.amount))}
    for name in ("max_fee", "max_spend"):
        if getattr(args, name) is not None:
            body[name] = str(parse_amount(getattr(args, name)))
    if args.chain is not None:
        body["chain"] = args.chain
    result = _client(args).call("POST", "/payments", body)
    lines = [f"payment {result['payment_id']} of {format_amount(int(result['amount']))}: {result['status']}"
             + (f" ({result['reason']})" if result.get("reason") else "")]
    if result.get("spent") is not None:  # paid from another asset than the request's, through a converter
        lines.append(f"spent {format_amount(int(result['spent']))} on chain {result['chain']}")
    if result.get("preimage"):
        lines.append(f"receipt (preimage) {result['preimage']}")
    _print(args, result, lines)
    return 0 if result["status"] == "accepted" else 1


def parse_duration(text: str) -> int:
    """Seconds in `30s`, `15m`, `2h`, `7d` (or a bare number of seconds)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    body, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    if not body.isdigit() or not 0 < int(body) * units[unit] < 10**9:
        raise ConfigError(f"{text!r} is not a duration such as 30m, 2h or 7d")
    return int(body) * units[unit]


def run_request(args: argparse.Namespace) -> int:
    body = {"amount": str(parse_amount(args.amount)), "description": args.description,
            "expires_in": parse_duration(args.expires)}
    for name in ("chain", "token"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    result = _client(args).call("POST", "/requests", body)
    _print(args, result, [result["request"], f"amount {format_amount(int(result['amount']))}, "
                          f"payment hash {result['payment_hash']}, expires at {result['expiry']}"])
    return 0


# --- tokens ----------------------------------------------------------------------------------------


def register_token(commands: Subparsers) -> None:
    p = commands.add_parser("token", help="make, list or revoke scoped control-API tokens")
    actions = p.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a token (printed once; only its hash is kept)")
    create.add_argument("--scope", required=True, choices=("read", "invoice", "pay", "admin"))
    create.add_argument("--expires", help="lifetime: 30m, 12h, 90d (default: never)")
    create.add_argument("--label", default="", help="a note, e.g. who uses it")
    _json_flag(create)
    create.set_defaults(run=run_token_create)
    listing = actions.add_parser("list", help="list tokens (ids, scopes, expiry; never the secret)")
    _json_flag(listing)
    listing.set_defaults(run=run_token_list)
    revoke = actions.add_parser("revoke", help="revoke a token by id (takes effect at once)")
    revoke.add_argument("token_id")
    _json_flag(revoke)
    revoke.set_defaults(run=run_token_revoke)


def run_token_create(args: argparse.Namespace) -> int:
    from channeld.api._tokens import Scope, TokenBook

    expires = None if args.expires is None else parse_duration(args.expires)
    token, record = TokenBook(args.datadir).create(Scope.parse(args.scope), args.label, expires)
    _print(args, {"token": token, **record.as_json()},
           [token, f"id {record.id}, scope {args.scope}"
            + ("" if expires is None else f", expires in {expires}s"),
            "store it now: only its hash is kept"])
    return 0


def run_token_list(args: argparse.Namespace) -> int:
    from channeld.api._tokens import TokenBook

    records = [r.as_json() for r in TokenBook(args.datadir).list()]
    table = Table("id", "scope", "label", "expires", "revoked")
    for r in records:
        table.add_row(r["id"], r["scope"], r["label"], str(r["expires"] or "never"), str(r["revoked"]))
    _print(args, records, table)
    return 0


def run_token_revoke(args: argparse.Namespace) -> int:
    from channeld.api._tokens import TokenBook

    record = TokenBook(args.datadir).revoke(args.token_id)
    _print(args, record.as_json(), [f"token {record.id} revoked"])
    return 0


def run_channels(args: argparse.Namespace) -> int:
    channels = _client(args).call("GET", "/channels")
    table = Table("channel", "chain", "partner", "status", "ours", "theirs", "nonces")
    for c in channels:
        asset = c.get("asset")  # balances in the token's own units once the node has read them
        ours, theirs = ((asset["our_balance"], asset["partner_balance"]) if asset else
                        (format_amount(int(c["our_balance"])), format_amount(int(c["partner_balance"]))))
        table.add_row(c["channel_id"][:18] + "…", c.get("chain", "-"), c["partner"][:12] + "…", c["status"],
                      ours, theirs, f"{c['our_nonce']}/{c['partner_nonce']}")
    _print(args, channels, table)
    return 0


def run_payments(args: argparse.Namespace) -> int:
    limit = max(1, args.limit)
    query = {"limit": limit} if args.before is None else {"limit": limit, "before": args.before}
    payments = _client(args).call("GET", "/payments?" + urlencode(query))  # the node validates the cursor
    table = Table("seq", "kind", "chain", "channel", "amount", "payment id")
    for p in payments:
        table.add_row(str(p["seq"]), p["kind"], p.get("chain", "-"), p["channel_id"][:18] + "…",
                      format_amount(int(p["amount"])), str(p["payment_id"]))
    _print(args, payments, table)
    if len(payments) == limit and not args.json:
        print(f"older: channeld payments --limit {limit} --before {payments[0]['seq']}")
    return 0


def run_audit(args: argparse.Namespace) -> int:
    if args.action == "verify":
        verdict = _client(args).call("GET", "/audit/verify")
        line = (f"audit log verifies: {verdict['entries']} entries" if verdict["ok"]
                else f"audit log is BROKEN at entry {verdict['first_bad']}: {verdict['reason']}")
        _print(args, verdict, [line])
        return 0 if verdict["ok"] else 1
    if args.file is None:
        raise ConfigError("audit export needs a FILE")
    return _simple(args, "POST", "/audit/export", {"path": str(args.file.resolve())},
                   "{entries} entries exported to {path}")


def run_restore(args: argparse.Namespace) -> int:
    from channeld.node._node import STORE_DIR
    from channeld.store import restore_backup

    args.datadir.mkdir(mode=0o700, parents=True, exist_ok=True)  # a restore onto a fresh machine
    records = restore_backup(args.file, args.datadir / STORE_DIR)
    _print(args, {"records": records, "datadir": str(args.datadir)},
           [f"{records} records restored into {args.datadir / STORE_DIR}",
            "a stale backup can miss newer proofs: check every channel with its partner before paying"])
    return 0


# --- devnet ----------------------------------------------------------------------------------------


def register_devnet(commands: Subparsers) -> None:
    p = commands.add_parser("devnet", help="start anvil, deploy the contract and a token, set up N nodes")
    p.add_argument("--nodes", type=int, default=2, help="how many node data directories (default 2)")
    p.add_argument("--dir", type=Path, default=Path("devnet"), help="where the node directories go")
    p.add_argument("--port", type=int, default=8545, help="anvil's port")
    p.add_argument("--anvil", type=Path, help="anvil binary (default: the repo's .tools)")
    p.add_argument("--no-wait", action="store_true", help="stop anvil again at once (for checks)")
    _json_flag(p)
    p.set_defaults(run=run_devnet)


def run_devnet(args: argparse.Namespace) -> int:
    import secrets
    import subprocess
    import time

    from eth_account import Account

    from channeld.chain import TransactionSender, deploy, load_artifact
    from channeld.keys import create_datadir

    if not 1 <= args.nodes <= 20:
        raise ConfigError("--nodes must be 1-20")
    anvil = args.anvil or Path(__file__).resolve().parents[2] / ".tools" / "node_modules" / ".bin" / "anvil"
    if not anvil.exists():
        raise ConfigError(f"anvil not found at {anvil}: run `make setup` or pass --anvil")
    if args.dir.exists() and any(args.dir.iterdir()):
        raise ConfigError(f"{args.dir} is not empty")
    process = subprocess.Popen([str(anvil), "--port", str(args.port), "--silent"], stdout=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{args.port}"
        backend = _wait_for_rpc(url, process)
        payer = Account.create()
        backend.rpc("anvil_setBalance", [payer.address, hex(10**24)])
        sender = TransactionSender(backend, payer, load_artifact("ChannelHub").abi)
        hub = deploy(sender, load_artifact("ChannelHub"), [1, 30 * 24 * 3600])
        token = deploy(sender, load_artifact("TestToken"), ["channeld test token", "CTT"])
        args.dir.mkdir(parents=True, exist_ok=True)
        password_file = args.dir / "password"
        password_file.write_text(secrets.token_hex(16))
        password_file.chmod(0o600)
        nodes = []
        for index in range(args.nodes):
            datadir = args.dir / f"node{index}"
            key = create_datadir(datadir, password_file.read_text(), scrypt_n=2**14)
            backend.rpc("anvil_setBalance", [key.address, hex(10**22)])
            nodes.append({"datadir": str(datadir), "address": key.address, "node_id": key.node_id,
                          "command": f"channeld --datadir {datadir} node --password-file {password_file} "
                                     f"--rpc-url {url} --contract {hub.address} "
                                     f"--listen 127.0.0.1:{9740 + 2 * index} "
                                     f"--api 127.0.0.1:{9741 + 2 * index}"})
        document = {"rpc_url": url, "contract": hub.address, "token": token.address, "nodes": nodes}
        _print(args, document, [f"anvil on {url}; ChannelHub {hub.address}; test token {token.address}",
                                *(n["command"] for n in nodes)])
        if not args.no_wait:
            print("devnet running; Ctrl-C stops anvil", file=sys.stderr)
            while process.poll() is None:
                time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        process.terminate()
        process.wait(timeout=10)
    return 0


def _wait_for_rpc(url: str, process: Any) -> Any:
    import time

    from channeld.chain import RpcUnreachable, connect_rpc

    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            raise ConfigError("anvil exited at start (is the port in use?)")
        try:
            backend = connect_rpc(url, timeout=1.0)
            backend.chain_id()
            return backend
        except RpcUnreachable:
            if time.monotonic() > deadline:
                raise ConfigError(f"anvil did not answer on {url}") from None
            time.sleep(0.1)
