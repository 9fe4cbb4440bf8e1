"""What a study's runs show: intervals over seeds, each agent's final values, the entropy-gap rule and the frontier.

Studies run few seeds (3 by default), so the intervals that compare agents are Student-t intervals for a mean and
Welch intervals for a difference of means: their 95 % coverage holds for any number of seeds >= 2 when the final
values are roughly normal across seeds. (A percentile bootstrap over 3 values cannot leave their range and covers
the mean far less often than it claims, about 76 % of the time for a "95 %" interval.)

An agent's final values are the metrics of :data:`~sb3_entropy.metrics.SUMMARY` at its runs' last evaluation, each
interval cut to the values the metric can take; results.csv holds every stored metric of every evaluation.

The entropy-gap rule (does policy optimization end with lower marginal entropy H(p) than Q-learning?) was fixed
before any tuned run was seen, and is kept apart from how the report words it (:mod:`~sb3_entropy.study.report`).
Agents that have not been shown to learn (their reward interval reaches down to the random policy's) are left out:
their entropy is that of an untrained policy. The family contrast is the mean over policy-optimization algorithms of
their mean final H(p) minus the same over Q-learning algorithms, with a Welch-Satterthwaite interval: the paper's
finding is *reproduced* when it lies below 0, *contradicted* when above, and otherwise *not established* with the
seeds at hand. A quick run is not judged. Each pair of algorithms gets a Welch interval too.

The diversity-reward frontier: each point is one agent (the reference, an unregularised agent, or one of its
regularised variants) with its final values; for each regularised agent and regulariser, :func:`reaching` finds the
smallest coefficient whose mean marginal entropy is at least the reference's, and compares it with the reference
and with the unregularised agent by Welch intervals.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from sb3_entropy.agents import ON_POLICY, Q_LEARNING
from sb3_entropy.atomic import atomic_path
from sb3_entropy.metrics import (
    EFFECTIVE_ACTIONS,
    EXPECTED_REWARD,
    EXPOSURE,
    GINI,
    LONG_TAIL_SHARE,
    MARGINAL_ENTROPY,
    PER_STATE_ENTROPY,
    SCORE,
    STORED,
    SUMMARY,
    Metric,
)
from sb3_entropy.study.experiments import ExperimentResult

__all__ = [
    "FAMILIES",
    "RESULT_COLUMNS",
    "EntropyGap",
    "FrontierPoint",
    "Interval",
    "Reach",
    "agent_label",
    "contrast_interval",
    "curves",
    "entropy_gap",
    "final_interval",
    "final_values",
    "finished_seeds",
    "frontier_points",
    "mean_interval",
    "reaching",
    "seed_words",
    "t_band",
    "three_decimals",
    "welch_interval",
    "write_results_csv",
]


# ------------------------------------------------------------------------------------------------------------
# Intervals over seeds


@dataclass(frozen=True)
class Interval:
    """An estimate with its interval (``low``, ``high``; NaN when it cannot be computed) and sample sizes."""

    estimate: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return self.format()

    def format(self, fmt: str = ".3f") -> str:
        """``estimate [low, high]`` in the number format ``fmt`` (the estimate alone without an interval)."""
        if math.isnan(self.low):
            return format(self.estimate, fmt)
        return f"{self.estimate:{fmt}} [{self.low:{fmt}}, {self.high:{fmt}}]"

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
        raise ValueError(f"a contrast needs a group on each side: first and second hold {len(first)} and {len(second)}")
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


# ------------------------------------------------------------------------------------------------------------
# Final values: each agent's metrics at the last evaluation, over its seeds

AGENT_COLUMNS = ("experiment", "agent", "algo", "regularizer", "per_state_weight", "ent_coef", "seed")
RESULT_COLUMNS = (*AGENT_COLUMNS, "timesteps", *(metric.tag for metric in STORED))


def agent_label(agent: str) -> str:
    """How reports and figures name an agent: ``a2c`` -> ``A2C``, ``qrdqn`` -> ``QR-DQN``."""
    return {"qrdqn": "QR-DQN"}.get(agent, agent.upper())


def three_decimals(value: float) -> str:
    """Three decimals, without the "-0.000" of a value that is zero up to round-off (a random policy's mean)."""
    text = f"{value:.3f}"
    return "0.000" if text == "-0.000" else text


def seed_words(seeds: int) -> str:
    """``1`` -> ``1 seed``, ``5`` -> ``5 seeds``."""
    return f"{seeds} seed{'s' if seeds != 1 else ''}"


def finished_seeds(result: ExperimentResult, agent: str) -> list[int]:
    return sorted(seed for (name, seed) in result.histories if name == agent)


def final_values(result: ExperimentResult, agent: str, metric: Metric) -> np.ndarray:
    """``metric`` at the last evaluation of every finished run of ``agent``, in seed order (a derived metric
    computed from the stored ones and the evaluation set's baselines)."""
    rows = [result.histories[(agent, seed)][-1] for seed in finished_seeds(result, agent)]
    return np.array([float(metric.value(row, result.baselines)) for row in rows])


def final_interval(result: ExperimentResult, agent: str, metric: Metric) -> Interval | None:
    """Mean and 95 % Student-t interval over seeds of ``metric`` at the last evaluation, cut to the values it can
    take (no policy beats the oracle; an entropy lies in [0, log K]): the true value lies in that range, so the cut
    never drops it. None when the metric has no value: a derived one without baselines, or NaN on every seed."""
    if not metric.stored and not result.baselines:
        return None
    values = final_values(result, agent, metric)
    if np.isnan(values).all():
        return None
    n_actions = len(result.histories[(agent, finished_seeds(result, agent)[0])][-1]["p"])
    return mean_interval(values).within(*metric.bounds(n_actions, result.baselines))


@dataclass(frozen=True)
class Summary:
    """An agent's final values over its seeds: the interval of each metric of :data:`SUMMARY` (None where it has
    no value), and whether it was shown to learn."""

    agent: str
    values: dict[str, Interval | None]
    near_random: bool  # the reward interval reaches down to the random policy's reward: nothing shown learned

    def __getitem__(self, metric: Metric) -> Interval | None:
        return self.values[metric.tag]


def summarize(result: ExperimentResult, agent: str) -> Summary | None:
    """``agent``'s final values, or None when every run of it failed."""
    if not finished_seeds(result, agent):
        return None
    values = {metric.tag: final_interval(result, agent, metric) for metric in SUMMARY}
    reward = values[EXPECTED_REWARD.tag]
    near_random = bool(result.baselines) and not math.isnan(reward.low) and reward.low <= result.baselines["random"]
    return Summary(agent, values, near_random)


def tie_note(baselines: dict[str, float]) -> str:
    """The note under a table with the oracle's row, when its users have tied best actions ("" when none has)."""
    if not baselines.get("oracle_tied"):
        return ""
    return (f"(the oracle splits evenly between tied best actions, which {100 * baselines['oracle_tied']:.1f} % of "
            "users have; other tie-breaks give other marginal entropies at the same reward)")  # fmt: skip


def baseline_values(baselines: dict[str, float], n_actions: int, exact_q: bool = True) -> dict[str, dict[str, float]]:
    """The final values, by metric tag, of the random policy, the oracle and (``exact_q``) a Q-learner whose
    Q-values are exact, read as softmax(Q / temperature), where the baselines give them (an oracle that splits ties
    has no per-state entropy worth showing, a uniform policy no greedy recommendation)."""
    if not baselines:
        return {}
    uniform = math.log(n_actions)
    rows = {
        "random policy": {
            EXPECTED_REWARD.tag: baselines["random"], SCORE.tag: 0.0, MARGINAL_ENTROPY.tag: uniform,
            PER_STATE_ENTROPY.tag: uniform, EFFECTIVE_ACTIONS.tag: float(n_actions), GINI.tag: 0.0,
            LONG_TAIL_SHARE.tag: baselines.get("uniform_long_tail_share"),
        },
        "oracle": {EXPECTED_REWARD.tag: baselines["oracle"], SCORE.tag: 1.0, **_policy_values(baselines, "oracle")},
    }  # fmt: skip
    if exact_q and "exact_q" in baselines:
        rows[f"exact Q, softmax(Q / {baselines['temperature']:g})"] = {
            EXPECTED_REWARD.tag: baselines["exact_q"],
            SCORE.tag: float(SCORE.derive({EXPECTED_REWARD.tag: baselines["exact_q"]}, baselines)),
            **_policy_values(baselines, "exact_q"),
        }
    return {name: {tag: value for tag, value in values.items() if value is not None} for name, values in rows.items()}


def _policy_values(baselines: dict[str, float], policy: str) -> dict[str, float | None]:
    """A baseline policy's H(p), effective actions and exposure metrics, from ``<policy>_entropy`` and
    ``<policy>_<exposure metric>`` (an oracle's H(p) is ``oracle_entropy``)."""
    entropy = baselines.get(f"{policy}_entropy")
    values = {MARGINAL_ENTROPY.tag: entropy, EFFECTIVE_ACTIONS.tag: None if entropy is None else math.exp(entropy)}
    return values | {metric.tag: baselines.get(f"{policy}_{metric.tag.split('/')[1]}") for metric in EXPOSURE}


def write_results_csv(result: ExperimentResult, path: Path) -> Path:
    """One row per agent, seed and evaluation, with every stored metric (p(a) itself is in the runs' JSON)."""
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=RESULT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(result.rows)
    return path


# ------------------------------------------------------------------------------------------------------------
# The entropy-gap rule

FAMILIES = {"policy optimization": ON_POLICY, "Q-learning": Q_LEARNING}
QUICK = "not judged: a quick run's agents are far from converged (run without --quick)"


@dataclass(frozen=True)
class EntropyGap:
    """The rule's outcome for one experiment: ``outcome`` is the verdict and why (``"reproduced: the interval lies
    below 0"``), ``verdict`` its first words."""

    outcome: str
    members: dict[str, list[str]]  # family -> the agents judged
    everyone: dict[str, list[str]]  # family -> every unregularised agent, learned or not
    left_out: list[str]  # agents not shown to learn
    contrast: Interval | None = None
    pairs: tuple[tuple[str, str, Interval], ...] = ()

    @property
    def verdict(self) -> str:
        return self.outcome.split(":")[0]


def entropy_gap(result: ExperimentResult, learned: dict[str, bool | None]) -> EntropyGap:
    """The rule applied to ``result``; ``learned[agent]`` is whether the agent's reward was shown above the random
    policy's (None when every run of it failed)."""
    members, everyone, left_out = _families(result, learned)
    po, ql = members["policy optimization"], members["Q-learning"]
    if not po or not ql:
        missing = "Q-learning" if po else ("policy-optimization" if ql else "policy-optimization or Q-learning")
        if result.quick:
            outcome = QUICK
        elif left_out:
            outcome = f"not established: no {missing} agent has been shown to learn"
        else:
            outcome = f"not applicable: it needs finished runs of a {missing} agent"
        return EntropyGap(outcome, members, everyone, left_out)
    entropy = {agent: final_values(result, agent, MARGINAL_ENTROPY) for agent in po + ql}
    contrast = contrast_interval([entropy[a] for a in po], [entropy[a] for a in ql])
    if result.quick:
        outcome = QUICK
    elif contrast.n < 2:
        outcome = "not established with 1 seed: one seed gives no interval (run more seeds)"
    elif contrast.high < 0:
        outcome = "reproduced: the interval lies below 0"
    elif contrast.low > 0:
        outcome = "contradicted: the interval lies above 0, the opposite of the paper's finding"
    else:
        outcome = f"not established with {seed_words(contrast.n)}: the interval includes 0"
    pairs = tuple((p, q, welch_interval(entropy[p], entropy[q])) for p in po for q in ql)
    return EntropyGap(outcome, members, everyone, left_out, contrast, pairs)


def _families(
    result: ExperimentResult, learned: dict[str, bool | None]
) -> tuple[dict[str, list[str]], dict[str, list[str]], list[str]]:
    """Each family's judged agents and all its unregularised agents, and the agents left out as not learned."""
    members: dict[str, list[str]] = {}
    everyone: dict[str, list[str]] = {}
    left_out = []
    for family, algos in FAMILIES.items():
        stock = [a for a, settings in result.experiment.agents.items() if settings.algo in algos
                 and settings.regularizer is None]  # fmt: skip
        everyone[family], members[family] = stock, []
        for agent in stock:
            if learned.get(agent) is None:
                continue
            (members[family] if learned[agent] else left_out).append(agent)
    return members, everyone, left_out


# ------------------------------------------------------------------------------------------------------------
# The diversity-reward frontier


@dataclass(frozen=True)
class FrontierPoint:
    """One agent of a frontier study: the reference, an unregularised agent or one of its regularised variants,
    with the final values of :data:`SUMMARY` over its seeds."""

    agent: str  # the agent's name in the experiment
    base: str  # the unregularised agent it varies (itself for it and for the reference)
    regularizer: str | None  # None for the reference and the unregularised agents
    coefficient: float
    summary: Summary

    @property
    def reward(self) -> Interval:
        return self.summary[EXPECTED_REWARD]

    @property
    def marginal(self) -> Interval:
        return self.summary[MARGINAL_ENTROPY]


@dataclass(frozen=True)
class Reach:
    """The smallest coefficient at which ``base`` with ``regularizer`` reaches the reference's marginal entropy."""

    base: str
    regularizer: str
    point: FrontierPoint | None  # None: no coefficient of the grid reaches it
    highest: FrontierPoint  # the point of largest mean marginal entropy on this curve
    entropy_vs_reference: Interval | None = None  # Welch: point - reference
    reward_vs_reference: Interval | None = None
    reward_vs_unregularised: Interval | None = None


def _point(result: ExperimentResult, agent: str, base: str, regularizer: str | None, coefficient: float):
    summary = summarize(result, agent)  # every interval cut to the values its quantity can take
    return None if summary is None else FrontierPoint(agent, base, regularizer, coefficient, summary)


def frontier_points(result: ExperimentResult) -> list[FrontierPoint]:
    """The reference, the unregularised agents and every variant with at least one finished run, in grid order."""
    frontier = result.experiment.frontier
    if frontier is None:
        raise ValueError(f"experiment {result.experiment.name} has no frontier section")
    points = [_point(result, frontier.reference, frontier.reference, None, 0.0)]
    points += [_point(result, name, name, None, 0.0) for name in frontier.agents]
    points += [_point(result, name, *variant) for name, variant in frontier.variants().items()]
    return [point for point in points if point is not None]


def curves(points: list[FrontierPoint]) -> dict[tuple[str, str], list[FrontierPoint]]:
    """(base agent, regularizer) -> its points by increasing coefficient, starting at the unregularised agent."""
    unregularised = {p.base: p for p in points if p.regularizer is None}
    result: dict[tuple[str, str], list[FrontierPoint]] = {}
    for point in points:
        if point.regularizer is not None:
            start = [unregularised[point.base]] if point.base in unregularised else []
            result.setdefault((point.base, point.regularizer), start).append(point)
    return result


def reaching(result: ExperimentResult, points: list[FrontierPoint]) -> list[Reach]:
    """For every curve, the first point whose mean marginal entropy is at least the reference's mean."""
    reference_name = result.experiment.frontier.reference
    reference = next((p for p in points if p.agent == reference_name), None)
    if reference is None:
        return []
    reaches = []
    for (base, regularizer), curve in curves(points).items():
        highest = max(curve, key=lambda p: p.marginal.estimate)
        point = next((p for p in curve if p.marginal.estimate >= reference.marginal.estimate), None)
        if point is None:
            reaches.append(Reach(base, regularizer, None, highest))
            continue

        def welch(metric: Metric, other: str, agent: str = point.agent) -> Interval:
            return welch_interval(final_values(result, agent, metric), final_values(result, other, metric))

        reaches.append(
            Reach(
                base,
                regularizer,
                point,
                highest,
                entropy_vs_reference=welch(MARGINAL_ENTROPY, reference_name),
                reward_vs_reference=welch(EXPECTED_REWARD, reference_name),
                reward_vs_unregularised=welch(EXPECTED_REWARD, base) if finished_seeds(result, base) else None,
            )
        )
    return reaches
