"""The `[[chains]]` list: parsed per entry, checked across entries, the old `[chain]` still one entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from channeld.config import CONFIG_FILE, ChainConfig, InvalidConfig, load_config, render_reference

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
