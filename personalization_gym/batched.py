"""n contexts of one task per step: the engine behind both batched environments.

Every episode of a personalization task is one step long, so n parallel environments are just n contexts drawn
together: one ``sample`` call and one ``realize`` call per step, no Python loop over environments. The
Stable-Baselines3 VecEnv (``sb3_entropy.vec_env``) and the Gymnasium VectorEnv
(``personalization_gym.gym_vector``) differ only in how they package what this class returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from personalization_gym.checks import check_integer
from personalization_gym.core import BanditEnv, Batch

__all__ = ["NOTHING_TO_RENDER", "BatchedTask", "StepResult"]

NOTHING_TO_RENDER = (
    "a batched env of personalization tasks has nothing to render: a single task draws its context's rewards "
    "(gym.make(env_id, render_mode='rgb_array')), and sb3_entropy.EntropyCallback draws the actions taken"
)


@dataclass(frozen=True)
class StepResult:
    """The answered contexts of one batched step and what the actions earned."""

    answered: Batch
    rewards: np.ndarray  # float64, shape (n,)
    expected: np.ndarray  # expected reward of each action taken
    optimal: np.ndarray  # best expected reward of each context


class BatchedTask:
    """``n`` contexts of ``task`` at a time, all drawn from one ``np.random.Generator``."""

    def __init__(self, task: BanditEnv, n: int, seed: int | None = None) -> None:
        if not isinstance(task, BanditEnv):
            raise TypeError(f"task must be a personalization_gym BanditEnv, got {type(task).__name__}")
        self.task = task
        self.n = check_integer("n_envs", n, minimum=1)
        self.rng = np.random.default_rng(seed)
        self.batch: Batch | None = None
        self._rows = np.arange(self.n)

    def seed(self, seed: int | None) -> None:
        self.rng = np.random.default_rng(seed)

    def draw(self) -> np.ndarray:
        """Draw ``n`` fresh contexts; returns a copy of their observations."""
        self.batch = self.task.sample(self.n, self.rng)
        return self.batch.obs.copy()

    def check_actions(self, actions: np.ndarray) -> np.ndarray:
        """``actions`` as shape ``(n,)`` integers in range (SB3's ``(n, 1)`` is accepted); ValueError otherwise."""
        if self.batch is None:
            raise RuntimeError("a batched step needs contexts: call reset() first")
        actions = np.asarray(actions)
        if actions.ndim == 2 and actions.shape[1] == 1:
            actions = actions[:, 0]
        if actions.shape != (self.n,) or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(
                f"actions must be an integer array of shape ({self.n},), one per env, "
                f"got dtype {actions.dtype} and shape {actions.shape}"
            )
        n_actions = self.task.n_actions
        if actions.min() < 0 or actions.max() >= n_actions:
            raise ValueError(f"actions must lie in [0, {n_actions}), got {actions.min()}..{actions.max()}")
        return actions

    def answer(self, actions: np.ndarray) -> StepResult:
        """Realize the rewards of checked ``actions`` for the current contexts; the caller then draws the next."""
        batch = self.batch
        assert batch is not None  # check_actions ran first
        rewards = np.asarray(self.task.realize(batch, actions, self.rng), dtype=np.float64)
        return StepResult(batch, rewards, batch.expected[self._rows, actions], batch.expected.max(axis=1))
