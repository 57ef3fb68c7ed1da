"""The node's configuration: typed, documented, validated before the node starts.

Sources, each overriding the one before: the defaults below < `channeld.toml` in the data directory <
environment variables `CHANNELD_<SECTION>_<KEY>` < command-line flags (dotted keys, `node.listen`).
Every value from every source is parsed and checked, even one a later source overrides, and every
problem found is reported together in one `InvalidConfig` naming each dotted key, its source and why.

Each field carries `metadata={"doc": ..., "kind": ...}`: the doc line and value kind drive both the
parser here and the generated reference (`channeld/config_reference.py`; `scripts/gen_config_reference.py`
writes `docs/config-reference.md`), so the two cannot drift apart. The lists of tables are built in their
own modules: `[[chains]]` (also from `CHANNELD_CHAINS` and `--chain-entry`) in `config_chains.py`,
`[[conversions]]` in `config_conversions.py`.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from eth_utils import is_checksum_address, is_hex_address, to_checksum_address

from channeld.amounts import AmountError, check_amount, format_amount, parse_amount
from channeld.errors import ConfigError, LocalFault
from channeld.limits import RiskLimits
from channeld.protocol._crosschain import (
    MAX_BLOCK_TIME,
    MAX_CLOCK_SKEW,
    MAX_CONFIRMATIONS,
    MAX_REGISTER_TIME,
    ChainTiming,
)
from channeld.protocol._state import DEFAULT_REVEAL_TIMEOUT

if TYPE_CHECKING:
    from channeld.config_conversions import ConversionConfig

CONFIG_FILE = "channeld.toml"
ENV_PREFIX = "CHANNELD_"
CHAINS_KEY = "chains"  # the `[[chains]]` array of tables
CONVERSIONS_KEY = "conversions"  # the `[[conversions]]` array of tables
MAX_DURATION_SECONDS = 10_000_000  # about 115 days; larger is a typo, not a setting
_MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class HostPort:
    """A TCP endpoint; IPv6 hosts are written in brackets (`[::1]:9740`)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


DEFAULT_LISTEN = HostPort("0.0.0.0", 9740)
DEFAULT_API = HostPort("127.0.0.1", 9741)


def setting(default: Any, kind: str, doc: str, **rules: Any) -> Any:
    """A config field: its default, value kind (see `_KINDS`), one-line doc and kind-specific rules."""
    return field(default=default, metadata={"doc": doc, "kind": kind, **rules})


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """The `[node]` section: where the node listens and how it logs."""

    # HostPort is frozen, so one shared default instance is safe.
    listen: HostPort = setting(DEFAULT_LISTEN, "hostport", "Peer-to-peer listen address.")  # noqa: RUF009
    api: HostPort = setting(DEFAULT_API, "hostport",  # noqa: RUF009
                            "Control API listen address; keep it on loopback unless a proxy guards it.")
    log_format: str = setting("text", "choice", "Log line format.", choices=("text", "json"))
    log_level: str = setting("info", "choice", "Lowest level logged.",
                             choices=("debug", "info", "warning", "error"))
    api_tls_cert: str | None = setting(None, "path", "TLS certificate (PEM) for the control API; "
                                       "required to bind it to a non-loopback address.", optional=True)
    api_tls_key: str | None = setting(None, "path", "TLS private key (PEM) matching node.api_tls_cert.",
                                      optional=True)
    api_rate: int = setting(50, "int", "Control API requests per second allowed to one token.",
                            min=1, max=100_000)
    api_burst: int = setting(200, "int", "Control API requests one token may make in a burst.",
                             min=1, max=1_000_000)

    def __post_init__(self) -> None:
        _validate_fields(self, "node")

    def problems(self) -> Iterator[tuple[str, str]]:
        if (self.api_tls_cert is None) != (self.api_tls_key is None):
            yield "api_tls_key", "node.api_tls_cert and node.api_tls_key go together"
        if self.api_tls_cert is None and not is_loopback(self.api.host):
            yield "api", (f"{self.api} is not a loopback address: set node.api_tls_cert and "
                          "node.api_tls_key to serve the control API over TLS")


