"""personalization_gym.checks: one rule for integers, numbers and booleans, Python's and numpy's alike, never text,
never a bool for a number; and the errors that name the argument."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from personalization_gym.checks import check_bool, check_integer, is_bool, is_integer, is_number, is_number_text

CASES = [  # value, is an integer, is a number, is a boolean
    (3, True, True, False),
    (np.int64(3), True, True, False),
    (np.uint8(3), True, True, False),
    (3.0, False, True, False),
    (np.float32(0.5), False, True, False),
    (Fraction(1, 3), False, True, False),
    (float("nan"), False, True, False),
    (True, False, False, True),
    (np.bool_(False), False, False, True),
    ("3", False, False, False),
    (None, False, False, False),
    ([3], False, False, False),
]


@pytest.mark.parametrize(("value", "integer", "number", "boolean"), CASES)
def test_what_counts_as_an_integer_a_number_and_a_boolean(value, integer, number, boolean) -> None:
    assert (is_integer(value), is_number(value), is_bool(value)) == (integer, number, boolean)


def test_number_text() -> None:
    assert [is_number_text(t) for t in ("1e-3", "-2", " 0.5 ", "inf", "1,5", "O.3", "", "0x10")] == [
        True, True, True, True, False, False, False, False
    ]  # fmt: skip


def test_check_integer_returns_an_int_or_names_the_argument() -> None:
    assert check_integer("n_eval", np.int32(7), 1) == 7 and type(check_integer("n_eval", np.int32(7), 1)) is int
    with pytest.raises(ValueError, match=r"^n_eval must be an integer >= 1, got 0$"):
        check_integer("n_eval", 0, 1)
    with pytest.raises(ValueError, match=r"^seed must be an integer >= 0, got 2.0 \(float\)$"):
        check_integer("seed", 2.0, 0)
    with pytest.raises(ValueError, match=r"^seed must be an integer >= 0, got True \(bool\)$"):
        check_integer("seed", True, 0)
    with pytest.raises(ValueError, match=r"^seed must be an integer >= 0, got '3' \(str\)$"):
        check_integer("seed", "3", 0)


def test_check_bool() -> None:
    assert check_bool("verify", np.bool_(True)) is True
    with pytest.raises(ValueError, match=r"^normalize must be True or False, got 1$"):
        check_bool("normalize", 1)
    with pytest.raises(TypeError, match=r"^download must be True or False, got 'yes'$"):
        check_bool("download", "yes", TypeError)
