"""Behavior-v0: the synthetic behavioral-personalization task of arXiv 2112.13141, as set up in 2211.11869."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from gymnasium import spaces

from personalization_gym.checks import check_integer
from personalization_gym.core import BanditEnv, Batch

__all__ = ["BehaviorEnv", "GaussianMapping"]


class GaussianMapping:
    """A random "synthetic Gaussian mapping" ``R^dim_in -> (-1, 1)^dim_out``.

    Each layer prepends a constant 1 (a bias) to its input and multiplies by a matrix of N(0, 1) draws;
    hidden layers then apply ``exp(-z^2)``, the last layer ``tanh``.
    """

    def __init__(self, dims: Sequence[int], rng: np.random.Generator) -> None:
        # weights[i] has shape (dims[i] + 1, dims[i + 1]); row 0 multiplies the prepended 1.
        self.weights = [rng.normal(0.0, 1.0, size=(dims[i] + 1, dims[i + 1])) for i in range(len(dims) - 1)]
        for weight in self.weights:
            weight.flags.writeable = False

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = x
        for weight in self.weights[:-1]:
            z = np.exp(-np.square(z @ weight[1:] + weight[0]))
        last = self.weights[-1]
        return np.tanh(z @ last[1:] + last[0])


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


class BehaviorEnv(BanditEnv):
    """Synthetic behavioral personalization (the paper's "personalization" experiment).

    ## Description

    The synthetic hyper-personalization task of Dereventsov, Webster et al. (arXiv 2112.13141) in the
    configuration of "Examining Policy Entropy of Reinforcement Learning Agents for Personalization Tasks"
    (arXiv 2211.11869). Users (states) and items (actions) are vectors; each is mapped into a shared
    feature space by its own random *synthetic Gaussian mapping*, and the reward is the cosine similarity of
    the two features. No data is needed: everything is drawn from ``task_seed``.

    ## Action Space

    ``Discrete(n_actions)`` (100 by default). Action ``a`` is the fixed vector ``self.action_vectors[a]``,
    drawn once uniformly from ``[-1, 1]^action_dim``.

    ## Observation Space

    ``Box(-1, 1, (state_dim,), float32)`` (``state_dim`` = 100 by default): the user's state.

    ## Rewards

    Deterministic: ``r(s, a) = cos(f_s(s), f_a(a))`` in ``[-1, 1]``, where ``f_s`` and ``f_a`` are
    :class:`GaussianMapping` s to ``feature_dim`` features (5 by default) with hidden layers of sizes
    ``hidden_dims`` (none by default, as in the paper). The reward is computed from the float32 state the
    agent observes.

    ## Starting State

    Each reset draws a new user, ``s ~ U([-1, 1]^state_dim)`` (``2 u - 1`` with ``u`` a float32 uniform draw).

    ## Episode End

    Every episode ends after one step (``terminated=True``). ``info`` holds ``expected_reward``,
    ``optimal_reward`` and ``regret``.

    ## Arguments

    ```python
    import gymnasium as gym
    import personalization_gym

    env = gym.make("Personalization/Behavior-v0", n_actions=100, state_dim=100, action_dim=100,
                   feature_dim=5, hidden_dims=(), n_eval=10_000, task_seed=0)
    ```

    ``task_seed`` fixes the task: ``self.task_rng`` draws, in this order, the action vectors
    ``uniform(-1, 1, (n_actions, action_dim))``, then the weights of ``f_s``, then those of ``f_a``
    (each layer ``normal(0, 1, (dim_in + 1, dim_out))``). See :class:`~personalization_gym.core.BanditEnv`
    for how ``task_seed`` becomes ``task_rng`` and the evaluation set's generator.

    ## Version History

    * v0: Initial version.
    """

    def __init__(
        self,
        n_actions: int = 100,
        state_dim: int = 100,
        action_dim: int = 100,
        feature_dim: int = 5,
        hidden_dims: Sequence[int] = (),
        n_eval: int = 10_000,
        task_seed: int = 0,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(n_eval=n_eval, task_seed=task_seed, render_mode=render_mode)
        n_actions = check_integer("n_actions", n_actions, minimum=2)
        self.state_dim = check_integer("state_dim", state_dim, minimum=1)
        self.action_dim = check_integer("action_dim", action_dim, minimum=1)
        self.feature_dim = check_integer("feature_dim", feature_dim, minimum=1)
        if isinstance(hidden_dims, (str, bytes)) or not isinstance(hidden_dims, (Sequence, np.ndarray)):
            raise ValueError(f"hidden_dims must be a sequence of integers >= 1, got {hidden_dims!r}")
        self.hidden_dims = tuple(check_integer("each of hidden_dims", d, minimum=1) for d in hidden_dims)

        self.action_vectors = self.task_rng.uniform(-1.0, 1.0, size=(n_actions, self.action_dim))
        self.state_map = GaussianMapping((self.state_dim, *self.hidden_dims, self.feature_dim), self.task_rng)
        self.action_map = GaussianMapping((self.action_dim, *self.hidden_dims, self.feature_dim), self.task_rng)
        # Action features never change: normalize them once, so a reward is one dot product.
        self._action_directions = _unit_rows(self.action_map(self.action_vectors))
        self.action_vectors.flags.writeable = False

        self.observation_space = spaces.Box(-1.0, 1.0, shape=(self.state_dim,), dtype=np.float32)
        self.action_space = spaces.Discrete(n_actions)
        self.check_eval_size()

    def sample(self, n: int, rng: np.random.Generator) -> Batch:
        # Drawn in float32 (what the agent sees; 2x faster than float64 draws), 2u - 1 is exact there.
        states = rng.random((n, self.state_dim), dtype=np.float32)
        states *= 2.0
        states -= 1.0
        expected = _unit_rows(self.state_map(states.astype(np.float64))) @ self._action_directions.T
        return Batch(obs=states, expected=expected)