@dataclass(frozen=True, slots=True)
class ChainConfig:
    """The `[chain]` section: which chain and contract the node uses (one `[[chains]]` entry each when it
    serves several; see below). Its timing keys bound how long claiming a lock on it can take: a chain
    needing `block_time + register_time + 2 x confirmations x block_time` above the 600 s reveal timeout
    of the node's channels is refused. The defaults suit Ethereum L1; a local devnet that mines on demand
    can use `block_time = 1`, `register_time = 5`, `confirmations = 0`."""

    rpc_url: str = setting("embedded", "rpc_url",
                           "JSON-RPC endpoint (http, https, ws, wss), or `embedded` for an in-process EVM.")
    contract: str | None = setting(None, "address", "Channel contract address; unset to deploy one.",
                                   optional=True)
    confirmations: int = setting(1, "int", "Blocks on top of an event before it is acted on; "
                                 "raise it on public chains.", min=0, max=MAX_CONFIRMATIONS)
    poll_interval: float = setting(2.0, "duration", "How often the chain is polled for new blocks.")
    chain_id: int | None = setting(None, "int", "Chain id the RPC must report; unset to accept any.",
                                   optional=True, min=1, max=2**64 - 1)
    name: str | None = setting(None, "name", "Display name (letters, digits, `-`, `_`, `.`); unset "
                               "shows the chain id.", optional=True)
    tokens: tuple[str, ...] | None = setting(None, "address_list", "ERC-20 tokens channels may be opened "
                                             "in; unset allows any, `[]` only the native coin.",
                                             optional=True)
    # how the chain's time behaves: with `confirmations` they set the least reveal timeout a channel on
    # it may use and the margins of payments that cross chains (channeld/protocol/_crosschain.py)
    block_time: int = setting(12, "int", "Longest gap between two blocks, in seconds (12 suits Ethereum "
                              "L1; raise it where slots are often missed).", min=1, max=MAX_BLOCK_TIME)
    register_time: int = setting(120, "int", "Longest a secret registration may wait to be mined, in "
                                 "seconds.", min=0, max=MAX_REGISTER_TIME)
    clock_skew: int = setting(15, "int", "How far block timestamps may stray from true time, either way, "
                              "in seconds.", min=0, max=MAX_CLOCK_SKEW)

    def __post_init__(self) -> None:
        _validate_fields(self, "chain")
        # every channel the node holds on the chain (ours, and a partner's open) uses the node's reveal
        # timeout: a chain that needs more could hold none safely, so it is refused before the node starts
        needed = self.timing(self.chain_id or 1).min_reveal_timeout
        if needed > DEFAULT_REVEAL_TIMEOUT:
            raise ConfigError(
                f"block_time {self.block_time} s, register_time {self.register_time} s and confirmations "
                f"{self.confirmations} need channels with a reveal timeout of at least {needed} s "
                f"(block_time + register_time + 2 x confirmations x block_time); this node's channels use "
                f"{DEFAULT_REVEAL_TIMEOUT} s")

    def timing(self, chain_id: int) -> ChainTiming:
        """This chain's timing, once its id is known (the RPC reports it when `chain_id` is unset)."""
        return ChainTiming(chain_id, self.block_time, self.confirmations, self.register_time, self.clock_skew)


