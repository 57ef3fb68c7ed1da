"""Raiden's TokenNetwork gas on a real anvil, against the figures recorded for anvil 1.7.1."""

from __future__ import annotations

import pytest
from web3 import Web3

from benchmarks.raiden_reference import (
    RESULT_KEYS,
    MintStyle,
    anvil_dev_keys,
    deploy_custom_token,
    measure_raiden_gas,
)
from channeld.errors import ConfigError
from tests.tools import Anvil

# Recorded on anvil 1.7.1 (default hardfork) with Raiden's CustomToken; see the module docstring.
REFERENCE_GAS = {
    "open": 86_442,
    "open_with_deposit": 125_604,
    "open_with_deposit_first": 142_716,
    "deposit": 76_382,
    "withdraw": 115_057,
    "close": 138_084,
    "update": 90_912,
    "settle": 120_564,
    "cooperative_close": 167_439,
    "lifecycle_uncooperative": 588_802,
    "lifecycle_cooperative": 329_721,
}


@pytest.mark.slow
def test_raiden_gas_on_anvil_is_within_ten_percent_of_the_reference(fresh_anvil: Anvil) -> None:
    w3 = Web3(Web3.HTTPProvider(fresh_anvil.url))
    keys = anvil_dev_keys(3)
    token = deploy_custom_token(w3, keys[0])

    gas = measure_raiden_gas(w3, token, keys, mint_style=MintStyle.AMOUNT_TO)

    assert set(gas) == set(RESULT_KEYS) == set(REFERENCE_GAS)
    off = {
        step: f"{gas[step]:,} vs {reference:,}"
        for step, reference in REFERENCE_GAS.items()
        if abs(gas[step] - reference) > reference // 10
    }
    assert not off, f"outside ±10% of the reference: {off}"
    # The first deposit into an empty network writes the network's balance slot from zero.
    assert gas["open_with_deposit_first"] - gas["open_with_deposit"] > 15_000


@pytest.mark.parametrize(
    ("keys_count", "token", "message"),
    [
        (2, None, "need 3 funded keys"),
        (3, "0x1234", "not an address"),
        (3, "0x" + "11" * 20, "no contract at token address"),
    ],
)
def test_bad_inputs_are_refused_before_any_transaction(
    anvil: Anvil, keys_count: int, token: str | None, message: str,
) -> None:
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    keys = anvil_dev_keys(3)
    token_address = token or deploy_custom_token(w3, keys[0])
    block_before = w3.eth.block_number

    with pytest.raises(ConfigError, match=message):
        measure_raiden_gas(w3, token_address, keys[:keys_count], mint_style=MintStyle.AMOUNT_TO)

    assert w3.eth.block_number == block_before
