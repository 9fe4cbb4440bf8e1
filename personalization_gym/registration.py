"""The task ids, their registration with Gymnasium, and the data arguments of each task."""

from __future__ import annotations

import importlib
import inspect
import os
from functools import partial
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator, register, registry

from personalization_gym.core import BanditEnv

__all__ = ["OWN_DATA_TASK_IDS", "TASK_IDS", "check_task", "data_kwargs", "make_task", "task_class", "task_spec"]

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
    "Personalization/MovieLens-v0": "personalization_gym.envs.movielens:MovieLensEnv",
}
TASK_IDS = tuple(_TASKS)
# The tasks built from a user's own data: they need arguments (features=..., rewards=..., ratings=...).
OWN_DATA_TASK_IDS = (
    "Personalization/Tabular-v0",
    "Personalization/Classification-v0",
    "Personalization/Ratings-v0",
)


def task_spec(env_id: str) -> gym.envs.registration.EnvSpec:
    """The spec of a registered id, ``module:Env-v0`` included (the module is imported first, as ``gym.make``
    does), or a ValueError that says what is valid."""
    if not isinstance(env_id, str):
        raise ValueError(f"a task id must be a string such as 'Personalization/Music-v0', got {env_id!r}")
    module, _, name = env_id.rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ValueError(f"task {env_id!r}: cannot import module {module!r} ({error})") from None
    try:
        return gym.spec(name)
    except gym.error.Error as error:
        raise ValueError(
            f"unknown task {env_id!r} ({error}); valid: {list(TASK_IDS)} or any id registered with Gymnasium, "
            "such as 'my_package:MyTask-v0' (my_package is imported first, and registers it)"
        ) from None


def task_class(env_id: str) -> type | None:
    """The class a registered id builds, or None when its entry point is a function (checked once built)."""
    creator = load_env_creator(task_spec(env_id).entry_point)
    return creator if isinstance(creator, type) else None


def check_task(env_id: str) -> None:
    """A ValueError unless ``env_id`` is registered and builds a personalization task (a BanditEnv)."""
    cls = task_class(env_id)
    if cls is not None and not issubclass(cls, BanditEnv):
        raise ValueError(
            f"task {env_id!r} builds {cls.__module__}.{cls.__name__}, which is not a personalization_gym BanditEnv: "
            "the study and train.py need a task with sample() and eval_set() (subclass BanditEnv, see docs/tasks.md)"
        )


def make_task(env_id: str, **task_kwargs: Any) -> BanditEnv:
    """The bare task of a registered id (no Gymnasium wrappers), built with the spec's and these arguments."""
    spec = task_spec(env_id)
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
    parameters = inspect.signature(load_env_creator(task_spec(env_id).entry_point)).parameters
    wanted = {"data_dir": data_dir, "download": download}
    return {name: value for name, value in wanted.items() if value is not None and name in parameters}


for _env_id, _entry_point in _TASKS.items():
    if _env_id not in registry:  # importlib.reload must not warn about re-registration
        # gym.make_vec(id, num_envs) builds the native batched VectorEnv; vectorization_mode="sync" still works.
        register(id=_env_id, entry_point=_entry_point, vector_entry_point=partial(_make_vector_env, _env_id))
