"""Intervals over few seeds: coverage by simulation, and the family contrast against independent formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from sb3_entropy.study.analysis import contrast_interval, t_band, welch_interval


@pytest.mark.parametrize("n", [3, 5])
def test_the_family_contrast_covers_the_truth_95_percent_of_the_time(n: int) -> None:
    # three policy-optimization algorithms against two Q-learning ones, unequal means and spreads
    rng = np.random.default_rng(10 + n)
    means, scales = [1.8, 1.9, 2.9, 3.4, 2.5], [0.15, 0.10, 0.30, 0.08, 0.20]
    truth = np.mean(means[:3]) - np.mean(means[3:])
    trials = 4000
    draws = [rng.normal(m, s, size=(trials, n)) for m, s in zip(means, scales, strict=True)]
    hits = 0
    for trial in range(trials):
        groups = [draw[trial] for draw in draws]
        interval = contrast_interval(groups[:3], groups[3:])
        hits += interval.low <= truth <= interval.high
    print(f"n={n}: contrast coverage {hits / trials:.4f}")
    assert abs(hits / trials - 0.95) < 0.015, hits / trials


def test_one_group_a_side_is_welchs_interval_and_the_estimate_weighs_each_algorithm_alike() -> None:
    a, b = np.array([1.9, 1.8, 2.2]), np.array([3.3, 3.5, 3.4, 3.2])
    contrast, welch = contrast_interval([a], [b]), welch_interval(a, b)
    assert (contrast.estimate, contrast.low, contrast.high) == pytest.approx((welch.estimate, welch.low, welch.high))
    reference = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (contrast.low, contrast.high) == pytest.approx((reference.low, reference.high))
    c = np.array([2.9, 3.1])
    two = contrast_interval([a, c], [b])
    assert two.estimate == pytest.approx((a.mean() + c.mean()) / 2 - b.mean())
    # the variance by hand, and Welch-Satterthwaite's degrees of freedom
    terms = [0.25 * a.var(ddof=1) / 3, 0.25 * c.var(ddof=1) / 2, b.var(ddof=1) / 4]
    dof = sum(terms) ** 2 / (terms[0] ** 2 / 2 + terms[1] ** 2 / 1 + terms[2] ** 2 / 3)
    half = stats.t.ppf(0.975, dof) * np.sqrt(sum(terms))
    assert (two.low, two.high) == pytest.approx((two.estimate - half, two.estimate + half))
    with pytest.raises(ValueError) as error:
        contrast_interval([a], [])
    assert str(error.value) == "a contrast needs a group on each side: first and second hold 1 and 0"


def test_a_group_of_one_seed_gives_the_estimate_without_an_interval() -> None:
    """One seed has no variance to estimate: the estimate stands alone, its ends NaN, n the smallest group."""
    interval = contrast_interval([np.array([1.0, 2.0, 4.0])], [np.array([0.5])])
    assert interval.estimate == 2.3333333333333335 - 0.5 and interval.n == 1
    assert np.isnan(interval.low) and np.isnan(interval.high)


def test_groups_of_float32_values_are_averaged_in_float64() -> None:
    """Runs store float32 metrics: their means and variances are taken in float64 (exactly as Python's own)."""
    import statistics

    a, b = np.array([0.1, 0.7, 0.3], dtype=np.float32), np.array([0.2, 0.9], dtype=np.float32)
    interval = contrast_interval([a], [b])
    assert interval.estimate == statistics.fmean(a.tolist()) - statistics.fmean(b.tolist())
    variance = statistics.variance(a.tolist()) / 3 + statistics.variance(b.tolist()) / 2
    assert interval.high - interval.estimate == pytest.approx(
        stats.t.ppf(
            0.975,
            variance**2 / ((statistics.variance(a.tolist()) / 3) ** 2 / 2 + (statistics.variance(b.tolist()) / 2) ** 2),
        )
        * variance**0.5,
        rel=1e-12,
    )


def test_an_interval_cut_to_its_range_keeps_its_estimate_and_inner_ends() -> None:
    from sb3_entropy.study.analysis import Interval

    assert Interval(0.2, -0.7, 1.1, 3).within(0.0, 1.0) == Interval(0.2, 0.0, 1.0, 3)
    assert Interval(0.5, 0.1, 0.9, 3).within(0.0, 1.0) == Interval(0.5, 0.1, 0.9, 3)
    assert Interval(0.5, 0.1, 0.9, 3).within(upper=0.6) == Interval(0.5, 0.1, 0.6, 3)
    assert str(Interval(0.5, float("nan"), float("nan"), 1).within(0.0, 0.1)) == "0.500"  # one seed: no interval


def test_a_learning_curves_band_is_the_t_interval_of_each_column() -> None:
    """t_band against scipy's t interval column by column (float32 seeds averaged in float64); one seed: no band."""
    import statistics

    values = np.array([[0.1, 0.5, 0.9], [0.3, 0.4, 1.2], [0.2, 0.8, 1.0], [0.6, 0.1, 0.7]], dtype=np.float32)
    mean, low, high = t_band(values)
    for column in range(3):
        seeds = values[:, column].tolist()
        reference = stats.t.interval(0.95, 3, loc=statistics.fmean(seeds), scale=stats.sem(seeds))
        assert mean[column] == statistics.fmean(seeds)
        assert (low[column], high[column]) == pytest.approx(reference, rel=1e-12)
    _, low90, high90 = t_band(values, level=0.9)
    assert np.all(high90 - low90 < high - low)
    one = t_band(values[:1])
    assert np.array_equal(one[0], values[0].astype(np.float64)) and np.isnan(one[1]).all() and np.isnan(one[2]).all()
    two = t_band(values[:2])
    assert not np.isnan(two[1]).any()


def test_welchs_interval_at_its_edges() -> None:
    """float32 seeds averaged in float64; n is the smaller group; one seed gives the difference alone; two
    constant groups give it exactly."""
    import statistics

    a, b = np.array([0.1, 0.7, 0.3], dtype=np.float32), np.array([0.2, 0.9], dtype=np.float32)
    interval = welch_interval(a, b)
    assert interval.estimate == statistics.fmean(a.tolist()) - statistics.fmean(b.tolist()) and interval.n == 2
    reference = stats.ttest_ind(a.astype(np.float64), b.astype(np.float64), equal_var=False).confidence_interval()
    assert (interval.low, interval.high) == pytest.approx((reference.low, reference.high), rel=1e-12)
    one = welch_interval(np.array([1.0]), np.array([0.25, 0.5]))
    assert one.estimate == 0.625 and math.isnan(one.low) and math.isnan(one.high) and one.n == 1
    constant = welch_interval(np.array([2.0, 2.0]), np.array([0.5, 0.5, 0.5]))
    assert (constant.estimate, constant.low, constant.high, constant.n) == (1.5, 1.5, 1.5, 2)


def test_the_small_words_of_the_reports() -> None:
    from sb3_entropy.study.analysis import seed_words, tie_note

    assert [seed_words(n) for n in (0, 1, 2, 5)] == ["0 seeds", "1 seed", "2 seeds", "5 seeds"]
    assert tie_note({}) == tie_note({"oracle_tied": 0.0}) == ""
    assert tie_note({"oracle_tied": 0.996}) == (
        "(the oracle splits evenly between tied best actions, which 99.6 % of users have; other tie-breaks give other "
        "marginal entropies at the same reward)"
    )


def test_the_mean_interval_at_its_edges() -> None:
    """float32 seeds averaged in float64; one seed: the mean alone; two: an interval; n the number of seeds."""
    import statistics

    from sb3_entropy.study.analysis import mean_interval

    values = np.array([0.1, 0.7, 0.3], dtype=np.float32)
    interval = mean_interval(values)
    assert interval.estimate == statistics.fmean(values.tolist()) and interval.n == 3
    reference = stats.t.interval(0.95, 2, loc=interval.estimate, scale=stats.sem(values.astype(np.float64)))
    assert (interval.low, interval.high) == pytest.approx(reference, rel=1e-12)
    one = mean_interval(np.array([0.4]))
    assert one.estimate == 0.4 and math.isnan(one.low) and math.isnan(one.high) and one.n == 1
    two = mean_interval(np.array([0.4, 0.6]))
    assert two.n == 2 and two.low < 0.5 < two.high
