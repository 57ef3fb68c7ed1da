"""The `[[conversions]]` list: the assets this node converts between, at a rate and a fee it sets.

Each entry names the asset it receives (`from`) and the one it forwards (`to`) as `CHAIN:TOKEN`: CHAIN is
a configured chain's name or chain id (left out, with the colon, when the node serves one chain), TOKEN
an ERC-20 address or `native`. `rate` is `NUMERATOR/DENOMINATOR` units of `to` per unit of `from` (text,
since a rate between assets of different decimals outgrows a TOML integer); `fee_base` and `fee_ppm`
are charged in `to` on the amount forwarded (`channeld.protocol.ConversionTerms`). The list comes from
the file, or whole from `CHANNELD_CONVERSIONS` (a JSON array of such objects) when that is set.

A chain's contract is known only once the node reaches it, so an entry keeps the chain's place in
`Config.chain_list()` (the node's rooms come in the same order) and the token; `AssetRef.asset` makes
the protocol's `Asset` from the room's chain id and contract.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from channeld.config import CONVERSIONS_KEY, ChainConfig, ConfigProblem, _Bad, _parse_address, _parse_int
from channeld.config_chains import parse_json
from channeld.errors import LocalFault
from channeld.protocol._crosschain import NATIVE, RATE_LIMIT, Asset, ConversionTerms
from channeld.protocol._transfer import FeePolicy

MAX_CONVERSIONS = 64
CONVERSIONS_ENV = "CHANNELD_CONVERSIONS"
NATIVE_TOKEN = "native"
_KEYS = ("from", "to", "rate", "fee_base", "fee_ppm")
_RATE = re.compile(r"\s*([0-9]{1,40})\s*(?:/\s*([0-9]{1,40})\s*)?")


@dataclass(frozen=True, slots=True)
class AssetRef:
    """An asset named in the config: the chain at `chain` in `Config.chain_list()` (`chain_label` is how
    it is shown: its name, else its id, else its place) and `token` (checksummed; None: the native coin)."""

    chain: int
    chain_label: str
    token: str | None = None

    @property
    def token_bytes(self) -> bytes:
        return NATIVE if self.token is None else bytes.fromhex(self.token[2:])

    def asset(self, chain_id: int, contract: bytes) -> Asset:
        """The protocol's `Asset`, once the chain's room knows its id and contract."""
        return Asset(chain_id, contract, self.token_bytes)

    def __str__(self) -> str:
        return f"{self.chain_label}:{self.token or NATIVE_TOKEN}"


@dataclass(frozen=True, slots=True)
class ConversionConfig:
    """One `[[conversions]]` entry: receive `source`, forward `target` at `numerator/denominator` target
    units per source unit, charging `fee_base + fee_ppm` per million (in target units) on the forwarded."""

    source: AssetRef
    target: AssetRef
    numerator: int
    denominator: int
    fee_base: int = 0
    fee_ppm: int = 0

    def __post_init__(self) -> None:
        self.terms()  # the protocol's own bounds, so a bad entry cannot be built in code either
        if (self.source.chain, self.source.token) == (self.target.chain, self.target.token):
            raise LocalFault(f"converting {self.source} into itself")

    def terms(self) -> ConversionTerms:
        return ConversionTerms(self.numerator, self.denominator, FeePolicy(self.fee_base, self.fee_ppm))


def conversions_from_sources(document: Mapping[str, Any], file: str, environ: Mapping[str, str],
                             chains: Sequence[ChainConfig], problems: list[ConfigProblem]
                             ) -> tuple[ConversionConfig, ...]:
    """The list from `CHANNELD_CONVERSIONS` (a JSON array of objects), else from the file; both checked."""
    chosen = build_conversions(document.get(CONVERSIONS_KEY), file, chains, problems)
    if CONVERSIONS_ENV in environ:
        source = f"environment variable {CONVERSIONS_ENV}"
        raw = parse_json(environ[CONVERSIONS_ENV], CONVERSIONS_KEY, source, problems)
        chosen = build_conversions(raw, source, chains, problems)
    return chosen


def build_conversions(raw: object, source: str, chains: Sequence[ChainConfig],
                      problems: list[ConfigProblem]) -> tuple[ConversionConfig, ...]:
    """The `[[conversions]]` entries of a config file (none if absent); each bad key is a problem."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(table, dict) for table in raw):
        problems.append(ConfigProblem(CONVERSIONS_KEY, "must be a list of [[conversions]] tables", source))
        return ()
    if len(raw) > MAX_CONVERSIONS:
        problems.append(ConfigProblem(CONVERSIONS_KEY, f"list at most {MAX_CONVERSIONS} conversions", source))
        return ()
    built = [(index, entry) for index, table in enumerate(raw)
             if (entry := _build_entry(f"{CONVERSIONS_KEY}[{index}]", table, chains, source, problems))]
    for reason in _duplicates([entry for _, entry in built]):
        problems.append(ConfigProblem(CONVERSIONS_KEY, reason, source))
    return tuple(entry for _, entry in built)


