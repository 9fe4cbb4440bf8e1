"""A native batched Gymnasium ``VectorEnv`` over one task instance: what ``gym.make_vec`` builds for every task.

    envs = gym.make_vec("Personalization/Music-v0", num_envs=32)
    obs, infos = envs.reset(seed=0)
    obs, rewards, terminations, truncations, infos = envs.step(envs.action_space.sample())

Every episode ends after one step, so the env uses Gymnasium's same-step autoreset
(``metadata["autoreset_mode"] == AutoresetMode.SAME_STEP``): ``step`` returns the observations of the next
contexts, ``terminations`` all True, and the answered contexts and their step infos in ``infos["final_obs"]`` and
``infos["final_info"]``, laid out as ``SyncVectorEnv(..., autoreset_mode=SAME_STEP)`` lays them out. The default
next-step autoreset would spend every other ``step`` call on a reset. ``vectorization_mode="sync"`` or
``"async"`` still builds Gymnasium's own vector envs over single tasks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from personalization_gym.batched import NOTHING_TO_RENDER, BatchedTask
from personalization_gym.checks import check_integer
from personalization_gym.core import BanditEnv

__all__ = ["BanditVectorEnv"]


class BanditVectorEnv(VectorEnv):
    """``num_envs`` contexts of one task per step: one ``sample`` and one ``realize`` call, no loop over envs.

    All the sub-environments share the task (``envs.task``; ``call``, ``get_attr`` and ``set_attr`` reach it)
    and draw their contexts from one ``np.random.Generator``: ``reset(seed=s)`` seeds it with ``s``, and the
    contexts are then exactly ``task.sample(num_envs, np.random.default_rng(s))``, then the next ``num_envs``
    from the same generator after every step. Rewards are float64 as in ``SyncVectorEnv``.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}  # noqa: RUF012

    def __init__(self, task: BanditEnv, num_envs: int) -> None:
        self._contexts = BatchedTask(task, check_integer("num_envs", num_envs, minimum=1))
        self.task = task
        self.num_envs = self._contexts.n
        self.single_observation_space = task.observation_space
        self.single_action_space = task.action_space
        self.observation_space = batch_space(task.observation_space, self.num_envs)
        self.action_space = batch_space(task.action_space, self.num_envs)
        self._all = np.ones(self.num_envs, dtype=bool)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            if type(seed) is not int or seed < 0:
                raise ValueError(
                    f"seed must be a non-negative int or None (all {self.num_envs} envs draw their contexts from "
                    f"one generator, so there are no per-env seeds), got {seed!r}"
                )
            self._contexts.seed(seed)
        if options:
            raise ValueError(f"{type(self).__name__}.reset takes no options, got {sorted(options)}")
        return self._contexts.draw(), {}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        result = self._contexts.answer(self._contexts.check_actions(actions))
        final_obs = np.empty(self.num_envs, dtype=object)  # one array per env, as Gymnasium keeps them
        final_obs[:] = list(result.answered.obs)
        step_infos = {
            "expected_reward": result.expected.astype(np.float64),
            "optimal_reward": result.optimal.astype(np.float64),
            "regret": (result.optimal - result.expected).astype(np.float64),
        }
        final_info: dict[str, Any] = {}
        for key, values in step_infos.items():
            final_info[key], final_info[f"_{key}"] = values, self._all.copy()
        infos = {"final_obs": final_obs, "_final_obs": self._all.copy(), "final_info": final_info,
                 "_final_info": self._all.copy()}  # fmt: skip
        obs = self._contexts.draw()  # every episode ended: the next contexts, same-step autoreset
        return obs, result.rewards, self._all.copy(), np.zeros(self.num_envs, dtype=bool), infos

    def render(self) -> None:
        raise RuntimeError(NOTHING_TO_RENDER)

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """``name`` of the shared task, called (if callable) once per env, as ``SyncVectorEnv.call`` does."""
        attribute = getattr(self.task, name)
        return tuple(attribute(*args, **kwargs) if callable(attribute) else attribute for _ in range(self.num_envs))

    def get_attr(self, name: str) -> tuple[Any, ...]:
        return tuple(getattr(self.task, name) for _ in range(self.num_envs))

    def set_attr(self, name: str, values: Any) -> None:
        setattr(self.task, name, values)  # one shared task: every env sees it

    def close_extras(self, **kwargs: Any) -> None:
        self.task.close()
