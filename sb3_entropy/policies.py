"""Actor-critic policies whose entropy term is a diversity regulariser: stock A2C and PPO, a one-line change.

SB3's A2C and PPO take their entropy term from ``policy.evaluate_actions(obs, actions)`` and add
``ent_coef * (-mean(entropy))`` to the loss. These policies return a regulariser's bonus there instead of the
per-state entropy, so ``ent_coef`` becomes the coefficient of that regulariser and the algorithms stay stock::

    from stable_baselines3 import PPO
    from sb3_entropy import MarginalEntropyPolicy

    model = PPO(MarginalEntropyPolicy, env, ent_coef=0.2)  # rewards H(p), the entropy across users
    model = PPO(MarginalEntropyPolicy, env, ent_coef=0.2, policy_kwargs={"regularizer": "l2"})

Everything else (acting, values, saving with ``model.save`` and loading with ``PPO.load``) is SB3's.
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy, MultiInputActorCriticPolicy

from sb3_entropy.regularizers import REGULARIZERS, check_regularizer

__all__ = [
    "MarginalEntropyCnnPolicy",
    "MarginalEntropyMixin",
    "MarginalEntropyMultiInputPolicy",
    "MarginalEntropyPolicy",
]


_NOT_FOR_Q_LEARNING = (
    "{name} is an actor-critic policy: it replaces the entropy term of A2C and PPO (sb3_entropy.regularizers), "
    "and Q-learning (DQN, QR-DQN) has no entropy term and no actor. Use it with A2C or PPO (MaskablePPO: "
    "sb3_entropy.maskable), or keep DQN's own 'MlpPolicy'"
)


class MarginalEntropyMixin:
    """Put before an SB3 actor-critic policy class: ``evaluate_actions`` returns the regulariser's bonus.

    :param regularizer: ``"marginal"`` (default: H(p) of the batch's marginal action distribution),
        ``"l2"`` (``-||p - u||^2``), ``"mutual_info"`` (``H(p) - mean H(pi(.|s))``: diverse across users,
        decisive for each) or ``"per_state"`` (SB3's own H(pi(.|s)), the baseline); see
        :mod:`sb3_entropy.regularizers` for the formulas.
    :param per_state_weight: adds ``per_state_weight * H(pi(.|s))`` to a marginal regulariser (default 0): a
        positive weight also randomises each user's recommendation, a negative one makes it more decisive.

    The coefficient of the whole bonus is the algorithm's ``ent_coef`` (with ``ent_coef=0`` training is
    bit-identical to the stock policy). The bonus is computed on each training batch (a minibatch in PPO):
    its marginal is an estimate, from those states, of p(a) over all users.
    """

    # DQN and QR-DQN build any policy class they are given and then read its Q-network: say what is wrong there
    # instead of an AttributeError about q_net.
    @property
    def q_net(self) -> Any:
        raise TypeError(_NOT_FOR_Q_LEARNING.format(name=type(self).__name__))

    @property
    def quantile_net(self) -> Any:
        raise TypeError(_NOT_FOR_Q_LEARNING.format(name=type(self).__name__))

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        *args: Any,
        regularizer: str = "marginal",
        per_state_weight: float = 0.0,
        **kwargs: Any,
    ) -> None:
        if not isinstance(action_space, spaces.Discrete):
            raise ValueError(
                f"{type(self).__name__} needs a Discrete action space (a distribution over K items), got "
                f"{action_space!r}"
            )
        regularizer, per_state_weight = check_regularizer(regularizer, per_state_weight)
        super().__init__(observation_space, action_space, *args, **kwargs)
        self.regularizer = regularizer
        self.per_state_weight = per_state_weight
        self._capturing = False
        self._captured: Distribution | None = None

    def _get_constructor_parameters(self) -> dict[str, Any]:
        # policy.save() / load() rebuild the policy from these
        return {
            **super()._get_constructor_parameters(),
            "regularizer": self.regularizer,
            "per_state_weight": self.per_state_weight,
        }

    def _get_action_dist_from_latent(self, latent_pi: torch.Tensor) -> Distribution:
        distribution = super()._get_action_dist_from_latent(latent_pi)
        if self._capturing:
            self._captured = distribution  # the one evaluate_actions builds (masked there in place, if masks)
        return distribution

    def evaluate_actions(
        self, obs: Any, actions: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """SB3's values and log-probabilities, and the regulariser's bonus in place of the entropy."""
        self._capturing = True
        try:
            values, log_prob, entropy = super().evaluate_actions(obs, actions, *args, **kwargs)
            categorical = self._captured.distribution
        finally:
            self._capturing, self._captured = False, None
        if self.regularizer == "per_state":
            return values, log_prob, entropy  # SB3's own term, untouched
        bonus = REGULARIZERS[self.regularizer](categorical)
        if self.per_state_weight:
            bonus = bonus + self.per_state_weight * entropy
        return values, log_prob, bonus


class MarginalEntropyPolicy(MarginalEntropyMixin, ActorCriticPolicy):
    """SB3's ``MlpPolicy`` (``ActorCriticPolicy``) with a diversity regulariser as its entropy term."""


class MarginalEntropyCnnPolicy(MarginalEntropyMixin, ActorCriticCnnPolicy):
    """SB3's ``CnnPolicy`` (``ActorCriticCnnPolicy``) with a diversity regulariser as its entropy term."""


class MarginalEntropyMultiInputPolicy(MarginalEntropyMixin, MultiInputActorCriticPolicy):
    """SB3's ``MultiInputPolicy`` (dict observations) with a diversity regulariser as its entropy term."""
