"""Search spaces for tuning: per algorithm, the hyperparameters Optuna chooses and from what, read from YAML.

A search-space file (``sb3_entropy/experiments/search_space.yml``, or any path) maps an algorithm to its
dimensions; each is a constructor argument of the algorithm (``policy_kwargs.NAME`` for an argument of its
policy) with one distribution::

    a2c:
      learning_rate: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}
      n_steps: {type: categorical, choices: [32, 64, 128, 256]}
    ppo:
      n_epochs: {type: int, low: 1, high: 10}

Everything is checked when the file is read, before anything trains: the names against the algorithm's (and
its policy's) constructor, the distributions' bounds, and, for the batched setup, that on-policy ``n_steps``
and off-policy ``train_freq`` stay multiples of the 32 users per step.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from personalization_gym.checks import check_integer, check_number, in_context, is_bool
from sb3_entropy.agents import (
    AGENT_DEFAULTS,
    BATCH,
    algorithm_class,
    batched_hyperparameters,
    check_hyperparameter_names,
    check_hyperparameters,
)
from sb3_entropy.study.yaml_files import read_yaml

__all__ = ["DEFAULT_SEARCH_SPACE", "Dimension", "hyperparameters_of", "load_search_space"]

DEFAULT_SEARCH_SPACE = Path(__file__).resolve().parent.parent / "experiments" / "search_space.yml"
KINDS = {"float": ("low", "high", "log"), "int": ("low", "high", "log"), "categorical": ("choices",)}
POLICY_PREFIX = "policy_kwargs."


@dataclass(frozen=True)
class Dimension:
    """One hyperparameter to choose: a float or int in [low, high] (on a log scale if ``log``), or a choice."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """The value an Optuna trial suggests for this dimension."""
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log)
        if self.kind == "int":
            return trial.suggest_int(self.name, self.low, self.high, log=self.log)
        return trial.suggest_categorical(self.name, list(self.choices))

    def as_yaml(self) -> dict[str, Any]:
        """The dimension as written in a search-space file."""
        if self.kind == "categorical":
            return {"type": "categorical", "choices": list(self.choices)}
        return {"type": self.kind, "low": self.low, "high": self.high, **({"log": True} if self.log else {})}


def hyperparameters_of(params: dict[str, Any]) -> dict[str, Any]:
    """Chosen values by dimension name -> constructor arguments (``policy_kwargs.x`` nested into ``policy_kwargs``)."""
    hyperparameters: dict[str, Any] = {}
    for name, value in params.items():
        if name.startswith(POLICY_PREFIX):
            hyperparameters.setdefault("policy_kwargs", {})[name[len(POLICY_PREFIX) :]] = value
        else:
            hyperparameters[name] = value
    return hyperparameters


def load_search_space(path: str | Path | None = None, batched: bool = True) -> dict[str, list[Dimension]]:
    """Algorithm -> its dimensions, from ``path`` (default: the packaged search space), checked."""
    path = Path(path) if path is not None else DEFAULT_SEARCH_SPACE
    where = f"search space {path}"
    if not path.is_file():
        raise ValueError(f"{where}: no such file")
    data = read_yaml(path, where)
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{where}: must map algorithms ({list(AGENT_DEFAULTS)}) to their dimensions, got {data!r}")
    space = {}
    for algo, dimensions in data.items():
        if algo not in AGENT_DEFAULTS:
            raise ValueError(f"{where}: unknown algorithm {algo!r}; valid: {list(AGENT_DEFAULTS)}")
        if not isinstance(dimensions, dict) or not dimensions:
            raise ValueError(f"{where}: {algo} must map hyperparameter names to distributions, got {dimensions!r}")
        space[algo] = [
            _dimension(f"{where}: {algo}.{name}", algo, name, spec, batched) for name, spec in dimensions.items()
        ]
    return space


def _dimension(where: str, algo: str, name: Any, spec: Any, batched: bool) -> Dimension:
    _check_name(where, algo, name)
    if not isinstance(spec, dict) or spec.get("type") not in KINDS:
        raise ValueError(
            f"{where}: must be a mapping with type float, int or categorical (e.g. {{type: float, low: 1.0e-5, "
            f"high: 1.0e-2, log: true}}), got {spec!r}"
        )
    kind = spec["type"]
    unknown = sorted(set(spec) - {"type", *KINDS[kind]})
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown} for type {kind}; valid: {['type', *KINDS[kind]]}")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ValueError(f"{where}: choices must be a non-empty list of values, got {choices!r}")
        for choice in choices:
            if choice is not None and not isinstance(choice, (bool, int, float, str)):
                raise ValueError(f"{where}: a choice must be a number, a string, true/false or null, got {choice!r}")
        if len(set(map(repr, choices))) != len(choices):
            raise ValueError(f"{where}: choices must differ from each other, got {choices!r}")
        dimension = Dimension(name, kind, choices=tuple(choices))
        values = choices
    else:
        low, high, log = spec.get("low"), spec.get("high"), spec.get("log", False)
        for bound, value in (("low", low), ("high", high)):
            (check_integer if kind == "int" else check_number)(f"{where}: {bound}", value)
        if not low < high:
            raise ValueError(f"{where}: low must be below high, got low={low!r}, high={high!r}")
        if not is_bool(log):
            raise ValueError(f"{where}: log must be true or false, got {log!r}")
        if log and low <= 0:
            raise ValueError(f"{where}: a log scale needs low > 0, got low={low!r}")
        dimension = Dimension(
            name, kind, float(low) if kind == "float" else low, float(high) if kind == "float" else high, log
        )
        values = [low, high]
    if not name.startswith(POLICY_PREFIX):  # every value the space can give is one the algorithm takes
        for value in values:
            try:
                check_hyperparameters(algo, {name: value})
            except ValueError as error:
                raise in_context(where, error) from None
    if batched and name in ("n_steps", "train_freq"):  # collected as steps of BATCH users: multiples of BATCH
        for value in values:
            try:
                batched_hyperparameters(algo, {**AGENT_DEFAULTS[algo], name: value})
            except (ValueError, TypeError) as error:
                raise in_context(where, error) from None
        if kind == "int":
            raise ValueError(
                f"{where}: an int range gives values that are not multiples of {BATCH}; list the values as a "
                f"categorical (e.g. choices: [{BATCH}, {2 * BATCH}, {4 * BATCH}])"
            )
    return dimension


def _check_name(where: str, algo: str, name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: a hyperparameter name must be a string")
    if name.startswith(POLICY_PREFIX):
        policy = algorithm_class(algo).policy_aliases["MlpPolicy"]
        taken = inspect.signature(policy.__init__).parameters
        valid = sorted(p for p in taken if p not in ("self", "observation_space", "action_space", "lr_schedule"))
        argument = name[len(POLICY_PREFIX) :]
        if argument not in valid:
            raise ValueError(f"{where}: unknown argument {argument!r} of {algo}'s {policy.__name__}; valid: {valid}")
        return
    if name in ("policy_kwargs", "net_arch"):
        raise ValueError(
            f"{where}: {name} is not tuned whole: name one policy argument as policy_kwargs.NAME (net_arch is the "
            "experiment's)"
        )
    try:
        check_hyperparameter_names(algo, [name])
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
