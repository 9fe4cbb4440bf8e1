"""A native batched Stable-Baselines3 VecEnv over one task instance.

Every episode of a personalization task is one step long, so n parallel environments are just n contexts
drawn together: one ``sample`` call and one ``realize`` call per step, no Python loop over environments.
Collecting a batch of 32 transitions as 1 step of 32 envs gives the same updates as 32 steps of one env
(see the README), many times faster.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from personalization_gym.core import BanditEnv, Batch, validate_int

__all__ = ["BanditVecEnv", "make_vec"]


class BanditVecEnv(VecEnv):
    """``n_envs`` copies of one task, stepped together with SB3's auto-reset conventions.

    ``reset()`` draws ``n_envs`` contexts; ``step(actions)`` returns their rewards, ``dones`` all True, ``infos``
    with ``terminal_observation`` (the context just answered), ``expected_reward``, ``optimal_reward`` and
    ``regret``, and the observations of ``n_envs`` fresh contexts. All the "environments" share the task
    instance: ``get_attr``, ``set_attr`` and ``env_method`` reach it (``env_method("eval_set")`` included). The
    contexts come from one ``np.random.Generator``, seeded by ``seed`` or by ``VecEnv.seed(s)`` (the first of
    SB3's per-env seeds, ``s``) at the next reset.
    """

    def __init__(self, task: BanditEnv, n_envs: int, seed: int | None = None) -> None:
        if not isinstance(task, BanditEnv):
            raise TypeError(f"task must be a personalization_gym BanditEnv, got {type(task).__name__}")
        self.task = task
        super().__init__(validate_int("n_envs", n_envs, minimum=1), task.observation_space, task.action_space)
        self._rng = np.random.default_rng(seed)
        self._batch: Batch | None = None
        self._actions: np.ndarray | None = None
        self._rows = np.arange(self.num_envs)

    def reset(self) -> np.ndarray:
        if self._seeds[0] is not None:
            self._rng = np.random.default_rng(self._seeds[0])
        self._seeds = [None] * self.num_envs
        self._batch = self.task.sample(self.num_envs, self._rng)
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return self._batch.obs.copy()

    def step_async(self, actions: np.ndarray) -> None:
        if self._batch is None:
            raise RuntimeError("BanditVecEnv.step() needs contexts: call reset() first")
        actions = np.asarray(actions)
        if actions.ndim == 2 and actions.shape[1] == 1:
            actions = actions[:, 0]
        n_actions = int(self.action_space.n)
        if actions.shape != (self.num_envs,) or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(
                f"actions must be an integer array of shape ({self.num_envs},), one per env, "
                f"got dtype {actions.dtype} and shape {actions.shape}"
            )
        if actions.min() < 0 or actions.max() >= n_actions:
            raise ValueError(f"actions must lie in [0, {n_actions}), got {actions.min()}..{actions.max()}")
        self._actions = actions

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        batch, actions, rows = self._batch, self._actions, self._rows
        rewards = np.asarray(self.task.realize(batch, actions, self._rng), dtype=np.float32)
        expected = batch.expected[rows, actions]
        optimal = batch.expected.max(axis=1)
        infos = [
            {
                "terminal_observation": obs,
                "expected_reward": float(expected_reward),
                "optimal_reward": float(optimal_reward),
                "regret": float(optimal_reward - expected_reward),
                "TimeLimit.truncated": False,
            }
            for obs, expected_reward, optimal_reward in zip(batch.obs, expected, optimal, strict=True)
        ]
        self._batch = self.task.sample(self.num_envs, self._rng)  # every episode ended: fresh contexts
        return self._batch.obs.copy(), rewards, np.ones(self.num_envs, dtype=bool), infos

    def close(self) -> None:
        self.task.close()

    def render(self, mode: str | None = None) -> np.ndarray | None:
        raise RuntimeError(
            "personalization tasks have nothing to render: a context is a feature vector or an image in the "
            "observation, and a reward a number; log them instead (sb3_entropy.EntropyCallback draws the actions)"
        )

    def get_images(self) -> Sequence[np.ndarray | None]:
        return self.render()

    def _indices(self, indices: int | Iterable[int] | None) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)

    def get_attr(self, attr_name: str, indices: int | Iterable[int] | None = None) -> list[Any]:
        return [getattr(self.task, attr_name) for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: int | Iterable[int] | None = None) -> None:
        setattr(self.task, attr_name, value)  # one shared task: every index sees it

    def env_method(
        self, method_name: str, *method_args, indices: int | Iterable[int] | None = None, **method_kwargs
    ) -> list[Any]:
        method = getattr(self.task, method_name)
        return [method(*method_args, **method_kwargs) for _ in self._indices(indices)]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: int | Iterable[int] | None = None
    ) -> list[bool]:
        return [False for _ in self._indices(indices)]


def make_vec(env_id: str, n_envs: int, seed: int | None = None, monitor: bool = True, **task_kwargs: Any) -> VecEnv:
    """A batched VecEnv of ``n_envs`` contexts per step over one instance of a registered task.

    With ``monitor`` (default) it is wrapped in SB3's ``VecMonitor``, so that SB3 logs episode rewards as usual.
    """
    spec = gym.spec(env_id)
    task = load_env_creator(spec.entry_point)(**{**spec.kwargs, **task_kwargs})
    vec_env = BanditVecEnv(task, n_envs, seed)
    return VecMonitor(vec_env) if monitor else vec_env
