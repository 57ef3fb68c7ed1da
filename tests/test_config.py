"""Configuration: file, environment and flags merged in order, every bad or unknown key named."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from channeld.config import (
    CONFIG_FILE,
    SECTIONS,
    ChainConfig,
    Config,
    HostPort,
    InvalidConfig,
    NodeConfig,
    TransportConfig,
    env_var,
    load_config,
    parse_set_flags,
    parse_value,
)
from channeld.config_reference import render_default_file, render_reference, write_default_file
from channeld.errors import ConfigError
from channeld.limits import RiskLimits

REPO = Path(__file__).resolve().parent.parent
CHECKSUMMED = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


def write_toml(datadir: Path, text: str) -> Path:
    path = datadir / CONFIG_FILE
    path.write_text(text)
    return path


def problem_keys(error: InvalidConfig) -> list[str]:
    return [problem.key for problem in error.problems]


def test_no_file_means_defaults(tmp_path: Path) -> None:
    assert load_config(tmp_path, {}, {}) == Config()


def test_file_values_are_parsed(tmp_path: Path) -> None:
    write_toml(tmp_path, f"""
[node]
listen = "[::1]:9000"
api = "localhost:9001"
log_format = "JSON"
[chain]
rpc_url = "http://127.0.0.1:8545"
contract = "{CHECKSUMMED.lower()}"
confirmations = 12
poll_interval = "250ms"
chain_id = 31337
[transport]
handshake_timeout = 5
ping_interval = 1.5
peer_timeout = "1h"
[limits]
max_payment = "0.5eth"
max_total_per_hour = 1000
max_pending_locks = 10
[watchtower]
safety_margin = "2m"
""")
    config = load_config(tmp_path, {})
    assert config.node.listen == HostPort("::1", 9000)
    assert str(config.node.listen) == "[::1]:9000"
    assert config.node.api == HostPort("localhost", 9001)
    assert config.node.log_format == "json"
    assert config.chain.contract == CHECKSUMMED
    chain = config.chain
    assert (chain.confirmations, chain.poll_interval, chain.chain_id) == (12, 0.25, 31337)
    assert (config.transport.handshake_timeout, config.transport.ping_interval) == (5.0, 1.5)
    assert config.transport.peer_timeout == 3600.0
    assert config.limits.max_payment == 5 * 10**17
    assert config.limits.max_total_per_hour == 1000
    assert config.watchtower.safety_margin == 120.0


def test_merge_order_defaults_file_env_flags(tmp_path: Path) -> None:
    write_toml(tmp_path, '[node]\nlog_level = "debug"\nlog_format = "json"\n'
                         '[limits]\nmax_payment = "1gwei"\n')
    env = {"CHANNELD_NODE_LOG_LEVEL": "warning", "CHANNELD_LIMITS_MAX_PAYMENT": "2gwei"}
    flags = {"limits.max_payment": "3gwei"}
    config = load_config(tmp_path, env, flags)
    assert config.node.log_format == "json"          # file over default
    assert config.node.log_level == "warning"        # env over file
    assert config.limits.max_payment == 3 * 10**9    # flag over env
    assert config.node.listen == NodeConfig().listen  # default where nothing is set


def test_flags_may_be_typed_values(tmp_path: Path) -> None:
    config = load_config(tmp_path, {}, {"chain.confirmations": 7, "node.listen": HostPort("127.0.0.1", 1)})
    assert config.chain.confirmations == 7
    assert config.node.listen == HostPort("127.0.0.1", 1)


def test_set_flags(tmp_path: Path) -> None:
    flags = parse_set_flags(["node.log_level=debug", "chain.rpc_url=http://h:1/a=b"])
    assert flags == {"node.log_level": "debug", "chain.rpc_url": "http://h:1/a=b"}
    assert load_config(tmp_path, {}, flags).chain.rpc_url == "http://h:1/a=b"
    with pytest.raises(InvalidConfig, match=r"section\.key=value"):
        parse_set_flags(["loglevel"])


def test_unrelated_channeld_variables_are_not_config(tmp_path: Path) -> None:
    env = {"CHANNELD_PASSWORD": "x", "CHANNELD_DATADIR": "/tmp", "PATH": "/bin"}
    assert load_config(tmp_path, env) == Config()


def test_empty_env_unsets_an_optional_setting(tmp_path: Path) -> None:
    write_toml(tmp_path, f'[chain]\ncontract = "{CHECKSUMMED}"\nchain_id = 5\n')
    config = load_config(tmp_path, {"CHANNELD_CHAIN_CONTRACT": "", "CHANNELD_CHAIN_CHAIN_ID": ""})
    assert (config.chain.contract, config.chain.chain_id) == (None, None)


@pytest.mark.parametrize(("toml", "env", "flags", "key", "source", "hint"), [
    ("[node]\nlisten_port = 1\n", {}, {}, "node.listen_port", CONFIG_FILE, "node.listen"),
    ("[nodes]\nlisten = 1\n", {}, {}, "nodes", CONFIG_FILE, "[node]"),
    ("listen = 1\n", {}, {}, "listen", CONFIG_FILE, ""),
    ("", {"CHANNELD_NODE_LISTN": "x"}, {}, "node.listn", "CHANNELD_NODE_LISTN", "node.listen"),
    ("", {"CHANNELD_LIMITS_MAXPAYMENT": "1"}, {}, "limits.maxpayment", "CHANNELD_LIMITS_MAXPAYMENT",
     "limits.max_payment"),
    ("", {}, {"chain.rpc": "x"}, "chain.rpc", "command line", "chain.rpc_url"),
    ("", {}, {"chian.rpc_url": "x"}, "chian.rpc_url", "command line", ""),
])
def test_unknown_keys_are_named(tmp_path: Path, toml: str, env: dict[str, str], flags: dict[str, str],
                                key: str, source: str, hint: str) -> None:
    write_toml(tmp_path, toml)
    with pytest.raises(InvalidConfig) as info:
        load_config(tmp_path, env, flags)
    assert problem_keys(info.value) == [key]
    assert source in str(info.value)
    assert hint in str(info.value)
    assert "unknown" in str(info.value)


BAD_VALUES = [
    ("node", "listen", '"127.0.0.1:70000"', "out of range 1-65535"),
    ("node", "listen", '"127.0.0.1:0"', "out of range 1-65535"),
    ("node", "listen", '"127.0.0.1"', "not host:port"),
    ("node", "listen", '"::1:9000"', "brackets"),
    ("node", "listen", '"[nope]:9000"', "not an IPv6 address"),
    ("node", "listen", '"bad_host!:9000"', "not a valid host name"),
    ("node", "listen", "9000", "host:port as text"),
    ("node", "api", '"127.0.0.1:port"', "whole number"),
    ("node", "log_format", '"xml"', "not one of text, json"),
    ("node", "log_level", '"verbose"', "not one of"),
    ("chain", "rpc_url", '"ftp://example.com"', "http(s)/ws(s)"),
    ("chain", "rpc_url", '"http://"', "with a host"),
    ("chain", "rpc_url", '"http://host:99999"', "not a valid URL"),
    ("chain", "contract", '"0x1234"', "20-byte hex address"),
    ("chain", "contract", f'"{CHECKSUMMED[:-1]}D"', "checksum"),
    ("chain", "contract", '"0x0000000000000000000000000000000000000000"', "zero address"),
    ("chain", "confirmations", "-1", "out of range"),
    ("chain", "confirmations", "1.5", "whole number"),
    ("chain", "confirmations", "true", "whole number"),
    ("chain", "poll_interval", "0", "positive"),
    ("chain", "poll_interval", '"-1s"', "duration such as"),
    ("chain", "poll_interval", '"soon"', "duration such as"),
    ("chain", "poll_interval", "nan", "positive"),
    ("chain", "poll_interval", "inf", "positive"),
    ("chain", "chain_id", "0", "out of range"),
    ("transport", "handshake_timeout", '"10 days"', "duration such as"),
    ("transport", "handshake_timeout", "1e9", "at most"),
    ("transport", "max_message_size", "100", "out of range 1024-65535"),
    ("transport", "max_messages_per_second", "0", "out of range"),
    ("transport", "max_connections", '"many"', "whole number"),
    ("transport", "ping_interval", "[1]", "duration such as"),
    ("limits", "max_payment", '"-1eth"', "negative"),
    ("limits", "max_payment", '"0.5wei"', "whole number of wei"),
    ("limits", "max_per_peer_per_hour", "0.5", "as text"),
    ("limits", "max_total_per_hour", '"lots"', "not a number"),
    ("limits", "max_channel_deposit", f'"{2**256}"', "larger than 2"),
    ("limits", "min_onchain_reserve", "-5", "negative"),
    ("limits", "max_pending_locks", "100000", "out of range 0-10000"),
    ("watchtower", "safety_margin", '"0s"', "positive"),
    ("routing", "fee_ppm", "2000000", "out of range"),
    ("routing", "forward", '"maybe"', "one of"),
    ("journal", "retention", '"forever"', "duration"),
]


@pytest.mark.parametrize(("section", "key", "value", "reason"), BAD_VALUES)
def test_bad_values_in_the_file_are_named(tmp_path: Path, section: str, key: str, value: str,
                                          reason: str) -> None:
    write_toml(tmp_path, f"[{section}]\n{key} = {value}\n")
    with pytest.raises(InvalidConfig) as info:
        load_config(tmp_path, {})
    assert problem_keys(info.value) == [f"{section}.{key}"]
    assert reason in info.value.problems[0].reason
    assert f"{section}.{key}" in str(info.value)


def test_every_section_has_a_bad_value_case() -> None:
    assert {section for section, *_ in BAD_VALUES} == set(SECTIONS)


@pytest.mark.parametrize(("name", "value", "reason"), [
    ("CHANNELD_NODE_LISTEN", "localhost:65536", "out of range"),
    ("CHANNELD_CHAIN_CONFIRMATIONS", "ten", "whole number"),
    ("CHANNELD_TRANSPORT_PEER_TIMEOUT", "-3s", "duration"),
    ("CHANNELD_LIMITS_MAX_PAYMENT", "1.5 wei", "whole number of wei"),
    ("CHANNELD_WATCHTOWER_SAFETY_MARGIN", "", "duration"),
])
def test_bad_values_in_the_environment_name_the_variable(tmp_path: Path, name: str, value: str,
                                                         reason: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        load_config(tmp_path, {name: value})
    assert info.value.problems[0].source == f"environment variable {name}"
    assert reason in info.value.problems[0].reason


def test_a_bad_value_is_reported_even_when_overridden(tmp_path: Path) -> None:
    write_toml(tmp_path, '[node]\nlog_level = "loud"\n')
    with pytest.raises(InvalidConfig) as info:
        load_config(tmp_path, {"CHANNELD_NODE_LOG_LEVEL": "info"})
    assert problem_keys(info.value) == ["node.log_level"]


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    write_toml(tmp_path, '[node]\nlog_level = "loud"\nlisten = "x"\n[chain]\nconfirmation = 3\n')
    with pytest.raises(InvalidConfig) as info:
        load_config(tmp_path, {"CHANNELD_LIMITS_MAX_PAYMENT": "-1"}, {"watchtower.margin": "1s"})
    assert sorted(problem_keys(info.value)) == sorted([
        "node.log_level", "node.listen", "chain.confirmation", "limits.max_payment", "watchtower.margin"])
    assert len(str(info.value).splitlines()) == 6


def test_cross_field_checks(tmp_path: Path) -> None:
    write_toml(tmp_path, '[transport]\nping_interval = "30s"\npeer_timeout = "30s"\n'
                         '[node]\nlisten = "0.0.0.0:9000"\napi = "127.0.0.1:9000"\n')
    with pytest.raises(InvalidConfig) as info:
        load_config(tmp_path, {})
    assert sorted(problem_keys(info.value)) == ["node.api", "transport.peer_timeout"]
    # Same port on two distinct specific hosts does not clash.
    load_config(tmp_path, {"CHANNELD_NODE_LISTEN": "127.0.0.2:9000",
                           "CHANNELD_TRANSPORT_PEER_TIMEOUT": "31s"})


@pytest.mark.parametrize(("text", "reason"), [
    ("[node\n", "not valid TOML"),
    ('[node]\nlisten = "a"\nlisten = "b"\n', "not valid TOML"),
])
def test_malformed_file(tmp_path: Path, text: str, reason: str) -> None:
    path = write_toml(tmp_path, text)
    with pytest.raises(ConfigError, match=reason) as info:
        load_config(tmp_path, {})
    assert str(path) in str(info.value)


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_bytes(b"[node]\nlog_level = \"\xff\"\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(tmp_path, {})


def test_section_that_is_not_a_table(tmp_path: Path) -> None:
    write_toml(tmp_path, 'node = "x"\n')
    with pytest.raises(InvalidConfig, match="must be a \\[section\\] table"):
        load_config(tmp_path, {})


def test_explicit_path(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text('[node]\nlog_level = "error"\n')
    assert load_config(tmp_path / "unused", {}, path=other).node.log_level == "error"


def test_sections_built_in_code_are_validated_too() -> None:
    with pytest.raises(ConfigError, match=r"node\.log_format"):
        NodeConfig(log_format="xml")
    with pytest.raises(ConfigError, match=r"node\.listen: .*out of range"):
        NodeConfig(listen=HostPort("127.0.0.1", 0))
    with pytest.raises(ConfigError, match=r"transport\.max_connections"):
        TransportConfig(max_connections=0)
    assert ChainConfig(contract=CHECKSUMMED.lower()).contract == CHECKSUMMED


def test_parse_value() -> None:
    assert parse_value("limits", "max_payment", "1gwei") == 10**9
    with pytest.raises(InvalidConfig, match="unknown key"):
        parse_value("limits", "max_paymnet", "1gwei")


def test_every_field_is_documented_with_a_known_kind() -> None:
    for section in SECTIONS.values():
        for spec in dataclasses.fields(section):
            assert spec.metadata["doc"].strip(), spec.name
            assert "\n" not in spec.metadata["doc"]
            assert spec.metadata["kind"] in {"int", "duration", "amount", "choice", "hostport", "address",
                                             "rpc_url", "path", "name", "address_list"}
    assert SECTIONS["limits"] is RiskLimits


def test_every_default_survives_a_render_and_parse_via_its_env_var(tmp_path: Path) -> None:
    """The reference's env var names and rendered defaults are real: feeding them back changes nothing."""
    env, section = {}, ""
    for line in render_default_file().splitlines():
        header = re.fullmatch(r"\[(\w+)\]", line)
        setting = re.fullmatch(r"# (\w+) = (.*)", line)
        if header:
            section = header[1]
        elif setting:
            env[env_var(section, setting[1])] = setting[2].strip('"')
    assert len(env) == sum(len(dataclasses.fields(s)) for s in SECTIONS.values())
    assert load_config(tmp_path, env) == Config()


