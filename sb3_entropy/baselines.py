"""What a uniformly random policy, the oracles and a Q-learner with exact Q-values score on an evaluation set: the
baselines printed beside every agent's reward and diversity (pure numpy, on the task's expected rewards)."""

from __future__ import annotations

import numpy as np

from sb3_entropy.metrics import EXPOSURE, all_metrics, entropy, head_size, marginal
from sb3_entropy.probs import softmax_policy

__all__ = ["evaluation_baselines"]


def evaluation_baselines(expected: np.ndarray, temperature: float = 0.1) -> dict[str, float]:
    """What a uniformly random policy and the oracle (best action for every state) score on an evaluation set.

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
    expected = np.asarray(expected, dtype=np.float64)
    best = expected == expected.max(axis=1, keepdims=True)
    oracle_policy = best / best.sum(axis=1, keepdims=True)
    exact_q = softmax_policy(expected, temperature)
    exposure = {}
    for name, policy in (("oracle", oracle_policy), ("exact_q", exact_q)):
        values = all_metrics(policy)
        exposure |= {f"{name}_{metric.tag.split('/')[1]}": values[metric.tag] for metric in EXPOSURE}
    n_actions = expected.shape[1]
    return exposure | {
        "uniform_long_tail_share": (n_actions - head_size(n_actions)) / n_actions,
        "random": float(expected.mean()),
        "oracle": float(expected.max(axis=1).mean()),
        "oracle_entropy": float(entropy(marginal(oracle_policy))),
        "oracle_tied": float((best.sum(axis=1) > 1).mean()),
        "oracle_entropy_cover": float(entropy(_greedy_cover_marginal(best))),
        "exact_q": float((exact_q * expected).sum(axis=1).mean()),
        "exact_q_entropy": float(entropy(marginal(exact_q))),
        "temperature": float(temperature),
    }


def _greedy_cover_marginal(best: np.ndarray) -> np.ndarray:
    """p(a) of an oracle that serves the states in rounds: each round, the action best for the most states not yet
    served goes to all of them (ties between actions go to the lowest index)."""
    counts = np.zeros(best.shape[1])
    unserved = np.ones(len(best), dtype=bool)
    while unserved.any():
        action = int(best[unserved].sum(axis=0).argmax())
        served = unserved & best[:, action]
        counts[action] = served.sum()
        unserved &= ~served
    return counts / len(best)