@dataclass(frozen=True, slots=True)
class TransportConfig:
    """The `[transport]` section: peer connections and their abuse limits."""

    handshake_timeout: float = setting(10.0, "duration", "Time a peer has to finish the handshake.")
    max_message_size: int = setting(65535, "int", "Largest accepted message, in bytes.",
                                    min=1024, max=65535)
    max_messages_per_second: int = setting(50_000, "int",
                                           "Messages per second one peer may send (a payment is one).",
                                           min=1, max=1_000_000)
    max_connections: int = setting(256, "int", "Most peer connections open at once.", min=1, max=100_000)
    ping_interval: float = setting(30.0, "duration", "Idle time after which a ping is sent.")
    peer_timeout: float = setting(90.0, "duration",
                                  "Silence after which a peer is disconnected; above ping_interval.")
    max_pending_channels: int = setting(16, "int", "Channels one peer may announce that are not (yet) "
                                        "open on chain with us; past it the peer is refused and "
                                        "disconnected.", min=1, max=10_000)

    def __post_init__(self) -> None:
        _validate_fields(self, "transport")

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.peer_timeout <= self.ping_interval:
            yield "peer_timeout", (f"{_render_duration(self.peer_timeout)} must be longer than "
                                   f"ping_interval ({_render_duration(self.ping_interval)})")


@dataclass(frozen=True, slots=True)
class WatchtowerConfig:
    """The `[watchtower]` section: disputing stale closes, and raising the fees of unmined transactions."""

    safety_margin: float = setting(300.0, "duration",
                                   "A dispute is submitted at least this long before the challenge deadline, "
                                   "and its fee escalates to reach max_fee_per_gas by then.")
    bump_after: float = setting(12.0, "duration", "An unmined transaction of the node (a dispute or any "
                                "other) is re-sent with the same nonce and at least 12.5% higher fees "
                                "after this long.")
    max_fee_per_gas: int = setting(500 * 10**9, "amount", "Fee cap per gas for re-sent transactions; "
                                   "fee bumps stop there.")

    def __post_init__(self) -> None:
        _validate_fields(self, "watchtower")
        if self.max_fee_per_gas == 0:
            raise ConfigError("watchtower.max_fee_per_gas: the fee cap must be above 0")


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """The `[routing]` section: what this node charges to forward multi-hop payments, and gossip."""

    fee_base: int = setting(0, "int", "Flat fee (smallest units) charged per forwarded payment.",
                            min=0, max=2**63)
    fee_ppm: int = setting(0, "int", "Proportional fee, in millionths of the forwarded amount.",
                           min=0, max=1_000_000)
    forward: str = setting("yes", "choice", "Whether to forward other nodes' payments.",
                           choices=("yes", "no"))
    gossip_interval: float = setting(30.0, "duration", "How often our channel announcements are re-sent.")

    def __post_init__(self) -> None:
        _validate_fields(self, "routing")


@dataclass(frozen=True, slots=True)
class JournalConfig:
    """The `[journal]` section: how long the event journal behind the API's event stream keeps events."""

    retention: float = setting(30 * 86400.0, "duration", "Events older than this are pruned from the "
                               "journal, hourly; a stream client or webhook further behind misses them "
                               "(balances and payments stay in the store's audit log).")

    def __post_init__(self) -> None:
        _validate_fields(self, "journal")


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration, one attribute per section."""

    node: NodeConfig = field(default_factory=NodeConfig)
    chain: ChainConfig = field(default_factory=ChainConfig)
    transport: TransportConfig = field(default_factory=TransportConfig)
    limits: RiskLimits = field(default_factory=RiskLimits)
    watchtower: WatchtowerConfig = field(default_factory=WatchtowerConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    journal: JournalConfig = field(default_factory=JournalConfig)
    # `[[chains]]` entries; empty when the single `[chain]` section names the one chain
    chains: tuple[ChainConfig, ...] = ()
    # `[[conversions]]` entries (channeld/config_conversions.py): what this node converts between
    conversions: tuple[ConversionConfig, ...] = ()

    def chain_list(self) -> tuple[ChainConfig, ...]:
        """Every chain the node serves, the first its primary (the default where a command names none)."""
        return self.chains or (self.chain,)


SECTIONS: dict[str, type] = {"node": NodeConfig, "chain": ChainConfig, "transport": TransportConfig,
            "limits": RiskLimits, "watchtower": WatchtowerConfig, "routing": RoutingConfig,
            "journal": JournalConfig}


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One bad setting: its dotted key, why it is bad, and where the value came from."""

    key: str
    reason: str
    source: str

    def __str__(self) -> str:
        return f"{self.key}: {self.reason} (from {self.source})"


