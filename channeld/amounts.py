"""Token amounts: exact parsing of operator text into base units, and formatting for humans.

Every amount inside channeld is an `int` of base units (wei for ETH). Text from operators (config,
flags, API) goes through `parse_amount`, which works on the digits themselves so no float ever rounds a
value, and refuses anything that is not a whole number of base units in the uint256 range.
"""

from __future__ import annotations

import re

from channeld.errors import LocalFault

UINT256_MAX = 2**256 - 1
WEI_PER_ETH = 10**18
WEI_PER_GWEI = 10**9

# Unit suffixes understood by parse_amount, with their size in wei; matched case-insensitively.
UNITS: dict[str, int] = {
    "wei": 1,
    "kwei": 10**3,
    "mwei": 10**6,
    "gwei": WEI_PER_GWEI,
    "szabo": 10**12,
    "finney": 10**15,
    "eth": WEI_PER_ETH,
    "ether": WEI_PER_ETH,
}

# Long enough for any uint256 in wei (78 digits) plus a unit; longer text is refused before parsing
# so a hostile string cannot make int() do quadratic work.
_MAX_TEXT = 120
_AMOUNT = re.compile(r"(?P<whole>[0-9]+)(?:\.(?P<frac>[0-9]+))?\s*(?P<unit>[a-zA-Z]*)")


class AmountError(LocalFault, ValueError):
    """An amount is malformed, negative, fractional in base units or larger than uint256."""


def parse_amount(text: str) -> int:
    """Turn `0.5eth`, `20 gwei`, `1000wei`, `1.5ether` or a plain `123` (wei) into wei."""
    if not isinstance(text, str):
        raise AmountError(f"amount must be text, got {type(text).__name__}")
    cleaned = text.strip()
    if len(cleaned) > _MAX_TEXT:
        raise AmountError(f"amount text is too long ({len(cleaned)} characters)")
    if cleaned.startswith("-"):
        raise AmountError(f"amount {cleaned!r} is negative")
    match = _AMOUNT.fullmatch(cleaned)
    if match is None:
        raise AmountError(f"amount {cleaned!r} is not a number with an optional unit (e.g. 0.5eth)")
    unit = match["unit"].lower() or "wei"
    if unit not in UNITS:
        known = ", ".join(UNITS)
        raise AmountError(f"amount {cleaned!r} has unknown unit {match['unit']!r} (known: {known})")
    return _to_base_units(cleaned, match["whole"], match["frac"] or "", UNITS[unit])


def _to_base_units(text: str, whole: str, frac: str, unit_size: int) -> int:
    scale = 10 ** len(frac)
    numerator = int(whole) * scale * unit_size + int(frac or "0") * unit_size
    if numerator % scale:
        raise AmountError(f"amount {text!r} is not a whole number of wei")
    value = numerator // scale
    if value > UINT256_MAX:
        raise AmountError(f"amount {text!r} is larger than 2**256-1 wei")
    return value


def check_amount(value: object, what: str = "amount") -> int:
    """Validate an amount that is already an integer (from code, JSON or TOML) and return it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise AmountError(f"{what} must be an integer number of wei, got {type(value).__name__}")
    if value < 0:
        raise AmountError(f"{what} {value} is negative")
    if value > UINT256_MAX:
        raise AmountError(f"{what} {value} is larger than 2**256-1 wei")
    return value


def format_amount(wei: int) -> str:
    """Exact text for humans: `0.5 ETH` from 0.001 ETH up, `20 gwei` from 0.001 gwei up, else `7 wei`.

    The result always parses back to the same value with `parse_amount`.
    """
    check_amount(wei)
    if wei == 0 or wei >= WEI_PER_ETH // 1000:
        return f"{_decimal(wei, WEI_PER_ETH)} ETH"
    if wei >= WEI_PER_GWEI // 1000:
        return f"{_decimal(wei, WEI_PER_GWEI)} gwei"
    return f"{wei} wei"


def _decimal(value: int, unit_size: int) -> str:
    whole, rest = divmod(value, unit_size)
    if rest == 0:
        return str(whole)
    width = len(str(unit_size)) - 1
    return f"{whole}.{str(rest).rjust(width, '0').rstrip('0')}"
