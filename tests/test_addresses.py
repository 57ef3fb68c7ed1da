"""The fast EIP-55 code agrees with eth_utils on every address and refuses what eth_utils refuses."""

from __future__ import annotations

import pytest
from eth_utils import is_checksum_address, is_checksum_formatted_address, to_checksum_address
from hypothesis import given
from hypothesis import strategies as st

from channeld.addresses import InvalidAddress, checksum_address, checksum_bytes

raw_addresses = st.binary(min_size=20, max_size=20)


@given(raw_addresses)
def test_bytes_checksum_equals_eth_utils(raw: bytes) -> None:
    assert checksum_bytes(raw) == to_checksum_address(raw)


@given(raw_addresses, st.sampled_from(["lower", "upper", "checksum", "bare"]))
def test_every_accepted_spelling_gives_the_checksummed_form(raw: bytes, spelling: str) -> None:
    expected = to_checksum_address(raw)
    text = {"lower": "0x" + raw.hex(), "upper": "0x" + raw.hex().upper(), "checksum": expected,
            "bare": raw.hex()}[spelling]
    assert checksum_address(text) == expected


@given(raw_addresses, st.integers(min_value=0, max_value=39))
def test_a_flipped_letter_case_is_refused_unless_the_spelling_is_all_one_case(raw: bytes,
                                                                             position: int) -> None:
    """Stricter than eth_utils' `is_address` (which accepts any hex): a mixed-case spelling must carry a
    valid EIP-55 checksum, so a mistyped address is refused rather than paid."""
    good = to_checksum_address(raw)
    digits = list(good[2:])
    if not digits[position].isalpha():
        return  # a digit has no case to flip
    digits[position] = digits[position].swapcase()
    bad = "0x" + "".join(digits)
    if not is_checksum_formatted_address(bad):  # flipping gave an all-lower or all-upper spelling: valid
        assert checksum_address(bad) == good
    else:
        assert not is_checksum_address(bad)
        with pytest.raises(InvalidAddress):
            checksum_address(bad)


@pytest.mark.parametrize("value", ["", "0x", "0x" + "g" * 40, "0x" + "a" * 39, "0x" + "a" * 41, "1" * 42])
def test_malformed_text_is_refused(value: str) -> None:
    with pytest.raises(InvalidAddress):
        checksum_address(value)


def test_only_twenty_bytes_are_an_address() -> None:
    with pytest.raises(InvalidAddress):
        checksum_bytes(b"\x01" * 19)
