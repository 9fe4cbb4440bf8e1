"""What a uniformly random policy, the oracles and a Q-learner with exact Q-values score on an evaluation set: the
baselines printed beside every agent's reward and diversity (pure numpy, on the task's expected rewards, chunk by
chunk: a large catalogue's evaluation set is never one table)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from sb3_entropy.metrics import EXPOSURE, Totals, entropy, head_size, metrics_of, totals
from sb3_entropy.probs import softmax_policy

__all__ = ["evaluation_baselines"]


def evaluation_baselines(expected: np.ndarray | Iterable[np.ndarray], temperature: float = 0.1) -> dict[str, float]:
    """What a uniformly random policy and the oracle (best action for every state) score on an evaluation set, given
    as its ``(n, K)`` table of expected rewards or as chunks of its rows, in order.

    Also the oracle's marginal entropy H(p), so that an agent's diversity can be read against the diversity the
    task asks for. Where several actions tie for best the oracle splits evenly among them (``oracle_entropy``);
    ``oracle_tied`` is the share of states with such a tie. With ties, other oracles reach the same reward with
    less diversity: ``oracle_entropy_cover`` is H(p) of one that gives every state the best action shared by the
    most states still unserved (a greedy cover), an upper bound on the least diverse oracle's H(p).

    ``exact_q`` and ``exact_q_entropy`` are the reward and H(p) of a Q-learner whose Q-values are exact, read as
    the Q-learning agents are, ``softmax(Q / temperature)``: a reference for DQN and QR-DQN, not a bound (a
    learned Q with wider gaps between actions is read more greedily and can score more).
    Where rewards are small against the temperature (Ads-v0's click rates), that policy is nearly uniform.

    ``<policy>_gini``, ``<policy>_long_tail_share`` and ``<policy>_aggregate_diversity`` are the exposure metrics
    of the oracle and of that Q-learner (see :mod:`sb3_entropy.metrics`); ``uniform_long_tail_share`` is the
    long-tail share of the random policy (its Gini is 0).
    """
    chunks = [expected] if isinstance(expected, np.ndarray) else expected
    sums = _Sums()
    for chunk in chunks:
        sums.add(np.asarray(chunk, dtype=np.float64), temperature)
    n, n_actions = sums.n, sums.n_actions
    exposure = {}
    for name, total in (("oracle", sums.oracle), ("exact_q", sums.exact_q)):
        values = metrics_of(total)
        exposure |= {f"{name}_{metric.tag.split('/')[1]}": values[metric.tag] for metric in EXPOSURE}
    return exposure | {
        "uniform_long_tail_share": (n_actions - head_size(n_actions)) / n_actions,
        "random": float(sums.every_action / (n * n_actions)),
        "oracle": float(sums.best / n),
        "oracle_entropy": float(entropy(sums.oracle.p)),
        "oracle_tied": sums.tied / n,
        "oracle_entropy_cover": float(entropy(_greedy_cover_marginal(sums, n, n_actions))),
        "exact_q": float(sums.exact_q_reward / n),
        "exact_q_entropy": float(entropy(sums.exact_q.p)),
        "temperature": float(temperature),
    }


class _Sums:
    """What every baseline reduces from, summed over the chunks of the evaluation set as they come."""

    def __init__(self) -> None:
        self.n = self.n_actions = self.tied = 0
        self.every_action = self.best = self.exact_q_reward = 0.0
        self.oracle: Totals | None = None
        self.exact_q: Totals | None = None
        self.best_users: list[np.ndarray] = []  # each state's best actions, as (state, action) pairs
        self.best_actions: list[np.ndarray] = []

    def add(self, expected: np.ndarray, temperature: float) -> None:
        best = expected == expected.max(axis=1, keepdims=True)
        oracle_policy = best / best.sum(axis=1, keepdims=True)
        exact_q = softmax_policy(expected, temperature)
        users, actions = np.nonzero(best)
        self.best_users.append(self.n + users)
        self.best_actions.append(actions)
        self.n += len(expected)
        self.n_actions = expected.shape[1]
        self.every_action += expected.sum()
        self.best += expected.max(axis=1).sum()
        self.tied += int(np.count_nonzero(best.sum(axis=1) > 1))
        self.exact_q_reward += (exact_q * expected).sum(axis=1).sum()
        self.oracle = _added(self.oracle, totals(oracle_policy))
        self.exact_q = _added(self.exact_q, totals(exact_q))


def _added(total: Totals | None, part: Totals) -> Totals:
    return part if total is None else total + part


def _greedy_cover_marginal(sums: _Sums, n: int, n_actions: int) -> np.ndarray:
    """p(a) of an oracle that serves the states in rounds: each round, the action best for the most states not yet
    served goes to all of them (ties between actions go to the lowest index)."""
    users, actions = np.concatenate(sums.best_users), np.concatenate(sums.best_actions)
    counts = np.zeros(n_actions)
    unserved = np.ones(n, dtype=bool)
    while unserved.any():
        live = unserved[users]
        action = int(np.bincount(actions[live], minlength=n_actions).argmax())
        served = users[live & (actions == action)]
        counts[action] = len(served)
        unserved[served] = False
    return counts / n
