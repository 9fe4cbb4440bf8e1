"""Tuning's files and records: the search spaces it reads, what each agent's tuning depends on and gave, and what it
writes for an experiment: tuned.yml (an experiment file), trials.csv and tuning.png.

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

import csv
import inspect
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from personalization_gym.checks import check_integer, check_number, in_context, is_bool
from sb3_entropy.agents import (
    AGENT_DEFAULTS,
    BATCH,
    algorithm_class,
    batched_hyperparameters,
    check_hyperparameter_names,
    check_hyperparameters,
)
from sb3_entropy.atomic import atomic_path, write_text_atomically
from sb3_entropy.study.experiments import Experiment, TunedAgent, read_yaml

__all__ = [
    "DEFAULT_SEARCH_SPACE",
    "OBJECTIVE",
    "TRIAL_COLUMNS",
    "AgentTuning",
    "Dimension",
    "TuningSettings",
    "hyperparameters_of",
    "load_search_space",
    "trial_reward",
    "tuned_experiment",
    "write_tuning_outputs",
]


# ------------------------------------------------------------------------------------------------------------
# Search spaces
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


# ------------------------------------------------------------------------------------------------------------
# Tuning's records: what each agent's tuning depends on, and what it gave
OBJECTIVE = (
    "mean over the tuning seeds of the final exact expected reward on the evaluation set (eval/expected_reward); "
    "no entropy or action statistic reaches the sampler or the pruner"
)


@dataclass(frozen=True)
class TuningSettings:
    """What one agent's tuning depends on: stored with its Optuna study, compared on ``--resume``."""

    experiment: str
    agent: str
    task: str
    task_kwargs: dict[str, Any]
    net_arch: list[int]
    algo: str
    base_hyperparameters: dict[str, Any]  # the experiment file's settings, which the chosen values override
    search_space: dict[str, dict[str, Any]]
    steps: int
    evaluations: int
    seeds: list[int]
    sampler_seed: int
    startup_trials: int  # TPE samples at random, and the pruner waits, until this many trials have finished
    batched: bool

    @property
    def eval_freq(self) -> int:
        return max(1, self.steps // self.evaluations)

    @property
    def warmup_evaluations(self) -> int:
        """Evaluations of a trial's first seed before the pruner may stop it (a third, as rl-baselines3-zoo)."""
        return self.evaluations // 3

    def as_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))


@dataclass
class AgentTuning:
    """One agent's finished tuning, read back from its Optuna study."""

    settings: TuningSettings
    trials: list[Any] = field(default_factory=list)  # optuna FrozenTrial, in order, interrupted ones left out
    seconds: float = 0.0  # summed over the trials

    @property
    def best(self) -> Any | None:
        complete = [trial for trial in self.trials if trial.state.name == "COMPLETE"]
        return max(complete, key=lambda trial: (trial.value, -trial.number)) if complete else None

    def count(self, state: str) -> int:
        return sum(trial.state.name == state for trial in self.trials)


def trial_reward(trial: Any) -> float:
    """A trial's reward for tables and figures: its objective, or, pruned, the first seed's last reported reward."""
    return float(trial.value) if trial.value is not None else math.nan


# ------------------------------------------------------------------------------------------------------------
# What tuning writes
TRIAL_COLUMNS = ("agent", "trial", "state", "reward", "rewards", "last_evaluation", "seconds", "error")


