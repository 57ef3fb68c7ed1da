"""The `[[chains]]` list: several chains served by one node, each entry with the keys of `[chain]`.

A node that serves one chain keeps the `[chain]` section (it stays the one entry of `chain_list()`); a
node that serves several lists them as `[[chains]]` tables in `channeld.toml`, as a JSON array of objects
in `CHANNELD_CHAINS`, or as repeated `--chain-entry` flags (`key=value` pairs, or a JSON object). A list
replaces the one from a lower source whole (entries are not merged by position: which entry a key
belongs to would be guesswork), and every source's list is checked, even one overridden. `chain.*`
settings from any source next to a list are refused rather than silently applied to one entry.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from channeld.config import (
    CHAINS_KEY,
    ChainConfig,
    ConfigProblem,
    _Bad,
    _fields,
    _parse_field,
    _unknown_key,
)
from channeld.errors import LocalFault

MAX_CHAINS = 16
CHAINS_ENV = "CHANNELD_CHAINS"


def chains_from_sources(document: Mapping[str, Any], file: str, environ: Mapping[str, str],
                        entries: Sequence[object], problems: list[ConfigProblem]) -> tuple[ChainConfig, ...]:
    """The list from the highest source that gives one: flags, then `CHANNELD_CHAINS`, then the file."""
    chosen = build_chains(document.get(CHAINS_KEY), file, problems)
    if CHAINS_ENV in environ:
        source = f"environment variable {CHAINS_ENV}"
        chosen = build_chains(parse_json(environ[CHAINS_ENV], CHAINS_KEY, source, problems), source, problems)
    if entries:
        source = "command line (--chain-entry)"
        tables = [_entry_table(text, f"{CHAINS_KEY}[{index}]", source, problems)
                  for index, text in enumerate(entries)]
        chosen = build_chains(tables, source, problems)
    return chosen


def parse_json(text: str, key: str, source: str, problems: list[ConfigProblem]) -> object:
    try:
        return json.loads(text)
    except ValueError as exc:  # JSONDecodeError, or a number too long to convert
        problems.append(ConfigProblem(key, f"is not valid JSON ({exc})"[:200], source))
        return None


def _entry_table(raw: object, where: str, source: str, problems: list[ConfigProblem]) -> dict[str, Any]:
    """One `--chain-entry`: a JSON object, or `key=value` pairs apart by spaces (a list's items by commas)."""
    if isinstance(raw, dict):
        return raw
    text = raw.strip() if isinstance(raw, str) else ""
    if text.startswith("{"):
        table = parse_json(text, where, source, problems)
        return table if isinstance(table, dict) else {}
    pairs = [item.partition("=") for item in text.split()]
    bad = [key for key, sep, _ in pairs if not sep or not key]
    if bad or not pairs:
        problems.append(ConfigProblem(where, f"expected key=value pairs or a JSON object, got {raw!r}"[:200],
                                      source))
        return {}
    return {key: value for key, _, value in pairs}


def build_chains(raw: object, source: str, problems: list[ConfigProblem]) -> tuple[ChainConfig, ...]:
    """The `[[chains]]` entries of a config file (none if absent); each bad key is a problem."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(table, dict) for table in raw):
        problems.append(ConfigProblem(CHAINS_KEY, "must be a list of [[chains]] tables", source))
        return ()
    if not 1 <= len(raw) <= MAX_CHAINS:
        problems.append(ConfigProblem(CHAINS_KEY, f"list 1 to {MAX_CHAINS} chains", source))
        return ()
    return tuple(chain for index, table in enumerate(raw)
                 if (chain := _build_entry(index, table, source, problems)) is not None)


def _build_entry(index: int, table: Mapping[str, Any], source: str,
                 problems: list[ConfigProblem]) -> ChainConfig | None:
    where = f"{CHAINS_KEY}[{index}]"
    fields = _fields("chain")
    values: dict[str, Any] = {}
    before = len(problems)
    for key, raw in table.items():
        if key not in fields:
            problem = _unknown_key("chain", key, fields, source)
            problems.append(ConfigProblem(f"{where}.{key}", problem.reason.replace("chain.", ""), source))
            continue
        try:
            values[key] = _parse_field(fields[key], raw)
        except _Bad as exc:
            problems.append(ConfigProblem(f"{where}.{key}", str(exc), source))
    if len(problems) > before:
        return None
    try:
        return ChainConfig(**values)
    except LocalFault as exc:
        problems.append(ConfigProblem(where, str(exc), source))
        return None


def check_chains(chains: tuple[ChainConfig, ...], single: Mapping[str, Any],
                 problems: list[ConfigProblem]) -> None:
    """Rules across the list: no `[chain]` beside it, contracts named, names and chain ids unique."""
    for reason in _list_problems(chains, single):
        problems.append(ConfigProblem(CHAINS_KEY, reason, "combined settings"))


def _list_problems(chains: tuple[ChainConfig, ...], single: Mapping[str, Any]) -> Iterator[str]:
    if not chains:
        return
    if single:
        keys = ", ".join(f"chain.{key}" for key in single)
        yield f"{keys} given beside a [[chains]] list: put every chain's settings in its [[chains]] entry"
    for index, chain in enumerate(chains):
        if chain.rpc_url != "embedded" and chain.contract is None:
            yield f"entry {index} ({chain.rpc_url}): `contract` is required with an RPC chain"
    if sum(chain.rpc_url == "embedded" for chain in chains) > 1:
        yield "at most one entry may use the embedded chain"
    yield from _duplicates("name", [chain.name for chain in chains if chain.name is not None])
    yield from _duplicates("chain_id", [chain.chain_id for chain in chains if chain.chain_id is not None])
    yield from _duplicates("rpc_url", [chain.rpc_url for chain in chains if chain.rpc_url != "embedded"])
    if len(chains) > 1 and any(chain.chain_id is None for chain in chains):
        yield "with several chains every entry needs its `chain_id` (what `--chain` and peers name it by)"


def _duplicates(key: str, values: list[Any]) -> Iterator[str]:
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            yield f"two entries have {key} {value!r}; each chain is listed once"
        seen.add(value)


def reference_lines() -> list[str]:
    """The `[[chains]]` part of `docs/config-reference.md`."""
    keys = ", ".join(f"`{spec.name}`" for spec in dataclasses.fields(ChainConfig))
    return [
        "", "## [[chains]]", "",
        "A node that serves several chains lists each as a `[[chains]]` table with the keys of `[chain]`",
        f"({keys}). The first entry is the primary chain (the default where a command names none). Rules:",
        "every RPC entry names its `contract`; with several entries each has a `chain_id`; names, chain ids",
        "and RPC URLs are unique; at most one entry is `embedded`; `[chain]` settings (from any source) are",
        "refused beside the list.", "",
        f"The list can also come from `{CHAINS_ENV}` (a JSON array of objects with these keys) or from",
        "repeated `channeld node --chain-entry 'name=base rpc_url=https://… contract=0x… chain_id=8453'`",
        "flags (`key=value` pairs apart by spaces, list items apart by commas; or a JSON object). The list",
        "of the highest source replaces the others whole; every source's list is checked.",
        "", "```toml", "[[chains]]", 'name = "mainnet"', 'rpc_url = "https://rpc.example/eth"',
        'contract = "0x…"', "chain_id = 1", "confirmations = 12",
        'tokens = ["0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"]', "", "[[chains]]", 'name = "base"',
        'rpc_url = "https://rpc.example/base"', 'contract = "0x…"', "chain_id = 8453", "```",
    ]
