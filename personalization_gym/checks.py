"""Argument checks shared by the tasks, the callback, the policies and the experiment loader: what counts as an
integer, a number or a boolean (Python's and numpy's alike, never text, never a bool for a number), and the
ValueErrors that name the argument, what was given and what is valid. The lowest layer has them, so every layer
above uses the same rules."""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from typing import Any

import numpy as np

__all__ = [
    "check_bool",
    "check_choice",
    "check_integer",
    "check_number",
    "in_context",
    "is_bool",
    "is_integer",
    "is_number",
    "is_number_text",
]


def is_bool(value: Any) -> bool:
    """``True`` or ``False``, Python's or numpy's."""
    return isinstance(value, (bool, np.bool_))


def is_integer(value: Any) -> bool:
    """A Python or numpy integer; a bool is not one."""
    return isinstance(value, numbers.Integral) and not is_bool(value)


def is_number(value: Any) -> bool:
    """A Python or numpy real number (integers included); a bool is not one, nor is text."""
    return isinstance(value, numbers.Real) and not is_bool(value)


def is_number_text(text: str) -> bool:
    """Whether ``text`` reads as a number (``"1e-3"``, which YAML 1.1 leaves as text; a CSV cell)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_integer(name: str, value: Any, minimum: int | None = None) -> int:
    """``value`` as an int if it is an integer (>= ``minimum`` when given), else a ValueError naming ``name``."""
    what = "an integer" if minimum is None else f"an integer >= {minimum}"
    if not is_integer(value):
        raise ValueError(f"{name} must be {what}, got {value!r} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be {what}, got {value}")
    return int(value)


def check_number(
    name: str,
    value: Any,
    *,
    above: float | None = None,
    at_least: float | None = None,
    below: float | None = None,
    at_most: float | None = None,
) -> float:
    """``value`` as a float if it is a finite real number within the bounds given, else a ValueError naming
    ``name``, the valid range and what was given. Python's and numpy's numbers pass; text and bools do not."""
    low, high = (above, at_least), (below, at_most)
    if None not in low or None not in high:
        raise TypeError("give at most one lower bound (above, at_least) and one upper bound (below, at_most)")
    ok = is_number(value) and math.isfinite(value)
    ok = ok and (above is None or value > above) and (at_least is None or value >= at_least)
    ok = ok and (below is None or value < below) and (at_most is None or value <= at_most)
    if not ok:
        shown = str(value) if is_number(value) else repr(value)
        raise ValueError(f"{name} must be {_number_range(above, at_least, below, at_most)}, got {shown}")
    return float(value)


def _number_range(above: float | None, at_least: float | None, below: float | None, at_most: float | None) -> str:
    """``a finite number > 0``, ``a number in [0, 1)``: the words of check_number's errors."""
    lower = above if above is not None else at_least
    upper = below if below is not None else at_most
    if lower is not None and upper is not None:
        return f"a number in {'(' if above is not None else '['}{lower:g}, {upper:g}{')' if below is not None else ']'}"
    if lower is not None:
        return f"a finite number {'>' if above is not None else '>='} {lower:g}"
    if upper is not None:
        return f"a finite number {'<' if below is not None else '<='} {upper:g}"
    return "a finite number"


def check_choice(name: str, value: Any, valid: Collection[Any]) -> Any:
    """``value`` if it is one of ``valid`` (compared by equality, so text is never a number), else a ValueError
    that lists the valid values as ``valid`` shows them."""
    if not any(type(value) is type(choice) and value == choice for choice in valid):
        raise ValueError(f"{name} must be one of {valid!r}, got {value!r}")
    return value


def check_bool(name: str, value: Any, error: type[Exception] = ValueError) -> bool:
    """``value`` as a bool if it is ``True`` or ``False``, else ``error`` naming ``name`` and what was given."""
    if not is_bool(value):
        raise error(f"{name} must be True or False, got {value!r}")
    return bool(value)


def in_context(where: str, error: Exception) -> ValueError:
    """``error``'s message with ``where`` (the file, key or argument it concerns) in front, as a ValueError of
    ``error``'s own class when it is one, so that a caller can still tell the kind of error apart."""
    kind = type(error) if isinstance(error, ValueError) else ValueError
    try:
        return kind(f"{where}: {error}")
    except TypeError:  # a class whose constructor takes other arguments
        return ValueError(f"{where}: {error}")