def _plain(value: Any) -> Any:
    """numpy scalars and tuples as plain YAML values."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _ordered(params: dict[str, Any], tuning: AgentTuning) -> dict[str, Any]:
    """A trial's values in the search space's order (Optuna keeps them sorted by name)."""
    return {name: params[name] for name in tuning.settings.search_space if name in params}


def tuned_experiment(experiment: Experiment, source: dict[str, Any], tunings: dict[str, AgentTuning]) -> dict[str, Any]:
    """The experiment file ``source`` (as read) with each tuned agent's chosen values, and a ``tuning`` section."""
    import optuna

    data = {key: value for key, value in source.items() if key not in ("frontier", "tuning")}
    agents: dict[str, Any] = {}  # the tuned agents only: the file runs them as they were tuned
    section: dict[str, Any] = {}
    for agent, tuning in tunings.items():
        best = tuning.best
        settings = tuning.settings
        agents[agent] = dict(source["agents"][agent] or {})
        entry: dict[str, Any] = {}
        if best is not None:
            chosen = hyperparameters_of(_ordered(best.params, tuning))
            policy_kwargs = {**agents[agent].get("policy_kwargs", {}), **chosen.get("policy_kwargs", {})}
            agents[agent] |= chosen | ({"policy_kwargs": policy_kwargs} if policy_kwargs else {})
            entry |= {"chosen": _ordered(best.params, tuning), "reward": best.value, "trial": best.number}
        else:
            entry |= {"chosen": {}, "reward": None}
        entry |= {
            "trials": len(tuning.trials),
            "pruned": tuning.count("PRUNED"),
            "failed": tuning.count("FAIL"),
            "steps": settings.steps,
            "evaluations": settings.evaluations,
            "seeds": list(settings.seeds),
            "sampler": {"name": "TPE", "seed": settings.sampler_seed, "startup_trials": settings.startup_trials},
            "pruner": {
                "name": "median",
                "startup_trials": settings.startup_trials,
                "warmup_evaluations": settings.warmup_evaluations,
            },
            "search_space": settings.search_space,
            "seconds": round(tuning.seconds, 1),
            "history": [
                {
                    "trial": trial.number,
                    "state": trial.state.name,
                    "reward": None if math.isnan(trial_reward(trial)) else trial_reward(trial),
                    **({"rewards": trial.user_attrs["rewards"]} if "rewards" in trial.user_attrs else {}),
                    "params": _ordered(trial.params, tuning),
                    **({"error": trial.user_attrs["error"]} if "error" in trial.user_attrs else {}),
                }
                for trial in tuning.trials
            ],
        }
        section[agent] = entry
    data["agents"] = agents
    if "paper" in data:
        data["paper"] = {agent: values for agent, values in data["paper"].items() if agent in agents}
        if not data["paper"]:
            del data["paper"]
    data["tuning"] = {
        "experiment": experiment.name,
        "objective": OBJECTIVE,
        "optuna": optuna.__version__,
        "agents": section,
    }
    return _plain(data)


def write_tuning_outputs(
    experiment: Experiment,
    source: dict[str, Any],
    tunings: dict[str, AgentTuning],
    baselines: dict[str, float],
    folder: Path,
    command: str,
) -> list[Path]:
    """``tuned.yml``, ``trials.csv`` and ``tuning.png`` in ``folder``, each written whole or not at all."""
    folder.mkdir(parents=True, exist_ok=True)
    header = (
        f"# Hyperparameters of experiment {experiment.name} tuned for reward alone (Optuna) by:\n"
        f"#   {command}\n"
        "# An experiment file: personalization-gym reproduce EXPERIMENT --hyperparams THIS_FILE runs the study with\n"
        "# the tuned agents (on seeds other than the tuning seeds). 'tuning' records, per agent, the values chosen,\n"
        "# the budget, the tuning seeds and every trial.\n"
    )
    tuned = folder / "tuned.yml"
    data = tuned_experiment(experiment, source, tunings)
    write_text_atomically(tuned, header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120))
    table = folder / "trials.csv"
    names = list(dict.fromkeys(name for tuning in tunings.values() for name in tuning.settings.search_space))
    rows = []
    for agent, tuning in tunings.items():
        for trial in tuning.trials:
            reached = max(trial.intermediate_values) if trial.intermediate_values else ""
            rows.append({
                "agent": agent, "trial": trial.number, "state": trial.state.name,
                "reward": "" if math.isnan(trial_reward(trial)) else repr(trial_reward(trial)),
                "rewards": " ".join(map(repr, trial.user_attrs.get("rewards", []))),
                "last_evaluation": reached, "seconds": f"{trial.user_attrs.get('seconds', 0.0):.1f}",
                "error": trial.user_attrs.get("error", ""), **{name: trial.params.get(name, "") for name in names},
            })  # fmt: skip
    with atomic_path(table) as temporary, open(temporary, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=[*TRIAL_COLUMNS, *names])
        writer.writeheader()
        writer.writerows(rows)
    figure = folder / "tuning.png"
    from sb3_entropy.study.plots import tuning_figure

    records = data["tuning"]["agents"]  # drawn from the record just written, as a study draws it from the file
    tuned_agents = {agent: TunedAgent.from_mapping(f"{tuned}: {agent}", entry) for agent, entry in records.items()}
    colors = {agent: experiment.color(agent) for agent in tuned_agents}
    tuning_figure(experiment.name, tuned_agents, baselines, figure, colors)
    return [tuned, table, figure]
