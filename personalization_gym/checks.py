"""Argument checks shared by the tasks, the callback, the policies and the experiment loader: what counts as an
integer, a number or a boolean (Python's and numpy's alike, never text, never a bool for a number), and the
ValueErrors that name the argument, what was given and what is valid. The lowest layer has them, so every layer
above uses the same rules."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = ["check_bool", "check_integer", "is_bool", "is_integer", "is_number", "is_number_text"]


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


def check_integer(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int if it is an integer >= ``minimum``, else a ValueError naming ``name`` and what was given."""
    if not is_integer(value):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_bool(name: str, value: Any, error: type[Exception] = ValueError) -> bool:
    """``value`` as a bool if it is ``True`` or ``False``, else ``error`` naming ``name`` and what was given."""
    if not is_bool(value):
        raise error(f"{name} must be True or False, got {value!r}")
    return bool(value)
