"""Intervals over seeds.

Studies run few seeds (3 by default), so the intervals that compare agents are Student-t intervals for a
mean and Welch intervals for a difference of means: their 95 % coverage holds for any number of seeds >= 2
when the final values are roughly normal across seeds. (A percentile bootstrap over 3 values cannot leave
their range and covers the mean far less often than it claims, about 76 % of the time for a "95 %" interval.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["Interval", "contrast_interval", "mean_interval", "t_band", "welch_interval"]


@dataclass(frozen=True)
class Interval:
    """An estimate with its interval (``low``, ``high``; NaN when it cannot be computed) and sample sizes."""

    estimate: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        if math.isnan(self.low):
            return f"{self.estimate:.3f}"
        return f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}]"

    def within(self, lower: float = -math.inf, upper: float = math.inf) -> Interval:
        """The interval cut to the range the quantity can take (an entropy's [0, log K]).

        The true value lies in that range, so cutting never drops it: the coverage stays what it was.
        """
        if math.isnan(self.low):
            return self
        return Interval(self.estimate, max(self.low, lower), min(self.high, upper), self.n)

    @property
    def signed(self) -> str:
        """The same with a sign on every number: for differences."""
        if math.isnan(self.low):
            return f"{self.estimate:+.3f}"
        return f"{self.estimate:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"


def mean_interval(values: np.ndarray, level: float = 0.95) -> Interval:
    """Mean and Student-t interval over the seeds: ``mean +- t_{(1+level)/2, n-1} s / sqrt(n)``."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    mean = float(values.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    half = float(stats.t.ppf((1 + level) / 2, n - 1)) * float(values.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def t_band(values: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and Student-t interval over the first axis (the seeds) for every column: a learning curve's band."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    mean = values.mean(axis=0)
    if n < 2:
        return mean, np.full_like(mean, np.nan), np.full_like(mean, np.nan)
    half = float(stats.t.ppf((1 + level) / 2, n - 1)) * values.std(axis=0, ddof=1) / math.sqrt(n)
    return mean, mean - half, mean + half


def welch_interval(first: np.ndarray, second: np.ndarray, level: float = 0.95) -> Interval:
    """``mean(first) - mean(second)`` with Welch's interval (unequal variances, Welch-Satterthwaite degrees)."""
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    difference = float(first.mean() - second.mean())
    n = min(len(first), len(second))
    if n < 2:
        return Interval(difference, math.nan, math.nan, n)
    a, b = first.var(ddof=1) / len(first), second.var(ddof=1) / len(second)
    if a + b == 0:  # both sets constant: the difference is known exactly
        return Interval(difference, difference, difference, n)
    dof = (a + b) ** 2 / (a**2 / (len(first) - 1) + b**2 / (len(second) - 1))
    half = float(stats.t.ppf((1 + level) / 2, dof)) * math.sqrt(a + b)
    return Interval(difference, difference - half, difference + half, n)


def contrast_interval(first: list[np.ndarray], second: list[np.ndarray], level: float = 0.95) -> Interval:
    """The mean of the ``first`` groups' means minus the mean of the ``second`` groups' means, with its interval.

    A linear contrast of independent groups (e.g. the seeds of each policy-optimization algorithm against those
    of each Q-learning algorithm), each algorithm weighing the same whatever its number of seeds. Its variance
    is ``sum_i c_i^2 s_i^2 / n_i`` and its degrees of freedom Welch-Satterthwaite's; with one group on each side
    it is Welch's interval.
    """
    groups = [np.asarray(group, dtype=np.float64) for group in (*first, *second)]
    if not first or not second:
        raise ValueError("a contrast needs at least one group on each side")
    weights = [1 / len(first)] * len(first) + [-1 / len(second)] * len(second)
    estimate = float(sum(w * g.mean() for w, g in zip(weights, groups, strict=True)))
    n = min(len(g) for g in groups)
    if n < 2:
        return Interval(estimate, math.nan, math.nan, n)
    terms = [w**2 * g.var(ddof=1) / len(g) for w, g in zip(weights, groups, strict=True)]
    variance = sum(terms)
    if variance == 0:
        return Interval(estimate, estimate, estimate, n)
    dof = variance**2 / sum(t**2 / (len(g) - 1) for t, g in zip(terms, groups, strict=True))
    half = float(stats.t.ppf((1 + level) / 2, dof)) * math.sqrt(variance)
    return Interval(estimate, estimate - half, estimate + half, n)
