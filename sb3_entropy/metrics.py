"""Entropy, action and reward metrics of a policy on a fixed set of states: pure numpy functions.

``probs`` is an ``(n, K)`` table of ``pi(a|s)`` over n evaluation states; ``expected`` the ``(n, K)`` expected
reward of every action in every state, when the task provides it. Entropies are in nats (max ``log K``);
``0 log 0 = 0``. Greedy actions are ``argmax`` of a row, the first one on ties.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ACTION_KEYS",
    "ENTROPY_KEYS",
    "REWARD_KEYS",
    "action_metrics",
    "all_metrics",
    "entropy",
    "entropy_metrics",
    "marginal",
    "reward_metrics",
]

ENTROPY_KEYS = ("entropy/marginal", "entropy/marginal_normalized", "entropy/per_state", "entropy/greedy_marginal")
ACTION_KEYS = ("actions/effective_number", "actions/coverage", "actions/top1_share")
REWARD_KEYS = (
    "eval/reward_stochastic",
    "eval/reward_greedy",
    "eval/expected_reward",
    "eval/regret",
    "eval/optimal_action_rate",
)


def entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy in nats along ``axis``, with ``0 log 0 = 0``."""
    p = np.asarray(p, dtype=np.float64)
    logs = np.log(p, out=np.zeros_like(p), where=p > 0)
    return -(p * logs).sum(axis=axis)


def marginal(probs: np.ndarray) -> np.ndarray:
    """The marginal action distribution ``p(a)``: the mean over states of ``pi(a|s)``."""
    return np.asarray(probs, dtype=np.float64).mean(axis=0)


def entropy_metrics(probs: np.ndarray) -> dict[str, float]:
    n_actions = probs.shape[1]
    greedy_histogram = np.bincount(probs.argmax(axis=1), minlength=n_actions) / len(probs)
    h_marginal = float(entropy(marginal(probs)))
    return {
        "entropy/marginal": h_marginal,
        "entropy/marginal_normalized": h_marginal / np.log(n_actions),
        "entropy/per_state": float(entropy(probs).mean()),
        "entropy/greedy_marginal": float(entropy(greedy_histogram)),
    }


def action_metrics(probs: np.ndarray) -> dict[str, float]:
    p = marginal(probs)
    n_actions = len(p)
    return {
        "actions/effective_number": float(np.exp(entropy(p))),
        "actions/coverage": float((p >= 1.0 / (10 * n_actions)).mean()),
        "actions/top1_share": float(p.max()),
    }


def reward_metrics(probs: np.ndarray, expected: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    """Rewards of the policy on the states: sampled actions (``rng``), greedy actions, and exact expectations."""
    rows = np.arange(len(probs))
    # One action per state drawn from its row, by inverting the row's cumulative distribution.
    cumulative = np.cumsum(probs, axis=1)
    uniform = rng.random(len(probs))[:, None] * cumulative[:, -1:]
    sampled = np.minimum((cumulative <= uniform).sum(axis=1), probs.shape[1] - 1)
    greedy = probs.argmax(axis=1)
    best = expected.max(axis=1)
    policy_value = (probs * expected).sum(axis=1)
    return {
        "eval/reward_stochastic": float(expected[rows, sampled].mean()),
        "eval/reward_greedy": float(expected[rows, greedy].mean()),
        "eval/expected_reward": float(policy_value.mean()),
        "eval/regret": float((best - policy_value).mean()),
        "eval/optimal_action_rate": float((expected[rows, greedy] == best).mean()),
    }


def all_metrics(
    probs: np.ndarray, expected: np.ndarray | None = None, rng: np.random.Generator | None = None
) -> dict[str, float]:
    """Every metric: entropy and action metrics, and the reward metrics when ``expected`` is given."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or len(probs) == 0 or probs.shape[1] < 2:
        raise ValueError(f"probs must be an (n, K) table with n >= 1 states and K >= 2 actions, got {probs.shape}")
    metrics = entropy_metrics(probs) | action_metrics(probs)
    if expected is not None:
        expected = np.asarray(expected, dtype=np.float64)
        if expected.shape != probs.shape:
            raise ValueError(f"expected must have the shape of probs, {probs.shape}, got {expected.shape}")
        if rng is None:
            raise ValueError("reward metrics sample actions: pass rng, a np.random.Generator")
        metrics |= reward_metrics(probs, expected, rng)
    return metrics
