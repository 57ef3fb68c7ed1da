"""A tiny `channeld`-like entry point mounting `register_watchtower`, until channeld.cli hooks it in."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from channeld.errors import ChanneldError
from channeld.watchtower.cli import register_watchtower


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="channeld")
    parser.add_argument("--datadir", type=Path, required=True)
    register_watchtower(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except ChanneldError as error:
        print(f"channeld {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
