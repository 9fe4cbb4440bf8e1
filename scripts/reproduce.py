"""``python scripts/reproduce.py ARGS`` is ``personalization-gym reproduce ARGS`` (sb3_entropy.study.cli.reproduce),
kept for the commands written before the tool shipped with the package."""

from __future__ import annotations

import sys

from sb3_entropy.study.cli import reproduce


def main(argv: list[str] | None = None) -> int:
    return reproduce.main(argv)


if __name__ == "__main__":
    sys.exit(main())