def test_default_file_uncommented_loads_as_the_defaults(tmp_path: Path) -> None:
    text = "\n".join(line[2:] if re.fullmatch(r"# \w+ = .*", line) else line
                     for line in render_default_file().splitlines())
    write_toml(tmp_path, text)
    assert load_config(tmp_path, {}) == Config()


def test_write_default_file_never_overwrites(tmp_path: Path) -> None:
    path = write_default_file(tmp_path)
    assert path.read_text() == render_default_file()
    path.write_text('[node]\nlog_level = "error"\n')
    write_default_file(tmp_path)
    assert load_config(tmp_path, {}).node.log_level == "error"


def test_committed_reference_matches_the_dataclasses() -> None:
    committed = (REPO / "docs" / "config-reference.md").read_text(encoding="utf-8")
    assert committed == render_reference(), "run: python scripts/gen_config_reference.py"


def load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("gen_config_reference",
                                                  REPO / "scripts" / "gen_config_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generator_writes_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generator = load_generator()
    generator.REFERENCE = tmp_path / "config-reference.md"
    assert generator.main(["--check"]) == 1
    assert generator.main([]) == 0
    assert generator.REFERENCE.read_text() == render_reference()
    assert generator.main(["--check"]) == 0
    generator.REFERENCE.write_text(render_reference().replace("Peer-to-peer", "Peer to peer"))
    assert generator.main(["--check"]) == 1
    assert "out of date" in capsys.readouterr().err


def test_generator_check_passes_on_the_repository() -> None:
    result = subprocess.run([sys.executable, "scripts/gen_config_reference.py", "--check"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
