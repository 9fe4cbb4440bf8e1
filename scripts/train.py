"""``python scripts/train.py ARGS`` is ``personalization-gym train ARGS`` (sb3_entropy.study.cli.train),
kept for the commands written before the tool shipped with the package."""

from __future__ import annotations

import sys

from sb3_entropy.study.cli import train


def main(argv: list[str] | None = None) -> int:
    return train.main(argv)


if __name__ == "__main__":
    sys.exit(main())
