"""Amount parsing and formatting: exact, bounded, and refusing anything doubtful."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channeld.amounts import UINT256_MAX, AmountError, check_amount, format_amount, parse_amount
from channeld.errors import LocalFault


@pytest.mark.parametrize(("text", "wei"), [
    ("0.5eth", 5 * 10**17),
    ("20gwei", 20 * 10**9),
    ("1000wei", 1000),
    ("1.5ether", 15 * 10**17),
    ("123", 123),
    ("0", 0),
    ("0.5 ETH", 5 * 10**17),
    ("  7 Gwei ", 7 * 10**9),
    ("1.000000000000000001eth", 10**18 + 1),
    ("0.1eth", 10**17),  # 0.1 has no exact float: the digits are used, never a float
    ("3kwei", 3000),
    ("2finney", 2 * 10**15),
    (str(UINT256_MAX), UINT256_MAX),
    ("007", 7),
])
def test_parse_amount_accepts(text: str, wei: int) -> None:
    assert parse_amount(text) == wei


@pytest.mark.parametrize(("text", "reason"), [
    ("-1", "negative"),
    ("-0.5eth", "negative"),
    ("0.5wei", "whole number of wei"),
    ("1.0000000000000000001eth", "whole number of wei"),
    (str(UINT256_MAX + 1), "larger than 2"),
    ("115792089237316195423570985008687907853269984665640564039457584007913129639936wei", "larger than 2"),
    ("1e18", "not a number"),
    ("5 dollars", "unknown unit"),
    ("", "not a number"),
    ("eth", "not a number"),
    (".5eth", "not a number"),
    ("5.eth", "not a number"),
    ("1,000", "not a number"),
    ("0x10", "not a number"),
    ("1 2", "not a number"),
    ("nan", "not a number"),
    ("1" * 200, "too long"),
    ("١٢٣", "not a number"),  # Arabic-Indic digits: int() would accept them, we do not
])
def test_parse_amount_refuses(text: str, reason: str) -> None:
    with pytest.raises(AmountError, match=reason) as info:
        parse_amount(text)
    assert "\n" not in str(info.value)


def test_amount_error_is_both_a_value_error_and_a_local_fault() -> None:
    with pytest.raises(ValueError):
        parse_amount("-1")
    with pytest.raises(LocalFault):
        parse_amount("-1")


@pytest.mark.parametrize("value", [1.5, "5", True, None])
def test_check_amount_refuses_non_integers(value: object) -> None:
    with pytest.raises(AmountError, match="integer"):
        check_amount(value)


def test_check_amount_refuses_out_of_range() -> None:
    with pytest.raises(AmountError, match="negative"):
        check_amount(-1)
    with pytest.raises(AmountError, match="2\\*\\*256-1"):
        check_amount(UINT256_MAX + 1)
    assert check_amount(UINT256_MAX) == UINT256_MAX


@pytest.mark.parametrize(("wei", "text"), [
    (5 * 10**17, "0.5 ETH"),
    (10**18, "1 ETH"),
    (0, "0 ETH"),
    (10**15, "0.001 ETH"),
    (10**18 + 1, "1.000000000000000001 ETH"),
    (20 * 10**9, "20 gwei"),
    (1_500_000, "0.0015 gwei"),
    (999, "999 wei"),
])
def test_format_amount(wei: int, text: str) -> None:
    assert format_amount(wei) == text


def test_format_amount_refuses_negative() -> None:
    with pytest.raises(AmountError):
        format_amount(-5)


@given(st.integers(min_value=0, max_value=UINT256_MAX))
def test_format_then_parse_is_identity(wei: int) -> None:
    assert parse_amount(format_amount(wei)) == wei


@given(st.integers(min_value=0, max_value=10**30), st.integers(min_value=0, max_value=18))
def test_parse_of_a_decimal_ether_string_is_exact(units: int, decimals: int) -> None:
    text = str(units).rjust(decimals + 1, "0")
    decimal_text = f"{text[:-decimals]}.{text[-decimals:]}" if decimals else text
    assert parse_amount(decimal_text + "eth") == units * 10 ** (18 - decimals)


@given(st.text(max_size=30))
def test_parse_never_raises_anything_but_amount_error(text: str) -> None:
    try:
        value = parse_amount(text)
    except AmountError:
        return
    assert 0 <= value <= UINT256_MAX
