"""Entropy, action and reward metrics of a policy on a fixed set of states: pure numpy functions.

``probs`` is an ``(n, K)`` table of ``pi(a|s)`` over n evaluation states; ``expected`` the ``(n, K)`` expected
reward of every action in every state, when the task provides it. Entropies are in nats (max ``log K``);
``0 log 0 = 0``. Greedy actions are ``argmax`` of a row, the first one on ties.

The exposure metrics are the recommender field's words for the same distribution (docs/callback.md): the Gini
coefficient of p(a), the long-tail share of p(a) (exposure outside the most-exposed 20 % of items) and the
aggregate diversity (distinct greedy recommendations over the states).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ACTION_KEYS",
    "ENTROPY_KEYS",
    "EXPOSURE_KEYS",
    "HEAD_PERCENT",
    "REWARD_KEYS",
    "SCORE_KEY",
    "action_metrics",
    "aggregate_diversity",
    "all_metrics",
    "entropy",
    "entropy_metrics",
    "evaluation_metrics",
    "exposure_metrics",
    "gini",
    "head_size",
    "long_tail_share",
    "marginal",
    "reward_metrics",
    "score",
]

ENTROPY_KEYS = ("entropy/marginal", "entropy/marginal_normalized", "entropy/per_state", "entropy/greedy_marginal")
ACTION_KEYS = ("actions/effective_number", "actions/coverage", "actions/top1_share")
EXPOSURE_KEYS = ("exposure/gini", "exposure/long_tail_share", "exposure/aggregate_diversity")
SCORE_KEY = "eval/score"  # (reward - random) / (oracle - random): logged to TensorBoard, not kept in histories
HEAD_PERCENT = 20  # the short head: the most-exposed 20 % of items (rounded up); the rest is the long tail
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
    return 0.0 - (p * logs).sum(axis=axis)  # not -(...): a certain choice has entropy 0.0, not -0.0


def marginal(probs: np.ndarray) -> np.ndarray:
    """The marginal action distribution ``p(a)``: the mean over states of ``pi(a|s)``."""
    return np.asarray(probs, dtype=np.float64).mean(axis=0)


def gini(p: np.ndarray) -> float:
    """Gini coefficient of an exposure distribution over K items: 0 when equal, (K - 1) / K when one item has all.

    ``sum_i (2 i - K - 1) x_(i) / (K sum x)`` over the values sorted ascending, ``i = 1..K`` (as RecBole's
    GiniIndex); the scale of ``p`` does not matter (counts or shares).
    """
    x = np.sort(np.asarray(p, dtype=np.float64))
    if x.ndim != 1 or len(x) == 0 or x[0] < 0 or not x.sum() > 0:
        raise ValueError(f"gini needs a 1-d array of K >= 1 exposures >= 0 with a positive sum, got {p!r}")
    rank = np.arange(1, len(x) + 1)
    return float(((2 * rank - len(x) - 1) * x).sum() / (len(x) * x.sum()))


def head_size(n_items: int) -> int:
    """How many items make the short head: ``HEAD_PERCENT`` % of ``n_items`` rounded up, so at least one."""
    return -(-HEAD_PERCENT * n_items // 100)  # integer ceiling: no float rounding at multiples of 5


def long_tail_share(p: np.ndarray) -> float:
    """Share of the exposure that goes to the long tail: every item outside the most-exposed ``head_size(K)``."""
    x = np.sort(np.asarray(p, dtype=np.float64))
    if x.ndim != 1 or len(x) == 0 or x[0] < 0 or not x.sum() > 0:
        raise ValueError(f"long_tail_share needs a 1-d array of K >= 1 exposures >= 0 with a positive sum, got {p!r}")
    # Summing the tail itself (not 1 - head) keeps a tail of zeros exactly 0.
    return float(x[: len(x) - head_size(len(x))].sum() / x.sum())


def aggregate_diversity(probs: np.ndarray) -> int:
    """How many distinct items the greedy policy (argmax of each row) recommends over the states."""
    probs = np.asarray(probs)
    return int(np.unique(probs.argmax(axis=1)).size)


def exposure_metrics(p: np.ndarray, greedy_histogram: np.ndarray) -> dict[str, float]:
    """The exposure metrics of a marginal ``p`` and of the greedy actions' histogram (counts or shares)."""
    return {
        "exposure/gini": gini(p),
        "exposure/long_tail_share": long_tail_share(p),
        "exposure/aggregate_diversity": float(np.count_nonzero(greedy_histogram)),
    }


def entropy_metrics(probs: np.ndarray) -> dict[str, float]:
    probs = np.asarray(probs, dtype=np.float64)
    return _entropy_metrics(probs, marginal(probs), _greedy_histogram(probs.argmax(axis=1), probs.shape[1]))


def action_metrics(probs: np.ndarray) -> dict[str, float]:
    return _action_metrics(marginal(probs))


def _greedy_histogram(greedy: np.ndarray, n_actions: int) -> np.ndarray:
    """Share of the states whose greedy action is each action."""
    return np.bincount(greedy, minlength=n_actions) / len(greedy)