class InvalidConfig(ConfigError):
    """One or more settings are unknown or bad; the node must not start."""

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        lines = [str(problem) for problem in self.problems]
        separator = " " if len(lines) == 1 else "\n  "
        super().__init__("invalid configuration:" + separator + separator.join(lines))

    @property
    def key(self) -> str:
        """The dotted key of the first problem."""
        return self.problems[0].key


class _Bad(ValueError):
    """A value's reason for refusal, before the loader adds key and source."""


# ----- value kinds: parse(raw, rules) -> value, render(value) -> TOML literal, doc name ----------


def _parse_int(raw: object, rules: Mapping[str, Any]) -> int:
    if isinstance(raw, str) and re.fullmatch(r"[0-9]{1,80}", raw.strip()):
        raw = int(raw.strip())
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise _Bad(f"expected a whole number, got {raw!r}")
    low, high = rules.get("min", 0), rules.get("max", 2**63 - 1)
    if not low <= raw <= high:
        raise _Bad(f"{raw} is out of range {low}-{high}")
    return raw


_DURATION_UNITS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600)}


_DURATION = re.compile(r"([0-9]{1,12}(?:\.[0-9]{1,9})?)\s*(ms|s|m|h)?")
_DURATION_HINT = "expected a duration such as 30s, 250ms, 5m or 1h"


def _parse_duration(raw: object, rules: Mapping[str, Any]) -> float:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        seconds = Decimal(raw)  # a bare TOML number is seconds
    elif isinstance(raw, str) and (match := _DURATION.fullmatch(raw.strip())):
        seconds = Decimal(match[1]) * _DURATION_UNITS[match[2] or "s"]
    else:
        raise _Bad(f"{_DURATION_HINT}, got {raw!r}")
    if not seconds.is_finite() or not 0 < seconds <= MAX_DURATION_SECONDS:
        raise _Bad(f"duration {raw!r} must be positive and at most {MAX_DURATION_SECONDS}s")
    return float(seconds)


def _render_duration(seconds: float) -> str:
    for unit in ("h", "m", "s"):
        size = float(_DURATION_UNITS[unit])
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    millis = seconds * 1000
    return f"{int(millis)}ms" if millis == int(millis) else f"{Decimal(repr(seconds)):f}s"


def _parse_amount(raw: object, rules: Mapping[str, Any]) -> int:
    try:
        if isinstance(raw, str):
            return parse_amount(raw)
        if isinstance(raw, float):
            raise _Bad("write fractional amounts as text, e.g. \"0.5eth\", so nothing is rounded")
        return check_amount(raw)
    except AmountError as exc:
        raise _Bad(str(exc)) from None


def _parse_choice(raw: object, rules: Mapping[str, Any]) -> str:
    choices: tuple[str, ...] = rules["choices"]
    if not isinstance(raw, str) or raw.strip().lower() not in choices:
        raise _Bad(f"{raw!r} is not one of {', '.join(choices)}")
    return raw.strip().lower()


_HOSTNAME_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def _parse_hostport(raw: object, rules: Mapping[str, Any]) -> HostPort:
    if isinstance(raw, HostPort):
        raw = str(raw)  # re-parse, so a HostPort built in code is checked like text
    if not isinstance(raw, str):
        raise _Bad(f"expected host:port as text, got {raw!r}")
    text = raw.strip()
    bracketed = re.fullmatch(r"\[([^\]]+)\]:([^:]*)", text)
    host, sep, port_text = (bracketed[1], ":", bracketed[2]) if bracketed else text.rpartition(":")
    if not sep or not host:
        raise _Bad(f"{text!r} is not host:port")
    if bracketed:
        _check_ipv6(host)
    elif ":" in host:
        raise _Bad(f"{text!r}: write an IPv6 host in brackets, e.g. [::1]:9740")
    else:
        _check_hostname(host)
    return HostPort(host, _parse_int(port_text, {"min": 1, "max": 65535}))


