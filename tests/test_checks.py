"""personalization_gym.checks: one rule for integers, numbers and booleans, Python's and numpy's alike, never text,
never a bool for a number; and the errors that name the argument."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from personalization_gym.checks import (
    check_bool,
    check_choice,
    check_integer,
    check_number,
    in_context,
    is_bool,
    is_integer,
    is_number,
    is_number_text,
)

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


def test_check_integer_without_a_minimum() -> None:
    assert check_integer("low", -4) == -4
    with pytest.raises(ValueError, match=r"^low must be an integer, got 0.5 \(float\)$"):
        check_integer("low", 0.5)


@pytest.mark.parametrize(
    ("bounds", "value", "message"),
    [
        ({"above": 0}, 0, "temperature must be a finite number > 0, got 0"),
        ({"above": 0}, float("inf"), "temperature must be a finite number > 0, got inf"),
        ({"at_least": 0}, np.float64(-0.5), "temperature must be a finite number >= 0, got -0.5"),
        ({"above": 0, "below": 1}, 1, "temperature must be a number in (0, 1), got 1"),
        ({"at_least": 0, "at_most": 0.5}, 0.75, "temperature must be a number in [0, 0.5], got 0.75"),
        ({"below": 2}, 2.0, "temperature must be a finite number < 2, got 2.0"),
        ({}, float("nan"), "temperature must be a finite number, got nan"),
        ({}, "0.1", "temperature must be a finite number, got '0.1'"),
        ({}, True, "temperature must be a finite number, got True"),
        ({}, None, "temperature must be a finite number, got None"),
    ],
)
def test_check_number_names_the_range(bounds, value, message) -> None:
    with pytest.raises(ValueError) as error:
        check_number("temperature", value, **bounds)
    assert str(error.value) == message


def test_check_number_returns_a_float_within_bounds() -> None:
    for value in (0.1, np.float32(0.5), Fraction(1, 4), 1):
        checked = check_number("x", value, above=0, at_most=1)
        assert type(checked) is float and checked == float(value)
    assert check_number("x", 0, at_least=0) == 0.0 and check_number("x", -1e300) == -1e300
    with pytest.raises(TypeError, match="at most one lower bound"):
        check_number("x", 1, above=0, at_least=0)


def test_check_choice_compares_values_and_types() -> None:
    assert check_choice("noise", "none", ["none", "gaussian"]) == "none"
    with pytest.raises(ValueError, match=r"^noise must be one of \['none', 'gaussian'\], got 'Gaussian'$"):
        check_choice("noise", "Gaussian", ["none", "gaussian"])
    with pytest.raises(ValueError, match=r"^rule must be one of \(1, 2\), got True$"):
        check_choice("rule", True, (1, 2))  # True == 1, but a bool is not the integer asked for
    with pytest.raises(ValueError, match=r"^rule must be one of \('a',\), got \['a'\]$"):
        check_choice("rule", ["a"], ("a",))


def test_in_context_keeps_the_kind_of_error() -> None:
    class OddError(ValueError):
        pass

    class TwoArgumentError(ValueError):
        def __init__(self, first: str, second: str) -> None:
            super().__init__(first, second)

    error = in_context("experiment x (x.yml): agents.a2c", OddError("n_steps=48 is not a multiple of 32"))
    assert (
        type(error) is OddError and str(error) == "experiment x (x.yml): agents.a2c: n_steps=48 is not a multiple of 32"
    )
    assert type(in_context("where", KeyError("k"))) is ValueError
    wrapped = in_context("where", TwoArgumentError("a", "b"))
    assert type(wrapped) is ValueError and str(wrapped) == "where: ('a', 'b')"