def _entropy_metrics(
    probs: np.ndarray, p: np.ndarray, greedy_histogram: np.ndarray, per_state: np.ndarray | None = None
) -> dict[str, float]:
    h_marginal = float(entropy(p))
    return {
        "entropy/marginal": h_marginal,
        "entropy/marginal_normalized": h_marginal / np.log(probs.shape[1]),
        "entropy/per_state": float((entropy(probs) if per_state is None else per_state).mean()),
        "entropy/greedy_marginal": float(entropy(greedy_histogram)),
    }


def _action_metrics(p: np.ndarray) -> dict[str, float]:
    n_actions = len(p)
    return {
        "actions/effective_number": float(np.exp(entropy(p))),
        "actions/coverage": float((p >= 1.0 / (10 * n_actions)).mean()),
        "actions/top1_share": float(p.max()),
    }


def reward_metrics(probs: np.ndarray, expected: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    """Rewards of the policy on the states: sampled actions (``rng``), greedy actions, and exact expectations."""
    probs, expected = np.asarray(probs, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    return _reward_metrics(probs, expected, rng, probs.argmax(axis=1), expected.max(axis=1), np.empty_like(probs))


def _reward_metrics(
    probs: np.ndarray,
    expected: np.ndarray,
    rng: np.random.Generator,
    greedy: np.ndarray,
    best: np.ndarray,
    scratch: np.ndarray,
) -> dict[str, float]:
    """reward_metrics with the greedy actions and each state's best expected reward given, and an ``(n, K)``
    ``scratch`` table to write into (it holds pi * expected, then the cumulative pi)."""
    rows = np.arange(len(probs))
    policy_value = np.multiply(probs, expected, out=scratch).sum(axis=1)
    # One action per state drawn from its row, by inverting the row's cumulative distribution.
    cumulative = np.cumsum(probs, axis=1, out=scratch)
    uniform = rng.random(len(probs))[:, None] * cumulative[:, -1:]
    sampled = np.minimum((cumulative <= uniform).sum(axis=1), probs.shape[1] - 1)
    greedy_rewards = expected[rows, greedy]
    return {
        "eval/reward_stochastic": float(expected[rows, sampled].mean()),
        "eval/reward_greedy": float(greedy_rewards.mean()),
        "eval/expected_reward": float(policy_value.mean()),
        "eval/regret": float((best - policy_value).mean()),
        "eval/optimal_action_rate": float((greedy_rewards == best).mean()),
    }


def score(reward: float | np.ndarray, random: float, oracle: float) -> float | np.ndarray:
    """``(reward - random) / (oracle - random)``: 0 is a uniformly random policy, 1 the oracle (NaN when every
    action is as good as any other, so that there is nothing to learn)."""
    if oracle == random:
        return np.full_like(np.asarray(reward, dtype=np.float64), np.nan)[()]
    return (np.asarray(reward, dtype=np.float64) - random) / (oracle - random)


def all_metrics(
    probs: np.ndarray, expected: np.ndarray | None = None, rng: np.random.Generator | None = None
) -> dict[str, float]:
    """Every metric: entropy, action and exposure metrics, and the reward metrics when ``expected`` is given."""
    return evaluation_metrics(probs, expected, rng)[0]


def evaluation_metrics(
    probs: np.ndarray,
    expected: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
    best: np.ndarray | None = None,
) -> tuple[dict[str, float], np.ndarray]:
    """``all_metrics`` and the marginal ``p(a)``, in one pass over the ``(n, K)`` table (an evaluation's hot path).

    p(a), the greedy actions and one ``(n, K)`` scratch table (pi log pi, then pi * expected, then the cumulative
    pi) are computed once for every metric; ``best``, each state's largest expected reward, can be given by a
    caller that evaluates on the same states again and again. The values are those of the separate functions.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or len(probs) == 0 or probs.shape[1] < 2:
        raise ValueError(f"probs must be an (n, K) table with n >= 1 states and K >= 2 actions, got {probs.shape}")
    if expected is not None:
        expected = np.asarray(expected, dtype=np.float64)
        if expected.shape != probs.shape:
            raise ValueError(f"expected must have the shape of probs, {probs.shape}, got {expected.shape}")
        if rng is None:
            raise ValueError("reward metrics sample actions: pass rng, a np.random.Generator")
    p, greedy = marginal(probs), probs.argmax(axis=1)
    greedy_histogram = _greedy_histogram(greedy, probs.shape[1])
    # pi log pi with 0 log 0 = 0 (log 1 = 0 where pi = 0), as entropy() computes it, in the scratch table
    scratch = np.where(probs > 0, probs, 1.0)
    np.log(scratch, out=scratch)
    scratch *= probs
    per_state = 0.0 - scratch.sum(axis=1)
    metrics = (
        _entropy_metrics(probs, p, greedy_histogram, per_state)
        | _action_metrics(p)
        | exposure_metrics(p, greedy_histogram)
    )
    if expected is not None:
        best = expected.max(axis=1) if best is None else best
        metrics |= _reward_metrics(probs, expected, rng, greedy, best, scratch)
    return metrics, p
