"""``python -m sb3_entropy COMMAND``: the personalization-gym command-line tool (sb3_entropy.study.cli)."""

import sys

from sb3_entropy.study.cli import main

if __name__ == "__main__":
    sys.exit(main())
