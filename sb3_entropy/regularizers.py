"""Diversity regularisers: bonuses computed from a batch's action distributions pi(.|s_1), ..., pi(.|s_n).

Each regulariser maps a torch ``Categorical`` over a batch of n states (``probs`` of shape ``(n, K)``) to a
per-sample bonus of shape ``(n,)``. SB3's A2C and PPO (and sb3-contrib's MaskablePPO) add
``ent_coef * (-mean(bonus))`` to their loss, so training maximises ``ent_coef * mean(bonus)``. Batch-level
regularisers give every sample the same value, so the mean is that value and its gradient is unchanged.

Notation: ``pi_i = pi(.|s_i)``; ``p = (1/n) sum_i pi_i`` is the batch's *marginal* action distribution (the
training-time estimate of the paper's p(a) = mean over users of pi(a|s)); ``u`` is uniform over the K actions;
entropies are in nats, with ``0 log 0 = 0`` (masked actions, of probability exactly 0, contribute nothing and
receive no gradient).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.distributions import Categorical

from personalization_gym.checks import check_number

__all__ = ["REGULARIZERS", "check_regularizer", "l2", "marginal", "mutual_info", "per_state"]


def _plogp(p: torch.Tensor) -> torch.Tensor:
    # log of 1 where p == 0: the value 0 log 0 = 0 and a zero (not NaN) gradient through masked actions
    return p * torch.log(torch.where(p > 0, p, torch.ones_like(p)))


def per_state(distribution: Categorical) -> torch.Tensor:
    """SB3's own term, the baseline: ``bonus_i = H(pi_i) = -sum_a pi_i(a) log pi_i(a)``.

    It rewards randomness *within* each state: every user's recommendation becomes less decisive. This is
    exactly what the stock policies return (``distribution.entropy()``), so ``per_state`` trains identically
    to SB3's ``MlpPolicy`` with the same ``ent_coef``.
    """
    return distribution.entropy()


def marginal(distribution: Categorical) -> torch.Tensor:
    """Entropy of the batch's marginal: ``bonus = H(p) = -sum_a p(a) log p(a)``, the same for every sample.

    ``H(p) = log K - KL(p || u)``, so it has the gradient of ``-KL(p || u)``: it pushes the recommendations
    *across* users towards uniform, and says nothing about how decisive each user's recommendation is.
    """
    p = distribution.probs.mean(dim=0)
    return (-_plogp(p).sum()).expand(distribution.probs.shape[0])


def l2(distribution: Categorical) -> torch.Tensor:
    """Squared distance of the marginal to uniform: ``bonus = -sum_a (p(a) - 1/K)^2``, the same for every sample.

    This is minus the squared maximum mean discrepancy MMD^2(p, u) with the identity kernel on actions
    (k(a, b) = 1 if a = b, else 0). Its range is [-(1 - 1/K), 0]; its gradient ``-2 (p(a) - 1/K)`` stays
    bounded where the entropy's ``-(log p(a) + 1)`` grows without bound as p(a) -> 0.
    """
    p = distribution.probs.mean(dim=0)
    return (-((p - 1.0 / p.shape[-1]) ** 2).sum()).expand(distribution.probs.shape[0])


def mutual_info(distribution: Categorical) -> torch.Tensor:
    """Marginal minus per-state entropy: ``bonus_i = H(p) - H(pi_i)``, whose batch mean is ``H(p) - mean_i H(pi_i)``.

    That mean is the mutual information I(S; A) between the batch's states and actions (s uniform over the
    batch, a ~ pi(.|s)): high when recommendations differ *across* users while each user's is decisive, which
    is what a recommender wants. It equals ``marginal`` with ``per_state_weight=-1``.
    """
    return marginal(distribution) - distribution.entropy()


REGULARIZERS: dict[str, Callable[[Categorical], torch.Tensor]] = {
    "per_state": per_state,
    "marginal": marginal,
    "l2": l2,
    "mutual_info": mutual_info,
}


def check_regularizer(regularizer: object, per_state_weight: object = 0.0) -> tuple[str, float]:
    """Validate a regulariser name and the weight of a per-state term mixed into it; ValueError says why."""
    if not isinstance(regularizer, str) or regularizer not in REGULARIZERS:
        raise ValueError(f"unknown regularizer {regularizer!r}; valid: {list(REGULARIZERS)}")
    weight = check_number("per_state_weight", per_state_weight)
    if regularizer == "per_state" and per_state_weight != 0:
        raise ValueError(
            "per_state_weight mixes a per-state term into a marginal regularizer (marginal, l2, mutual_info); with "
            "regularizer='per_state' scale the term with ent_coef instead"
        )
    return regularizer, weight
