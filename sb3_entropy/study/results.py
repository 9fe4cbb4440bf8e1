"""A study's results: ``results.csv`` and the final values of each agent over its seeds."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from sb3_entropy.atomic import atomic_path
from sb3_entropy.metrics import ACTION_KEYS, ENTROPY_KEYS, EXPOSURE_KEYS, REWARD_KEYS
from sb3_entropy.study.runner import ExperimentResult
from sb3_entropy.study.stats import Interval, mean_interval

__all__ = [
    "RESULT_COLUMNS",
    "agent_label",
    "final_interval",
    "final_values",
    "finished_seeds",
    "seed_words",
    "three_decimals",
    "write_results_csv",
]

AGENT_COLUMNS = ("experiment", "agent", "algo", "regularizer", "per_state_weight", "ent_coef", "seed")
RESULT_COLUMNS = (*AGENT_COLUMNS, "timesteps", *ENTROPY_KEYS, *ACTION_KEYS, *EXPOSURE_KEYS, *REWARD_KEYS)


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


def final_values(result: ExperimentResult, agent: str, key: str) -> np.ndarray:
    """``key`` at the last evaluation of every finished run of ``agent``, in seed order."""
    return np.array([result.histories[(agent, seed)][-1][key] for seed in finished_seeds(result, agent)])


def final_interval(result: ExperimentResult, agent: str, key: str) -> Interval:
    """Mean and 95 % Student-t interval over seeds of ``key`` at the last evaluation, cut to the values it can take.

    No policy beats the oracle; an entropy lies in [0, log K]; the exposure metrics in their ranges. The true value
    lies in that range, so the cut never drops it.
    """
    seeds = finished_seeds(result, agent)
    n_actions = len(result.histories[(agent, seeds[0])][-1]["p"])
    oracle = result.baselines["oracle"] if result.baselines else math.inf
    lower, upper = {
        "eval/expected_reward": (-math.inf, oracle),
        "entropy/marginal": (0.0, math.log(n_actions)),
        "entropy/per_state": (0.0, math.log(n_actions)),
        "actions/effective_number": (1.0, n_actions),
        "exposure/gini": (0.0, (n_actions - 1) / n_actions),
        "exposure/long_tail_share": (0.0, 1.0),
        "exposure/aggregate_diversity": (1.0, n_actions),
    }.get(key, (-math.inf, math.inf))
    return mean_interval(final_values(result, agent, key)).within(lower, upper)


def write_results_csv(result: ExperimentResult, path: Path) -> Path:
    """One row per agent, seed and evaluation, with every metric (p(a) itself is in the runs' JSON)."""
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=RESULT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(result.rows)
    return path
