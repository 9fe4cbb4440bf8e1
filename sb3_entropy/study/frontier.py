"""The diversity-reward frontier: where each regularised agent ends, and what reaching the reference costs.

Each point is one agent (the reference, an unregularised agent, or one of its regularised variants) with the
mean and Student-t interval over seeds of its final expected reward, marginal entropy H(p) and mean
per-state entropy. For each regularised agent and regulariser, :func:`reaching` finds the smallest
coefficient whose mean marginal entropy is at least the reference's, and compares it with the reference
and with the unregularised agent by Welch intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

from sb3_entropy.study.results import final_interval, final_values, finished_seeds
from sb3_entropy.study.runner import ExperimentResult
from sb3_entropy.study.stats import Interval, welch_interval

__all__ = ["FINAL_KEYS", "FrontierPoint", "Reach", "curves", "frontier_points", "reaching"]

FINAL_KEYS = {
    "reward": "eval/expected_reward",
    "marginal": "entropy/marginal",
    "per_state": "entropy/per_state",
    "gini": "exposure/gini",
    "long_tail_share": "exposure/long_tail_share",
    "aggregate_diversity": "exposure/aggregate_diversity",
}


@dataclass(frozen=True)
class FrontierPoint:
    agent: str  # the agent's name in the experiment
    base: str  # the unregularised agent it varies (itself for it and for the reference)
    regularizer: str | None  # None for the reference and the unregularised agents
    coefficient: float
    reward: Interval
    marginal: Interval
    per_state: Interval
    gini: Interval
    long_tail_share: Interval
    aggregate_diversity: Interval  # distinct greedy recommendations


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
    if not finished_seeds(result, agent):
        return None
    # every interval cut to the values its quantity can take, as in the study's main table
    values = {name: final_interval(result, agent, key) for name, key in FINAL_KEYS.items()}
    return FrontierPoint(agent, base, regularizer, coefficient, **values)


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
    marginal, reward = FINAL_KEYS["marginal"], FINAL_KEYS["reward"]
    reaches = []
    for (base, regularizer), curve in curves(points).items():
        highest = max(curve, key=lambda p: p.marginal.estimate)
        point = next((p for p in curve if p.marginal.estimate >= reference.marginal.estimate), None)
        if point is None:
            reaches.append(Reach(base, regularizer, None, highest))
            continue

        def welch(key: str, other: str, agent: str = point.agent) -> Interval:
            return welch_interval(final_values(result, agent, key), final_values(result, other, key))

        reaches.append(
            Reach(
                base,
                regularizer,
                point,
                highest,
                entropy_vs_reference=welch(marginal, reference_name),
                reward_vs_reference=welch(reward, reference_name),
                reward_vs_unregularised=welch(reward, base) if finished_seeds(result, base) else None,
            )
        )
    return reaches
