"""``python scripts/tune.py ARGS`` is ``personalization-gym tune ARGS`` (sb3_entropy.study.cli.tune),
kept for the commands written before the tool shipped with the package."""

from __future__ import annotations

import sys

from sb3_entropy.study.cli import tune


def main(argv: list[str] | None = None) -> int:
    return tune.main(argv)


if __name__ == "__main__":
    sys.exit(main())