def _check_ipv6(host: str) -> None:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise _Bad(f"{host!r} is not an IPv6 address") from None


def _check_hostname(host: str) -> None:
    if len(host) > 253 or not all(_HOSTNAME_LABEL.fullmatch(label) for label in host.split(".")):
        raise _Bad(f"{host!r} is not a valid host name or IPv4 address")


def _parse_address(raw: object, rules: Mapping[str, Any]) -> str:
    if not isinstance(raw, str) or not is_hex_address(raw.strip()):
        raise _Bad(f"{raw!r} is not a 20-byte hex address")
    text = raw.strip()
    digits = text[2:] if text[:2].lower() == "0x" else text
    mixed_case = digits != digits.lower() and digits != digits.upper()
    if mixed_case and not is_checksum_address(text):
        raise _Bad(f"{text!r} has a wrong EIP-55 checksum (mistyped?)")
    if int(digits, 16) == 0:
        raise _Bad("the zero address is not a contract")
    return str(to_checksum_address(text))


def _parse_rpc_url(raw: object, rules: Mapping[str, Any]) -> str:
    if not isinstance(raw, str):
        raise _Bad(f"expected a URL or `embedded`, got {raw!r}")
    text = raw.strip()
    if text == "embedded":
        return text
    try:
        parts = urlsplit(text)
        port_ok = parts.port is None or parts.port > 0
    except ValueError as exc:
        raise _Bad(f"{text!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.hostname or not port_ok:
        raise _Bad(f"{text!r} is not `embedded` or an http(s)/ws(s) URL with a host")
    if any(c.isspace() for c in text) or len(text) > 2048:
        raise _Bad("the URL contains whitespace or is longer than 2048 characters")
    return text


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")


def _parse_name(raw: object, rules: Mapping[str, Any]) -> str:
    if not isinstance(raw, str) or not _NAME.fullmatch(raw.strip()):
        raise _Bad(f"{raw!r} is not a name of 1-32 letters, digits, `-`, `_` or `.`")
    return raw.strip()


def _parse_address_list(raw: object, rules: Mapping[str, Any]) -> tuple[str, ...]:
    if isinstance(raw, str):  # the environment and flags give a comma-separated list
        raw = [item for item in raw.split(",") if item.strip()]
    if not isinstance(raw, list | tuple) or len(raw) > 256:
        raise _Bad(f"expected a list of at most 256 addresses, got {raw!r}"[:200])
    found = tuple(_parse_address(item, rules) for item in raw)
    if len(set(found)) != len(found):
        raise _Bad("an address is listed twice")
    return found


def _render_address_list(value: tuple[str, ...]) -> str:
    return "[" + ", ".join(_render_text(item) for item in value) + "]"


def _parse_path(raw: object, rules: Mapping[str, Any]) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 4096 or "\0" in raw:
        raise _Bad(f"expected a file path as text, got {raw!r}")
    return raw.strip()


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (127.0.0.0/8, ::1 or localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _render_text(value: Any) -> str:
    return f'"{value}"'


@dataclass(frozen=True, slots=True)
class _Kind:
    name: str
    parse: Callable[[object, Mapping[str, Any]], Any]
    render: Callable[[Any], str]


_KINDS: dict[str, _Kind] = {
    "int": _Kind("integer", _parse_int, str),
    "duration": _Kind("duration", _parse_duration, lambda v: _render_text(_render_duration(v))),
    "amount": _Kind("amount", _parse_amount, lambda v: _render_text(format_amount(v))),
    "choice": _Kind("choice", _parse_choice, _render_text),
    "hostport": _Kind("host:port", _parse_hostport, _render_text),
    "address": _Kind("address", _parse_address, _render_text),
    "rpc_url": _Kind("URL", _parse_rpc_url, _render_text),
    "path": _Kind("path", _parse_path, _render_text),
    "name": _Kind("name", _parse_name, _render_text),
    "address_list": _Kind("address list", _parse_address_list, _render_address_list),
}


def parse_value(section: str, key: str, raw: object) -> Any:
    """Parse one raw value (TOML value or text) for `section.key`; raises `InvalidConfig`."""
    fields = _fields(section)
    if key not in fields:
        raise InvalidConfig([_unknown_key(section, key, fields, "code")])
    return _parse_field(fields[key], raw)


def _parse_field(spec: dataclasses.Field[Any], raw: object) -> Any:
    if spec.metadata.get("optional") and raw == "":
        return None
    return _KINDS[spec.metadata["kind"]].parse(raw, spec.metadata)


def _validate_fields(instance: Any, section: str) -> None:
    """Check (and normalise, e.g. checksum an address) every field of a section built in code."""
    for spec in dataclasses.fields(instance):
        value = getattr(instance, spec.name)
        if value is None and spec.metadata.get("optional"):
            continue
        try:
            object.__setattr__(instance, spec.name, _parse_field(spec, value))
        except _Bad as exc:
            raise ConfigError(f"{section}.{spec.name}: {exc}") from None


def _fields(section: str) -> dict[str, dataclasses.Field[Any]]:
    return {spec.name: spec for spec in dataclasses.fields(SECTIONS[section])}


def _unknown_key(section: str, key: str, fields: Iterable[str], source: str) -> ConfigProblem:
    close = difflib.get_close_matches(key, list(fields), n=1)
    hint = f"; did you mean {section}.{close[0]}?" if close else ""
    return ConfigProblem(f"{section}.{key}", f"unknown key{hint}", source)


# ----- sources ------------------------------------------------------------------------------------

# One raw setting: (section, key, raw value, source description).
_Raw = tuple[str, str, object, str]


def _file_settings(document: Mapping[str, Any], path: Path, problems: list[ConfigProblem]) -> Iterator[_Raw]:
    for section, table in document.items():
        if section in (CHAINS_KEY, CONVERSIONS_KEY):
            continue  # lists of tables are built on their own (channeld/config_chains.py, _conversions.py)
        if section not in SECTIONS:
            close = difflib.get_close_matches(section, list(SECTIONS), n=1)
            hint = f"; did you mean [{close[0]}]?" if close else ""
            problems.append(ConfigProblem(section, f"unknown section{hint}", path.name))
        elif not isinstance(table, dict):
            problems.append(ConfigProblem(section, "must be a [section] table", path.name))
        else:
            for key, raw in table.items():
                yield section, key, raw, path.name


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        if path.stat().st_size > _MAX_CONFIG_BYTES:
            raise ConfigError(f"{path} is larger than {_MAX_CONFIG_BYTES} bytes")
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def env_var(section: str, key: str) -> str:
    """The environment variable that overrides `section.key`."""
    return f"{ENV_PREFIX}{section.upper()}_{key.upper()}"


def _env_settings(environ: Mapping[str, str]) -> Iterator[_Raw]:
    # Only names that start with a section's prefix are config; CHANNELD_PASSWORD and friends are not.
    for name, value in sorted(environ.items()):
        for section in SECTIONS:
            prefix = f"{ENV_PREFIX}{section.upper()}_"
            if name.startswith(prefix):
                yield section, name[len(prefix):].lower(), value, f"environment variable {name}"


def _flag_settings(flags: Mapping[str, object]) -> Iterator[_Raw]:
    for dotted, value in flags.items():
        section, _, key = dotted.partition(".")
        yield section, key, value, "command line"


def parse_set_flags(assignments: Iterable[str]) -> dict[str, str]:
    """Turn `--set section.key=value` texts into the `flags` mapping of `load_config`."""
    flags: dict[str, str] = {}
    for text in assignments:
        dotted, sep, value = text.partition("=")
        if not sep or "." not in dotted:
            raise InvalidConfig([ConfigProblem(text, "expected section.key=value", "command line")])
        flags[dotted.strip()] = value
    return flags


# ----- loading -----------------------------------------------------------------------------------


def load_config(datadir: Path, environ: Mapping[str, str] | None = None,
                flags: Mapping[str, object] | None = None, *, path: Path | None = None) -> Config:
    """The configuration from defaults, `channeld.toml`, the environment and flags, validated.

    `path` overrides the file's location (default: `<datadir>/channeld.toml`; a missing file means
    defaults). Raises `InvalidConfig` listing every problem, or `ConfigError` for an unreadable file.
    """
    from channeld.config_chains import chains_from_sources, check_chains
    from channeld.config_conversions import conversions_from_sources

    problems: list[ConfigProblem] = []
    file = path or Path(datadir) / CONFIG_FILE
    document = _read_toml(file)
    environ = os.environ if environ is None else environ
    flags = dict(flags or {})
    entries = flags.pop(CHAINS_KEY, ())  # `--chain-entry` texts: a list, not one dotted key
    raw_settings = [*_file_settings(document, file, problems), *_env_settings(environ),
                    *_flag_settings(flags)]
    chosen = _parse_all(raw_settings, problems)
    sections = {name: _build_section(name, chosen.get(name, {}), problems) for name in SECTIONS}
    _cross_checks(sections, problems)
    chains = chains_from_sources(document, file.name, environ, _as_list(entries), problems)
    check_chains(chains, chosen.get("chain", {}), problems)
    conversions = conversions_from_sources(document, file.name, environ, chains or (sections["chain"],),
                                    problems)
    if problems:
        raise InvalidConfig(problems)
    return Config(**sections, chains=chains, conversions=conversions)


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _parse_all(raw_settings: Iterable[_Raw], problems: list[ConfigProblem]) -> dict[str, dict[str, Any]]:
    """Parse every value, later sources winning; all values are checked, overridden ones too."""
    chosen: dict[str, dict[str, Any]] = {}
    for section, key, raw, source in raw_settings:
        if section not in SECTIONS:
            problems.append(ConfigProblem(f"{section}.{key}", "unknown section", source))
            continue
        fields = _fields(section)
        if key not in fields:
            problems.append(_unknown_key(section, key, fields, source))
            continue
        try:
            chosen.setdefault(section, {})[key] = _parse_field(fields[key], raw)
        except _Bad as exc:
            problems.append(ConfigProblem(f"{section}.{key}", str(exc), source))
    return chosen


def _build_section(name: str, values: dict[str, Any], problems: list[ConfigProblem]) -> Any:
    try:
        return SECTIONS[name](**values)
    except LocalFault as exc:  # ConfigError, AmountError, or RiskLimits' own checks
        problems.append(ConfigProblem(name, str(exc), "combined settings"))
    return SECTIONS[name]()


def _cross_checks(sections: Mapping[str, Any], problems: list[ConfigProblem]) -> None:
    for key, reason in sections["transport"].problems():
        problems.append(ConfigProblem(f"transport.{key}", reason, "combined settings"))
    node: NodeConfig = sections["node"]
    for key, reason in node.problems():
        problems.append(ConfigProblem(f"node.{key}", reason, "combined settings"))
    if _endpoints_clash(node.listen, node.api):
        problems.append(ConfigProblem("node.api", f"{node.api} clashes with node.listen ({node.listen})",
                                      "combined settings"))


def _endpoints_clash(first: HostPort, second: HostPort) -> bool:
    wildcards = {"0.0.0.0", "::"}
    same_host = first.host == second.host or first.host in wildcards or second.host in wildcards
    return first.port == second.port and same_host
