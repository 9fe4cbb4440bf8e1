"""What every command of the tool shares: a parser whose help ends with the command's examples."""

from __future__ import annotations

import argparse

__all__ = ["TOOL", "command_parser"]

TOOL = "personalization-gym"  # the console script; python -m sb3_entropy is the same tool


def command_parser(doc: str, prog: str | None = None, description: str | None = None) -> argparse.ArgumentParser:
    """A parser whose description is the first line of a command module's ``doc`` (or ``description``) and whose
    help ends with the rest of it: the examples, then what the command writes."""
    first, _, rest = doc.strip().partition("\n")
    return argparse.ArgumentParser(
        prog=prog,
        description=description or first,
        epilog="examples:\n" + rest.strip("\n"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
