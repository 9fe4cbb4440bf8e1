"""Saved SB3 and sb3-contrib models as users have them: a ``model.save()`` zip, or an rl-baselines3-zoo run folder
(``logs/<algo>/<env>_<n>/``, which holds ``<env>.zip`` and ``<env>/`` with ``args.yml``, ``config.yml`` and, when
it trained with ``normalize: true``, ``vecnormalize.pkl``).

The algorithm is read from the zip itself: the module of its policy class, and for the actor-critic algorithms
that share one (A2C, PPO, TRPO) the settings only one of them saves. An rl-zoo3 folder also says its algorithm,
task and task arguments (``args.yml``), and they are used.
"""

from __future__ import annotations

import importlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from stable_baselines3.common.base_class import BaseAlgorithm

__all__ = ["ALGORITHMS", "SavedModel", "algorithm_of", "load_saved_model"]

# The algorithms a zip can be loaded as: name -> (module, class).
ALGORITHMS = {
    "A2C": ("stable_baselines3", "A2C"), "PPO": ("stable_baselines3", "PPO"), "DQN": ("stable_baselines3", "DQN"),
    "SAC": ("stable_baselines3", "SAC"), "TD3": ("stable_baselines3", "TD3"), "DDPG": ("stable_baselines3", "DDPG"),
    "TRPO": ("sb3_contrib", "TRPO"), "QRDQN": ("sb3_contrib", "QRDQN"), "ARS": ("sb3_contrib", "ARS"),
    "RecurrentPPO": ("sb3_contrib", "RecurrentPPO"), "MaskablePPO": ("sb3_contrib", "MaskablePPO"),
    "TQC": ("sb3_contrib", "TQC"), "CrossQ": ("sb3_contrib", "CrossQ"),
}  # fmt: skip
# The policy module that names one algorithm (DDPG saves TD3's policies and loads as TD3: the same network).
_BY_POLICY_MODULE = {
    "stable_baselines3.dqn.policies": "DQN", "stable_baselines3.sac.policies": "SAC",
    "stable_baselines3.td3.policies": "TD3", "sb3_contrib.qrdqn.policies": "QRDQN", "sb3_contrib.ars.policies": "ARS",
    "sb3_contrib.common.recurrent.policies": "RecurrentPPO", "sb3_contrib.common.maskable.policies": "MaskablePPO",
    "sb3_contrib.tqc.policies": "TQC", "sb3_contrib.crossq.policies": "CrossQ",
}  # fmt: skip
# A2C, PPO and TRPO save stable_baselines3.common.policies' classes: told apart by a setting only one saves.
_ACTOR_CRITIC_MARKS = (("cg_max_steps", "TRPO"), ("clip_range", "PPO"), ("vf_coef", "A2C"))


@dataclass(frozen=True)
class SavedModel:
    """A loaded model and what its files say about it: the zip, the algorithm, the task it trained on and that
    task's arguments (an rl-zoo3 folder's; None and {} for a bare zip), and its normalization statistics."""

    model: BaseAlgorithm
    path: Path  # the zip
    algo: str
    name: str  # how tables name it: the rl-zoo3 run (``ppo/Personalization-Music-v0_1``) or the zip's stem
    task: str | None = None
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    vec_normalize: Path | None = None  # vecnormalize.pkl, when the run saved one


def _zip_data(path: Path) -> dict[str, Any]:
    """The JSON ``data`` entry of an SB3 zip: a ValueError naming the file when it is not one."""
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("data"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a model saved by Stable-Baselines3 (model.save()): {error}") from None


def algorithm_of(path: str | Path) -> str:
    """The algorithm that saved the zip ``path``, read from the zip (one of :data:`ALGORITHMS`)."""
    data = _zip_data(Path(path))
    module = (data.get("policy_class") or {}).get("__module__", "")
    if module in _BY_POLICY_MODULE:
        return _BY_POLICY_MODULE[module]
    if module == "stable_baselines3.common.policies":
        for mark, algo in _ACTOR_CRITIC_MARKS:
            if mark in data:
                return algo
    raise ValueError(
        f"{path}: cannot tell which algorithm saved it (its policy class is from {module or 'no module'}); "
        f"readable: {', '.join(ALGORITHMS)}"
    )


def _algorithm_class(algo: str) -> type[BaseAlgorithm]:
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algo!r}; valid: {list(ALGORITHMS)}")
    module, name = ALGORITHMS[algo]
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:
        raise ImportError(f"{algo} models need {module}: pip install 'personalization-gym[study]'") from None


def _zoo_args(folder: Path) -> dict[str, Any]:
    """An rl-zoo3 run's ``args.yml`` (an OrderedDict as rl-zoo3 dumps it, read without running any other tag)."""
    loader = type("_ZooLoader", (yaml.SafeLoader,), {})
    loader.add_constructor(
        "tag:yaml.org,2002:python/object/apply:collections.OrderedDict",
        lambda load, node: dict(load.construct_sequence(node.value[0], deep=True)),
    )
    with open(folder / "args.yml", encoding="utf-8") as stream:
        return yaml.load(stream, Loader=loader)  # a SafeLoader with one more constructor: runs nothing


def _zoo_run(path: Path) -> tuple[Path, Path | None]:
    """The zip of ``path`` (a zip, or an rl-zoo3 run folder) and its rl-zoo3 parameter folder, if it has one."""
    if path.is_dir():
        finals = sorted(zip_ for zip_ in path.glob("*.zip") if (path / zip_.stem / "args.yml").is_file())
        if len(finals) != 1:
            found = sorted(p.name for p in path.glob("*.zip"))
            raise ValueError(
                f"{path} is not an rl-zoo3 run folder: it needs one ENV.zip beside ENV/args.yml (it holds zips "
                f"{found}); give the zip itself to evaluate another"
            )
        return finals[0], path / finals[0].stem
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file or rl-zoo3 run folder")
    beside = path.parent / path.stem  # logs/ppo/Env_1/Env.zip: the run's parameters are in Env_1/Env/
    return path, beside if (beside / "args.yml").is_file() else None


def load_saved_model(path: str | Path, device: str = "cpu") -> SavedModel:
    """Load a ``model.save()`` zip or an rl-zoo3 run folder (its final model, as ``rl_zoo3.enjoy`` loads it)."""
    zip_path, params = _zoo_run(Path(path))
    algo = algorithm_of(zip_path)
    if params is None:
        model = _algorithm_class(algo).load(zip_path, device=device)
        return SavedModel(model, zip_path, algo, zip_path.stem)
    args = _zoo_args(params)
    zoo_algo = str(args.get("algo", "")).upper()
    named = {name.upper(): name for name in ALGORITHMS}.get(zoo_algo)
    if named is not None and named != algo:
        raise ValueError(f"{params / 'args.yml'} says algo {args['algo']}, but {zip_path} was saved by {algo}")
    model = _algorithm_class(algo).load(zip_path, device=device)
    statistics = params / "vecnormalize.pkl"
    return SavedModel(
        model, zip_path, algo, f"{zip_path.parent.parent.name}/{zip_path.parent.name}", args.get("env"),
        dict(args.get("env_kwargs") or {}), statistics if statistics.is_file() else None,
    )  # fmt: skip
