"""What every command of the tool shares: a parser whose help ends with the command's examples."""

from __future__ import annotations

import argparse
import re
from typing import Any

import yaml

from sb3_entropy.agents import NotWholeBatchesError, check_net_arch
from sb3_entropy.study.experiments import TuningSeedsError, load_yaml

__all__ = ["TOOL", "Distinct", "command_parser", "in_flags", "parse_hp", "parse_net_arch", "repeated"]

TOOL = "personalization-gym"  # the console script; python -m sb3_entropy is the same tool

# The library's errors name values; on the command line, these kinds of error also name the flags that answer them.
FLAG_HINTS: dict[type[Exception], str] = {
    NotWholeBatchesError: "--literal trains the literal setup",
    TuningSeedsError: f"{TOOL} tune --seeds chooses the tuning seeds, reproduce --seeds how many seeds a study runs",
}


class Distinct(argparse.Action):
    """A list flag (``nargs="+"``) whose values must differ: every such flag of the tool takes this action, so a value
    given twice (``--seeds 0 0``, ``--algo a2c a2c``) is refused as the flag's error, whatever the flag."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: str | None = None
    ) -> None:
        try:
            repeated(option or self.dest, list(values))
        except ValueError as error:
            parser.error(str(error))
        setattr(namespace, self.dest, values)


def repeated(flag: str, values: list[Any]) -> None:
    """A ValueError when a flag names one value twice (an agent, an experiment): each runs once, so say so."""
    twice = sorted({value for value in values if values.count(value) > 1})
    if twice:
        raise ValueError(f"{flag} names {twice} more than once: give each once")


def in_flags(error: Exception) -> str:
    """A library error as the command line says it: its message, then the flags that answer it, if any."""
    hints = [hint for kind, hint in FLAG_HINTS.items() if isinstance(error, kind)]
    return f"{error} ({'; '.join(hints)})" if hints else str(error)


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


def parse_hp(items: list[str], flag: str = "--hp") -> dict[str, Any]:
    """``["learning_rate=1e-3", "gamma=0.9"]`` -> a dict; values are read as YAML (numbers, lists, booleans).

    A number in exponent notation without a dot (``1e-3``), which YAML 1.1 reads as text, is read as the number
    it is on a command line. Any other value YAML reads as a string stays a string (a file name such as
    ``users.npy``). A key given twice is an error naming both.
    """
    result, given = {}, {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{flag} takes key=value, got {item!r}")
        if key.strip() in given:  # one setting, one place: the later would silently win
            raise ValueError(f"{flag} gives {key.strip()} twice, {given[key.strip()]!r} and {item!r}: give it once")
        given[key.strip()] = item
        try:
            parsed = load_yaml(value)  # a key written twice in {...} is refused
        except yaml.YAMLError as error:
            problem = getattr(error, "problem", None) or " ".join(str(error).split())
            raise ValueError(f"{flag} {item!r}: cannot read the value: {problem}") from None
        if isinstance(parsed, str) and _EXPONENT_NUMBER.fullmatch(parsed.strip()):
            parsed = float(parsed)
        result[key.strip()] = parsed
    return result


_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def parse_net_arch(text: str) -> list[int]:
    """``"256,256"`` -> ``[256, 256]``."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"net_arch takes comma-separated layer sizes such as 256,256, got {text!r}") from None
    return check_net_arch(sizes, "--net-arch")  # the library's rule, in its words
