"""The task ids, their registration with Gymnasium, and the data arguments of each task."""

from __future__ import annotations

import inspect
import os
from functools import partial
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator, register, registry

from personalization_gym.core import BanditEnv

__all__ = ["TASK_IDS", "data_kwargs", "make_task"]

# id -> entry point; every task is one step long, so no TimeLimit is needed.
_TASKS = {
    "Personalization/Music-v0": "personalization_gym.envs.music:MusicEnv",
    "Personalization/Behavior-v0": "personalization_gym.envs.behavior:BehaviorEnv",
    "Personalization/Ads-v0": "personalization_gym.envs.ads:AdsEnv",
    "Personalization/MNIST-v0": "personalization_gym.envs.images:MNISTEnv",
    "Personalization/FashionMNIST-v0": "personalization_gym.envs.images:FashionMNISTEnv",
    "Personalization/CIFAR10-v0": "personalization_gym.envs.images:CIFAR10Env",
    "Personalization/CIFAR100-v0": "personalization_gym.envs.images:CIFAR100Env",
    "Personalization/Digits-v0": "personalization_gym.envs.tabular:DigitsEnv",
    "Personalization/Tabular-v0": "personalization_gym.envs.tabular:TabularEnv",
    "Personalization/Classification-v0": "personalization_gym.envs.tabular:ClassificationEnv",
    "Personalization/Ratings-v0": "personalization_gym.envs.ratings:RatingsEnv",
}
TASK_IDS = tuple(_TASKS)


def make_task(env_id: str, **task_kwargs: Any) -> BanditEnv:
    """The bare task of a registered id (no Gymnasium wrappers), built with the spec's and these arguments."""
    spec = gym.spec(env_id)
    return load_env_creator(spec.entry_point)(**{**spec.kwargs, **task_kwargs})


def _make_vector_env(env_id: str, num_envs: int = 1, **task_kwargs: Any) -> Any:
    from personalization_gym.gym_vector import BanditVectorEnv

    return BanditVectorEnv(make_task(env_id, **task_kwargs), num_envs)


def data_kwargs(
    env_id: str, data_dir: str | os.PathLike[str] | None = None, download: bool | None = None
) -> dict[str, Any]:
    """``data_dir`` and ``download`` for ``gym.make(env_id, ...)``, kept only where the task takes them.

    Lets a script pass one data location and download policy to every task, data-free tasks included.
    ``None`` leaves the task's default.
    """
    parameters = inspect.signature(load_env_creator(gym.spec(env_id).entry_point)).parameters
    wanted = {"data_dir": data_dir, "download": download}
    return {name: value for name, value in wanted.items() if value is not None and name in parameters}


for _env_id, _entry_point in _TASKS.items():
    if _env_id not in registry:  # importlib.reload must not warn about re-registration
        # gym.make_vec(id, num_envs) builds the native batched VectorEnv; vectorization_mode="sync" still works.
        register(id=_env_id, entry_point=_entry_point, vector_entry_point=partial(_make_vector_env, _env_id))
