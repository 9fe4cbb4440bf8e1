"""``python -m sb3_entropy COMMAND`` and the ``personalization-gym`` command: the study's command-line tool
(:mod:`sb3_entropy.study.cli`), or, without the study extra, one line that says how to install it."""

import sys


def main() -> int:
    try:
        from sb3_entropy.study.cli import main as tool
    except ImportError as error:
        if "study extra" not in str(error):
            raise
        print(f"personalization-gym: {error}", file=sys.stderr)
        return 1
    return tool()


if __name__ == "__main__":
    sys.exit(main())
