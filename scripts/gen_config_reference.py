"""Write docs/config-reference.md from the config dataclasses, so the reference cannot drift.

Usage: python scripts/gen_config_reference.py [--check]
With --check nothing is written; the exit status is 1 if the committed file is out of date.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from channeld.config_reference import render_reference

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "config-reference.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = parser.parse_args(argv)
    wanted = render_reference()
    current = REFERENCE.read_text(encoding="utf-8") if REFERENCE.exists() else None
    if args.check:
        if current != wanted:
            print(f"{REFERENCE} is out of date: run python scripts/gen_config_reference.py", file=sys.stderr)
            return 1
        return 0
    if current != wanted:
        REFERENCE.write_text(wanted, encoding="utf-8")
        print(f"wrote {REFERENCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
