"""A native batched Stable-Baselines3 VecEnv over one personalization task instance.

One ``sample`` call and one ``realize`` call per step for all environments (``personalization_gym.batched``).
Collecting a batch of 32 transitions as 1 step of 32 envs gives the same updates as 32 steps of one env
(see docs/reproducing.md), many times faster. It lives in the plugin because it is SB3's kind of vector env; the
Gymnasium flavour, which needs no SB3, is the tasks' ``personalization_gym.gym_vector`` (``gym.make_vec``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from personalization_gym.batched import NOTHING_TO_RENDER, BatchedTask
from personalization_gym.core import BanditEnv
from personalization_gym.registration import make_task

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
        self._contexts = BatchedTask(task, n_envs, seed)
        self.task = task
        super().__init__(self._contexts.n, task.observation_space, task.action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        if self._seeds[0] is not None:
            self._contexts.seed(self._seeds[0])
        self._seeds = [None] * self.num_envs
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return self._contexts.draw()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = self._contexts.check_actions(actions)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        result = self._contexts.answer(self._actions)
        infos = [
            {
                "terminal_observation": obs,
                "expected_reward": float(expected_reward),
                "optimal_reward": float(optimal_reward),
                "regret": float(optimal_reward - expected_reward),
                "TimeLimit.truncated": False,
            }
            for obs, expected_reward, optimal_reward in zip(
                result.answered.obs, result.expected, result.optimal, strict=True
            )
        ]
        obs = self._contexts.draw()  # every episode ended: fresh contexts
        return obs, result.rewards.astype(np.float32), np.ones(self.num_envs, dtype=bool), infos

    def close(self) -> None:
        self.task.close()

    def render(self, mode: str | None = None) -> np.ndarray | None:
        raise RuntimeError(NOTHING_TO_RENDER)

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
    vec_env = BanditVecEnv(make_task(env_id, **task_kwargs), n_envs, seed)
    return VecMonitor(vec_env) if monitor else vec_env
