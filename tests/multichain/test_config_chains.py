"""The `[[chains]]` list: parsed per entry, checked across entries, the old `[chain]` still one entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from channeld.cli import build_parser
from channeld.config import CONFIG_FILE, ChainConfig, InvalidConfig, load_config
from channeld.config_conversions import AssetRef, ConversionConfig
from channeld.config_reference import render_reference
from channeld.errors import ConfigError, LocalFault
from channeld.node._cli import node_flags
from channeld.protocol import DEFAULT_REVEAL_TIMEOUT, FeePolicy
from channeld.protocol._crosschain import (
    MAX_BLOCK_TIME,
    MAX_CLOCK_SKEW,
    MAX_CONFIRMATIONS,
    MAX_REGISTER_TIME,
    Asset,
    ChainTiming,
    ConversionTerms,
    CrossChainError,
)

HUB_A = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
HUB_B = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
TOKEN = "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB"


def load(tmp_path: Path, text: str, flags: dict[str, object] | None = None) -> object:
    (tmp_path / CONFIG_FILE).write_text(text)
    return load_config(tmp_path, {}, flags or {})


def two_chains(extra_a: str = "", extra_b: str = "") -> str:
    return (f'[[chains]]\nname = "alpha"\nrpc_url = "http://127.0.0.1:1"\ncontract = "{HUB_A}"\n'
            f"chain_id = 100\n{extra_a}\n"
            f'[[chains]]\nname = "beta"\nrpc_url = "http://127.0.0.1:2"\ncontract = "{HUB_B}"\n'
            f"chain_id = 200\n{extra_b}\n")


def reasons(error: pytest.ExceptionInfo[InvalidConfig]) -> str:
    return "\n".join(f"{p.key}: {p.reason}" for p in error.value.problems)


def test_single_chain_section_is_the_one_entry(tmp_path: Path) -> None:
    config = load(tmp_path, f'[chain]\nrpc_url = "http://127.0.0.1:1"\ncontract = "{HUB_A}"\n')
    assert config.chains == ()  # type: ignore[attr-defined]
    assert config.chain_list() == (config.chain,)  # type: ignore[attr-defined]
    assert config.chain.contract == HUB_A  # type: ignore[attr-defined]


def test_two_chains_parse_in_order(tmp_path: Path) -> None:
    config = load(tmp_path, two_chains(extra_a=f'tokens = ["{TOKEN.lower()}"]\nconfirmations = 3',
                                       extra_b="tokens = []"))
    chains = config.chain_list()  # type: ignore[attr-defined]
    assert [c.name for c in chains] == ["alpha", "beta"]
    assert [c.chain_id for c in chains] == [100, 200]
    assert chains[0].tokens == (TOKEN,) and chains[0].confirmations == 3
    assert chains[1].tokens == () and chains[1].confirmations == ChainConfig().confirmations


@pytest.mark.parametrize(("extra_b", "expected"), [
    ("chain_id = 100", "chain_id 100"),
    ('name = "alpha"', "name 'alpha'"),
])
def test_duplicates_are_refused(tmp_path: Path, extra_b: str, expected: str) -> None:
    text = two_chains().replace('name = "beta"\n', "").replace("chain_id = 200\n", "") + extra_b + "\n"
    with pytest.raises(InvalidConfig) as error:
        load(tmp_path, text)
    assert expected in reasons(error)
    assert error.value.key == "chains"


def test_missing_contract_and_chain_id_are_named(tmp_path: Path) -> None:
    text = two_chains().replace(f'contract = "{HUB_B}"\n', "").replace("chain_id = 100\n", "")
    with pytest.raises(InvalidConfig) as error:
        load(tmp_path, text)
    text = reasons(error)
    assert "entry 1 (http://127.0.0.1:2): `contract` is required" in text
    assert "every entry needs its `chain_id`" in text


def test_bad_values_name_the_entry_and_key(tmp_path: Path) -> None:
    text = two_chains(extra_b='tokens = ["0x12"]\nconfirmation = 2').replace('"beta"', '"bad name!"')
    with pytest.raises(InvalidConfig) as error:
        load(tmp_path, text)
    keys = sorted(p.key for p in error.value.problems)
    assert keys == ["chains[1].confirmation", "chains[1].name", "chains[1].tokens"]
    assert "did you mean confirmations" in reasons(error)


def test_chain_settings_beside_the_list_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig) as error:
        load(tmp_path, two_chains(), {"chain.rpc_url": "http://127.0.0.1:3"})
    assert "chain.rpc_url given beside a [[chains]] list" in reasons(error)


@pytest.mark.parametrize("text", ['chains = 5\n', 'chains = [1, 2]\n', "chains = []\n"])
def test_chains_must_be_a_list_of_tables(tmp_path: Path, text: str) -> None:
    with pytest.raises(InvalidConfig) as error:
        load(tmp_path, text)
    assert error.value.key == "chains"


def test_two_embedded_chains_are_refused(tmp_path: Path) -> None:
    text = '[[chains]]\nchain_id = 1\n[[chains]]\nchain_id = 2\n'
    with pytest.raises(InvalidConfig) as error:
        load(tmp_path, text)
    assert "at most one entry may use the embedded chain" in reasons(error)


def test_token_list_from_the_environment(tmp_path: Path) -> None:
    config = load_config(tmp_path, {"CHANNELD_CHAIN_TOKENS": f"{TOKEN.lower()}, {HUB_A}"}, {})
    assert config.chain.tokens == (TOKEN, HUB_A)


def test_reference_documents_the_list() -> None:
    text = render_reference()
    assert "## [[chains]]" in text
    assert "| `tokens` | address list |" in text


# --- per-chain timing ----------------------------------------------------------------------------------


def test_timing_keys_make_each_chains_timing(tmp_path: Path) -> None:
    config = load(tmp_path, two_chains(extra_a="block_time = 2\nregister_time = 10\nclock_skew = 1\n"
                                               "confirmations = 4"))
    alpha, beta = config.chain_list()  # type: ignore[attr-defined]
    assert alpha.timing(100) == ChainTiming(100, 2, 4, 10, 1)
    assert alpha.timing(100).min_reveal_timeout == 2 + 10 + 2 * 4 * 2
    # the defaults suit a 12 s L1 and leave the node's reveal timeout room to spare
    assert beta.timing(200) == ChainTiming(200, 12, 1, 120, 15)
    assert beta.timing(200).min_reveal_timeout < DEFAULT_REVEAL_TIMEOUT


def test_timing_keys_from_the_environment_and_flags(tmp_path: Path) -> None:
    config = load_config(tmp_path, {"CHANNELD_CHAIN_BLOCK_TIME": "3"}, {"chain.register_time": "7"})
    assert config.chain.timing(5) == ChainTiming(5, 3, 1, 7, 15)


@pytest.mark.parametrize(("key", "value", "bound"), [
    ("block_time", 0, "1-600"), ("block_time", MAX_BLOCK_TIME + 1, "1-600"),
    ("register_time", MAX_REGISTER_TIME + 1, "0-3600"), ("register_time", -1, "0-3600"),
    ("clock_skew", MAX_CLOCK_SKEW + 1, "0-900"), ("confirmations", MAX_CONFIRMATIONS + 1, "0-100"),
])
def test_timing_bounds_are_those_of_chain_timing(tmp_path: Path, key: str, value: int, bound: str) -> None:
    with pytest.raises(InvalidConfig) as error:
        load(tmp_path, two_chains(extra_b=f"{key} = {value}"))
    assert error.value.key == f"chains[1].{key}"
    assert bound in reasons(error)


@pytest.mark.parametrize("timing", [
    ChainTiming(100, MAX_BLOCK_TIME, 0, 0, MAX_CLOCK_SKEW),
    ChainTiming(100, 1, MAX_CONFIRMATIONS, DEFAULT_REVEAL_TIMEOUT - 201, 0),  # the reveal timeout, just
])
def test_largest_timing_values_are_accepted(tmp_path: Path, timing: ChainTiming) -> None:
    extra = (f"block_time = {timing.block_time}\nregister_time = {timing.register_time}\n"
             f"clock_skew = {timing.clock_skew}\nconfirmations = {timing.confirmations}")
    config = load(tmp_path, two_chains(extra_a=extra))
    assert config.chain_list()[0].timing(100) == timing  # type: ignore[attr-defined]


# --- [[conversions]] -----------------------------------------------------------------------------------


def conversion(source: str = "alpha:native", target: str = f"beta:{TOKEN}", rate: str = '"3/2"',
               extra: str = "") -> str:
    return f'[[conversions]]\nfrom = "{source}"\nto = "{target}"\nrate = {rate}\n{extra}\n'


def with_token_b() -> str:
    return two_chains(extra_b=f'tokens = ["{TOKEN}"]')


def test_conversions_parse_into_terms(tmp_path: Path) -> None:
    text = with_token_b() + conversion(extra="fee_base = 7\nfee_ppm = 250") + conversion(
        f"200:{TOKEN.lower()}", "100:native", '"1 / 3"')
    config = load(tmp_path, text)
    first, second = config.conversions  # type: ignore[attr-defined]
    assert first.source == AssetRef(0, "alpha", None) and first.target == AssetRef(1, "beta", TOKEN)
    assert first.terms() == ConversionTerms(3, 2, FeePolicy(7, 250))
    assert (second.source.chain, second.source.token, second.target.chain) == (1, TOKEN, 0)
    assert second.terms() == ConversionTerms(1, 3, FeePolicy())
    contract = bytes.fromhex(HUB_B[2:])
    assert first.target.asset(200, contract) == Asset(200, contract, bytes.fromhex(TOKEN[2:]))
    assert str(first.source) == "alpha:native"


def test_a_one_chain_node_may_leave_the_chain_out(tmp_path: Path) -> None:
    text = f'[chain]\nrpc_url = "http://127.0.0.1:1"\ncontract = "{HUB_A}"\n' + conversion("native", TOKEN)
    (entry,) = load(tmp_path, text).conversions  # type: ignore[attr-defined]
    assert entry.source == AssetRef(0, "chains[0]", None) and entry.target.token == TOKEN


def test_a_huge_rate_is_text_and_exact(tmp_path: Path) -> None:
    big = 2**128 - 1
    (entry,) = load(tmp_path, with_token_b() + conversion(rate=f'"{big}/1"')).conversions  # type: ignore[attr-defined]
    assert entry.numerator == big


@pytest.mark.parametrize(("entry", "key", "reason"), [
    (conversion(source="gamma:native"), "conversions[0].from", "no configured chain 'gamma'"),
    (conversion(source="native"), "conversions[0].from", "serves 2 chains: write CHAIN:TOKEN"),
    (conversion(target=f"alpha:{TOKEN}"), "conversions[0].to", "not in the `tokens` allow-list of chain"),
    (conversion(target="beta:0x12"), "conversions[0].to", "not a 20-byte hex address"),
    (conversion(target="beta:native", source="beta:native"), "conversions[0]", "into itself"),
    (conversion(rate='"0/1"'), "conversions[0].rate", "in [1, 2**128)"),
    (conversion(rate=f'"1/{2**128}"'), "conversions[0].rate", "in [1, 2**128)"),
    (conversion(rate="1.5"), "conversions[0].rate", "NUMERATOR/DENOMINATOR"),
    (conversion(rate='"-1/2"'), "conversions[0].rate", "NUMERATOR/DENOMINATOR"),
    (conversion(extra="fee_ppm = 1000001"), "conversions[0].fee_ppm", "out of range"),
    (conversion(extra="fee_base = -1"), "conversions[0].fee_base", "out of range"),
    (conversion(extra="fees = 1"), "conversions[0].fees", "did you mean fee_"),
    ('[[conversions]]\nfrom = "alpha:native"\n', "conversions[0].to", "is required"),
    (conversion() + conversion(rate='"1/1"'), "conversions", "listed twice"),
])
def test_bad_conversions_name_the_key(tmp_path: Path, entry: str, key: str, reason: str) -> None:
    with pytest.raises(InvalidConfig) as error:
        load(tmp_path, two_chains(extra_a="tokens = []", extra_b=f'tokens = ["{TOKEN}"]') + entry)
    assert key in [p.key for p in error.value.problems]
    assert reason in reasons(error)


@pytest.mark.parametrize("text", ["conversions = 5\n", "conversions = [1]\n"])
def test_conversions_must_be_a_list_of_tables(tmp_path: Path, text: str) -> None:
    with pytest.raises(InvalidConfig) as error:
        load(tmp_path, text)
    assert error.value.key == "conversions"


def test_a_conversion_built_in_code_is_checked() -> None:
    ref = AssetRef(0, "alpha")
    with pytest.raises(CrossChainError):
        ConversionConfig(ref, AssetRef(1, "beta"), 0, 1)
    with pytest.raises(LocalFault, match="into itself"):
        ConversionConfig(ref, ref, 1, 1)


def test_reference_documents_conversions() -> None:
    text = render_reference()
    assert "## [[conversions]]" in text and "`NUMERATOR/DENOMINATOR`" in text
    assert "| `block_time` | integer (1-600) | `12` |" in text


def test_a_chain_too_slow_for_the_reveal_timeout_is_refused(tmp_path: Path) -> None:
    slow = "block_time = 12\nregister_time = 120\nconfirmations = 20"  # 12 + 120 + 2 x 20 x 12 = 612 s
    with pytest.raises(InvalidConfig) as error:
        load(tmp_path, two_chains(extra_b=slow))
    assert [p.key for p in error.value.problems] == ["chains[1]"]
    assert "reveal timeout of at least 612 s" in reasons(error)
    assert f"use {DEFAULT_REVEAL_TIMEOUT} s" in reasons(error)
    with pytest.raises(InvalidConfig) as error:
        load_config(tmp_path / "none", {"CHANNELD_CHAIN_CONFIRMATIONS": "20"}, {})
    assert error.value.key == "chain"
    with pytest.raises(ConfigError, match="at least 612 s"):
        ChainConfig(confirmations=20)  # built in code (an in-process node's): refused the same
    just_fits = "block_time = 12\nregister_time = 108\nconfirmations = 20"  # exactly 600 s
    assert load(tmp_path, two_chains(extra_b=just_fits)).chain_list()[1].confirmations == 20  # type: ignore[attr-defined]


# --- the list from the environment and flags ------------------------------------------------------------

ENTRY_A = {"name": "alpha", "rpc_url": "http://127.0.0.1:1", "contract": HUB_A, "chain_id": 100}
ENTRY_B = {"name": "beta", "rpc_url": "http://127.0.0.1:2", "contract": HUB_B, "chain_id": 200}


def compact(entry: dict[str, object]) -> str:
    return " ".join(f"{key}={value}" for key, value in entry.items())


def test_chains_from_the_environment_as_json(tmp_path: Path) -> None:
    env = {"CHANNELD_CHAINS": json.dumps([ENTRY_A, {**ENTRY_B, "tokens": [TOKEN.lower()], "block_time": 2}])}
    config = load_config(tmp_path, env, {})
    (tmp_path / "file").mkdir()
    from_file = load(tmp_path / "file", two_chains(extra_b=f'tokens = ["{TOKEN}"]\nblock_time = 2'))
    assert config.chain_list() == from_file.chain_list()  # type: ignore[attr-defined]


def test_chain_entries_from_flags(tmp_path: Path) -> None:
    args = build_parser().parse_args(["node", "--chain-entry", compact(ENTRY_A) + " confirmations=3",
                                      "--chain-entry", json.dumps({**ENTRY_B, "tokens": [TOKEN]})])
    config = load_config(tmp_path, {}, node_flags(args))
    alpha, beta = config.chain_list()
    assert (alpha.name, alpha.contract, alpha.chain_id, alpha.confirmations) == ("alpha", HUB_A, 100, 3)
    assert (beta.name, beta.tokens) == ("beta", (TOKEN,))
    # a list item in the compact form is comma-separated, as in CHANNELD_CHAIN_TOKENS
    entry = compact(ENTRY_B) + f" tokens={TOKEN},{HUB_A}"
    assert load_config(tmp_path, {}, {"chains": [entry]}).chain_list()[0].tokens == (TOKEN, HUB_A)


def test_a_higher_source_replaces_the_list_whole(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text(two_chains())
    env = {"CHANNELD_CHAINS": json.dumps([ENTRY_B])}
    assert [c.name for c in load_config(tmp_path, env, {}).chain_list()] == ["beta"]
    flags: dict[str, object] = {"chains": [compact(ENTRY_A)]}
    assert [c.name for c in load_config(tmp_path, env, flags).chain_list()] == ["alpha"]


@pytest.mark.parametrize(("env", "flags", "key", "reason", "source"), [
    ("[{", [], "chains", "not valid JSON", "CHANNELD_CHAINS"),
    ('{"name": "a"}', [], "chains", "list of [[chains]] tables", "CHANNELD_CHAINS"),
    (json.dumps([{**ENTRY_A, "confirmations": -1}]), [], "chains[0].confirmations", "out of range",
     "CHANNELD_CHAINS"),
    (None, ["name=alpha rpc_url"], "chains[0]", "key=value pairs", "--chain-entry"),
    (None, ["{oops"], "chains[0]", "not valid JSON", "--chain-entry"),
    (None, [compact(ENTRY_A), compact({**ENTRY_B, "chain_id": 100})], "chains", "chain_id 100",
     "combined settings"),
    (None, [compact({**ENTRY_A, "chian_id": 5})], "chains[0].chian_id", "did you mean chain_id",
     "--chain-entry"),
    (None, [compact({**ENTRY_A, "confirmations": 40})], "chains[0]", "reveal timeout", "--chain-entry"),
])
def test_bad_lists_from_the_environment_and_flags_are_named(
        tmp_path: Path, env: str | None, flags: list[str], key: str, reason: str, source: str) -> None:
    environ = {} if env is None else {"CHANNELD_CHAINS": env}
    with pytest.raises(InvalidConfig) as error:
        load_config(tmp_path, environ, {"chains": flags} if flags else {})
    problem = next(p for p in error.value.problems if p.key == key)
    assert reason in problem.reason and source in problem.source


def test_an_overridden_list_is_still_checked(tmp_path: Path) -> None:
    env = {"CHANNELD_CHAINS": json.dumps([{**ENTRY_A, "name": "bad name!"}])}
    with pytest.raises(InvalidConfig) as error:
        load_config(tmp_path, env, {"chains": [compact(ENTRY_B)]})
    assert error.value.key == "chains[0].name"


def test_chain_settings_beside_a_flag_list_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig) as error:
        load_config(tmp_path, {"CHANNELD_CHAIN_CONFIRMATIONS": "2"}, {"chains": [compact(ENTRY_A)]})
    assert "chain.confirmations given beside a [[chains]] list" in reasons(error)


def test_conversions_from_the_environment_replace_the_files(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text(with_token_b() + conversion())
    entry = {"from": f"beta:{TOKEN}", "to": "alpha:native", "rate": "1/2", "fee_ppm": 10}
    config = load_config(tmp_path, {"CHANNELD_CONVERSIONS": json.dumps([entry])}, {})
    (only,) = config.conversions
    assert (only.source, only.target) == (AssetRef(1, "beta", TOKEN), AssetRef(0, "alpha"))
    assert only.terms() == ConversionTerms(1, 2, FeePolicy(0, 10))
    with pytest.raises(InvalidConfig) as error:
        load_config(tmp_path, {"CHANNELD_CONVERSIONS": json.dumps([{**entry, "rate": "0/1"}])}, {})
    assert error.value.key == "conversions[0].rate"
    assert "CHANNELD_CONVERSIONS" in error.value.problems[0].source