def _build_entry(where: str, table: Mapping[str, Any], chains: Sequence[ChainConfig], source: str,
                 problems: list[ConfigProblem]) -> ConversionConfig | None:
    before = len(problems)
    for key in table.keys() - set(_KEYS):
        close = difflib.get_close_matches(key, _KEYS, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        problems.append(ConfigProblem(f"{where}.{key}", f"unknown key{hint}", source))
    values: dict[str, Any] = {}
    for key, parse in _PARSERS.items():
        try:
            values[key] = parse(table, key, chains)
        except _Bad as exc:
            problems.append(ConfigProblem(f"{where}.{key}", str(exc), source))
    if len(problems) > before:
        return None
    try:
        numerator, denominator = values["rate"]
        return ConversionConfig(values["from"], values["to"], numerator, denominator, values["fee_base"],
                                values["fee_ppm"])
    except LocalFault as exc:
        problems.append(ConfigProblem(where, str(exc), source))
        return None


def _required(table: Mapping[str, Any], key: str) -> object:
    if key not in table:
        raise _Bad("is required")
    return table[key]


def _asset(table: Mapping[str, Any], key: str, chains: Sequence[ChainConfig]) -> AssetRef:
    raw = _required(table, key)
    if not isinstance(raw, str) or len(raw) > 200:
        raise _Bad(f"expected CHAIN:TOKEN as text (TOKEN an address or `{NATIVE_TOKEN}`), got {raw!r}"[:200])
    chain_text, colon, token_text = raw.strip().rpartition(":")
    index = _chain_index(chain_text.strip(), bool(colon), chains)
    token = None if token_text.strip() == NATIVE_TOKEN else _parse_address(token_text, {})
    allowed = chains[index].tokens
    label = _label(chains, index)
    if token is not None and allowed is not None and token not in allowed:
        raise _Bad(f"token {token} is not in the `tokens` allow-list of chain {label}")
    return AssetRef(index, label, token)


def _chain_index(text: str, named: bool, chains: Sequence[ChainConfig]) -> int:
    if not named:
        if len(chains) == 1:
            return 0
        raise _Bad(f"this node serves {len(chains)} chains: write CHAIN:TOKEN, CHAIN a name or chain id")
    for index, chain in enumerate(chains):
        if text in (chain.name, None if chain.chain_id is None else str(chain.chain_id)):
            return index
    known = ", ".join(_label(chains, index) for index in range(len(chains)))
    raise _Bad(f"no configured chain {text[:60]!r} (chains by name or chain_id: {known})")


def _label(chains: Sequence[ChainConfig], index: int) -> str:
    chain = chains[index]
    return chain.name or (str(chain.chain_id) if chain.chain_id is not None else f"chains[{index}]")


def _rate(table: Mapping[str, Any], key: str, chains: Sequence[ChainConfig]) -> tuple[int, int]:
    raw = _required(table, key)
    match = _RATE.fullmatch(raw) if isinstance(raw, str) else None
    if match is None:
        raise _Bad(f"expected NUMERATOR/DENOMINATOR as text, e.g. \"3/2\", got {raw!r}"[:200])
    numerator, denominator = int(match[1]), int(match[2] or 1)
    for value in (numerator, denominator):
        if not 0 < value < RATE_LIMIT:
            raise _Bad(f"numerator and denominator must be in [1, 2**128), got {numerator}/{denominator}")
    return numerator, denominator


def _fee_base(table: Mapping[str, Any], key: str, chains: Sequence[ChainConfig]) -> int:
    return _parse_int(table.get(key, 0), {"min": 0, "max": 2**63})


def _fee_ppm(table: Mapping[str, Any], key: str, chains: Sequence[ChainConfig]) -> int:
    return _parse_int(table.get(key, 0), {"min": 0, "max": 1_000_000})


_PARSERS = {"from": _asset, "to": _asset, "rate": _rate, "fee_base": _fee_base, "fee_ppm": _fee_ppm}


def _duplicates(entries: Sequence[ConversionConfig]) -> Iterator[str]:
    seen: set[tuple[AssetRef, AssetRef]] = set()
    for entry in entries:
        pair = (entry.source, entry.target)
        if pair in seen:
            yield f"{entry.source} into {entry.target} is listed twice; one rate per pair"
        seen.add(pair)


def reference_lines() -> list[str]:
    """The `[[conversions]]` part of `docs/config-reference.md`."""
    return [
        "", "## [[conversions]]", "",
        "The assets this node converts between for payments that cross chains (or assets). Each entry:",
        "`from` and `to` as `CHAIN:TOKEN` (CHAIN a configured chain's `name` or `chain_id`, left out with",
        "its colon on a one-chain node; TOKEN an ERC-20 address, which must be in that chain's `tokens`",
        "allow-list if it has one, or `native`); `rate` as text `NUMERATOR/DENOMINATOR`, units of `to`",
        "(smallest units) per unit of `from`, each in [1, 2**128); `fee_base` (0-2**63) and `fee_ppm`",
        "(0-1000000), charged in `to` on the amount forwarded (default 0). `from` and `to` differ; a pair",
        f"is listed once; at most {MAX_CONVERSIONS} entries. `{CONVERSIONS_ENV}` (a JSON array of objects",
        "with these keys) replaces the file's list whole; both are checked.",
        "", "```toml", "[[conversions]]", 'from = "mainnet:native"',
        'to = "base:0x833589fCD6eDb6E08f4c7C32D01f22A4EDd02913"',
        'rate = "3000/1000000000000"  # 3000 USDC (6 decimals) per ether (18 decimals)',
        "fee_base = 10000", "fee_ppm = 1000", "```",
    ]
