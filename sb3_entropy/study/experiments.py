"""Experiment files: the YAML that says what a study trains, read and checked, and what running one gives back.

An experiment file (``sb3_entropy/experiments/<name>.yml``, or any path) holds ``task`` (a registered task id,
``my_package:MyTask-v0`` included, whose module is imported first), ``net_arch``, ``steps``, ``eval_freq`` and
``agents``, optionally ``task_kwargs`` (the task's arguments; a data file, such as Tabular-v0's ``features``, given
as a relative path is read from the experiment file's folder), ``seeds`` (the default number of seeds per agent, at
least 2; 3 if not given), ``paper`` (agent -> published final ``reward`` and ``entropy``), ``quick`` (``steps``,
``eval_freq``, ``n_eval`` for a fast, smaller study) and ``frontier`` (a grid of regularised variants, below).

``agents`` maps a name to its settings. A name that is an algorithm (a2c, ppo, trpo, dqn, qrdqn) needs nothing
else; any other name gives its algorithm with ``algo:``. Besides the algorithm's constructor arguments
(``learning_rate``, ``ent_coef``, ...) an agent may set ``regularizer`` (a2c and ppo: see
:mod:`sb3_entropy.regularizers`) and ``per_state_weight``; its coefficient is ``ent_coef``::

    agents:
      ppo: {learning_rate: 1.0e-3}
      ppo_marginal: {algo: ppo, regularizer: marginal, ent_coef: 0.2, learning_rate: 1.0e-3}

``tuning`` (written by ``personalization-gym tune`` in the files it writes, ``tuned.yml``) records how the agents'
hyperparameters were chosen: for each tuned agent, the values chosen, the trials run, the budget and the tuning
seeds, so that a study can refuse to judge a tuned agent on the seeds it was tuned on.

``frontier`` adds, for each agent it names, one variant per regulariser and coefficient, called
``<agent>_<regularizer>_<coefficient>`` (coefficient 0 is the agent itself), and names the reference agent::

    frontier:
      reference: dqn
      agents: [a2c, ppo]
      regularizers: {marginal: [0.1, 0.3, 1.0], l2: [1.0, 3.0, 10.0]}

Every YAML file of the project (experiments, search spaces, tuned hyperparameters, ``--hp-file``) is read with
PyYAML's safe loader, except that a key written twice in one mapping is an error naming the file and both lines
(PyYAML keeps the last one without a word, so ``a2c: {}`` then ``a2c: {learning_rate: 0.1}`` would train one A2C).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from personalization_gym.checks import check_number, in_context, is_integer, is_number, is_number_text
from personalization_gym.registration import check_task, task_class
from sb3_entropy.agents import AGENT_DEFAULTS, REGULARIZABLE, check_hyperparameters, check_net_arch, policy_for
from sb3_entropy.regularizers import REGULARIZERS
from sb3_entropy.tensorboard import MEAN_RUN, agent_color

__all__ = [
    "EXPERIMENTS_DIR",
    "TUNED_DIR",
    "Agent",
    "Experiment",
    "ExperimentResult",
    "Frontier",
    "TrialRecord",
    "TunedAgent",
    "Tuning",
    "TuningSeedsError",
    "UniqueKeyLoader",
    "available_experiments",
    "check_distinct_names",
    "check_fresh_seeds",
    "experiment_file",
    "load_experiment",
    "load_yaml",
    "read_yaml",
    "with_tuned_hyperparameters",
]


# ------------------------------------------------------------------------------------------------------------
# YAML files
class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping with a key written twice (merge keys, ``<<``, are left to it)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                earlier = first.get(key)
            except TypeError:  # an unhashable key: PyYAML's own error follows
                break
            if earlier is not None:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found the key {key!r} a second time (first on line {earlier.line + 1}); write each key once",
                    key_node.start_mark,
                )
            first[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """A YAML document's contents, keys written twice refused (a ``yaml.YAMLError`` with the line)."""
    return yaml.load(text, Loader=UniqueKeyLoader)


def read_yaml(path: Path, where: str) -> Any:
    """A YAML file's contents; a syntax error or a key written twice is a ValueError naming ``where`` (which names
    the file), with the line and column."""
    try:
        with open(path, encoding="utf-8") as stream:  # the marks then name the file
            return yaml.load(stream, Loader=UniqueKeyLoader)
    except yaml.YAMLError as error:
        raise ValueError(f"{where}: not valid YAML: {' '.join(str(error).split())}") from None


# ------------------------------------------------------------------------------------------------------------
# Experiment files
EXPERIMENTS_DIR = Path(__file__).resolve().parent.parent / "experiments"
TUNED_DIR = EXPERIMENTS_DIR / "tuned"  # the tuned hyperparameters that ship with the package, one file per experiment
NOT_EXPERIMENTS = (
    "search_space",
    "search_space_movielens",
)  # YAML files beside the experiments that are not experiments
EXPERIMENT_KEYS = (
    "agents", "eval_freq", "frontier", "net_arch", "paper", "quick", "seeds", "steps", "task", "task_kwargs", "tuning",
)  # fmt: skip
TUNING_KEYS = ("agents", "experiment", "objective", "optuna")
TUNED_AGENT_KEYS = (
    "chosen", "evaluations", "failed", "history", "pruned", "pruner", "reward", "sampler", "search_space", "seconds",
    "seeds", "steps", "trial", "trials",
)  # fmt: skip
DEFAULT_SEEDS = 3
QUICK_KEYS = ("eval_freq", "n_eval", "steps")
FRONTIER_KEYS = ("agents", "reference", "regularizers")


@contextmanager
def _within(where: str) -> Iterator[None]:
    """Re-raise a ValueError raised inside with ``where`` (the file and key the value was read from) in front."""
    try:
        yield
    except ValueError as error:
        raise in_context(where, error) from None


@dataclass
class Agent:
    """One agent of a study: an algorithm, its hyperparameters and, optionally, a diversity regulariser. Checks
    itself: an unknown algorithm, a hyperparameter of the wrong kind or a regulariser the algorithm cannot take is
    a ValueError."""

    algo: str
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    regularizer: str | None = None
    per_state_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.algo not in AGENT_DEFAULTS:
            raise ValueError(f"unknown algo {self.algo!r}; valid: {list(AGENT_DEFAULTS)}")
        _, regularized = policy_for(self.algo, self.regularizer, self.per_state_weight)
        check_hyperparameters(self.algo, self.hyperparameters)
        self.regularizer = regularized.get("regularizer")
        self.per_state_weight = regularized.get("per_state_weight", 0.0)

    @property
    def coefficient(self) -> float:
        """The regulariser's coefficient: SB3's ``ent_coef`` (0, SB3's default, when not set)."""
        return float(self.hyperparameters.get("ent_coef", 0.0))

    @classmethod
    def from_settings(cls, where: str, name: Any, settings: Any) -> Agent:
        """The agent an experiment file's ``agents.<name>`` describes: its algorithm is ``algo`` or its name."""
        if not isinstance(name, str) or not name.replace("_", "").replace(".", "").replace("-", "").isalnum():
            raise ValueError(f"{where}: agent name {name!r} must be letters, digits, '_', '-' or '.' (it names files)")
        if name == MEAN_RUN:
            raise ValueError(
                f"{where}: agent name {name!r} is the TensorBoard folder of the means over seeds: rename it"
            )
        if settings is not None and not isinstance(settings, dict):
            raise ValueError(f"{where}.{name} must be a mapping of the agent's settings, got {settings!r}")
        settings = dict(settings or {})
        if "algo" not in settings and name not in AGENT_DEFAULTS:
            raise ValueError(
                f"{where}: unknown agent {name!r}: name an agent after its algorithm ({list(AGENT_DEFAULTS)}) or give "
                "its algorithm with algo:"
            )
        algo = settings.pop("algo", name)
        regularizer, per_state_weight = settings.pop("regularizer", None), settings.pop("per_state_weight", 0.0)
        with _within(f"{where}.{name}"):
            return cls(algo, settings, regularizer, per_state_weight)


@dataclass
class Frontier:
    """A diversity-reward frontier: regularised variants of ``agents`` against the ``reference`` agent. Checks
    itself: ``agents`` a non-empty list, each regulariser's coefficients an increasing list of numbers > 0."""

    reference: str
    agents: list[str]
    regularizers: dict[str, list[float]]

    def __post_init__(self) -> None:
        if not isinstance(self.agents, list) or not self.agents:
            raise ValueError(f"agents must be a non-empty list of agent names, got {self.agents!r}")
        _check_keys("regularizers", self.regularizers, tuple(REGULARIZERS))
        for regularizer, coefficients in self.regularizers.items():
            if (
                not isinstance(coefficients, list)
                or not coefficients
                or not all(is_number(c) and math.isfinite(c) and c > 0 for c in coefficients)
                or sorted(set(coefficients)) != coefficients
            ):
                raise ValueError(
                    f"regularizers.{regularizer} must be an increasing list of coefficients > 0 (0 is the "
                    f"unregularised agent itself), got {coefficients!r}"
                )
        self.agents = list(self.agents)
        self.regularizers = {reg: [float(c) for c in cs] for reg, cs in self.regularizers.items()}

    def variants(self) -> dict[str, tuple[str, str, float]]:
        """Variant name -> (the agent it regularises, regularizer, coefficient), in grid order."""
        return {
            f"{name}_{regularizer}_{coefficient:g}": (name, regularizer, coefficient)
            for name in self.agents
            for regularizer, coefficients in self.regularizers.items()
            for coefficient in coefficients
        }

    @classmethod
    def from_mapping(cls, where: str, data: Any, agents: dict[str, Agent]) -> Frontier:
        """An experiment file's ``frontier``, checked against the file's ``agents``."""
        _check_keys(where, data, FRONTIER_KEYS, required=FRONTIER_KEYS)
        with _within(where):
            frontier = cls(data["reference"], data["agents"], data["regularizers"])
        if frontier.reference not in agents:
            raise ValueError(f"{where}: reference {frontier.reference!r} is not one of the agents {list(agents)}")
        valid = [n for n, a in agents.items() if a.algo in REGULARIZABLE and a.regularizer is None]
        for name in frontier.agents:
            if name not in valid:
                raise ValueError(f"{where}: cannot regularise {name!r}; valid: unregularised agents {valid}")
            if agents[name].coefficient != 0:
                raise ValueError(
                    f"{where}: agent {name} sets ent_coef={agents[name].coefficient:g}, but it is the frontier's "
                    "point at coefficient 0: leave ent_coef out (the grid sets it for each variant)"
                )
        return frontier


TRIAL_STATES = ("COMPLETE", "PRUNED", "FAIL")
TRIAL_KEYS = ("error", "params", "reward", "rewards", "state", "trial")


@dataclass(frozen=True)
class TrialRecord:
    """One finished trial of a tuning, as a tuned file's ``history`` records it. Checks itself: the trial number
    an integer >= 0, the state COMPLETE, PRUNED or FAIL, a complete trial with a reward and a failed one without."""

    number: int
    state: str
    reward: float | None  # complete: the mean final reward over the tuning seeds; pruned: the first seed's when stopped
    params: dict[str, Any]
    rewards: tuple[float, ...] = ()  # complete: one per tuning seed
    error: str | None = None  # failed: what went wrong

    def __post_init__(self) -> None:
        if not is_integer(self.number) or self.number < 0:
            raise ValueError(f"trial must be an integer >= 0 (the trial's number), got {self.number!r}")
        if self.state not in TRIAL_STATES:
            raise ValueError(f"state must be one of {list(TRIAL_STATES)}, got {self.state!r}")
        if (self.state == "COMPLETE" and self.reward is None) or (self.state == "FAIL" and self.reward is not None):
            raise ValueError(f"reward: a complete trial has one, a failed trial none; trial {self.number} is "
                             f"{self.state} with reward {self.reward!r}")  # fmt: skip
        if self.reward is not None:
            check_number("reward", self.reward)
        for value in self.rewards:
            check_number("rewards", value)
        if not isinstance(self.params, dict):
            raise ValueError(f"params must map hyperparameters to the trial's values, got {self.params!r}")
        if self.error is not None and not isinstance(self.error, str):
            raise ValueError(f"error must be the text of what went wrong, got {self.error!r}")

    @classmethod
    def from_mapping(cls, where: str, entry: Any) -> TrialRecord:
        """One entry of a tuned agent's ``history``."""
        _check_keys(where, entry, TRIAL_KEYS, required=("trial", "state", "params"))
        rewards = entry.get("rewards", [])
        with _within(where):
            if not isinstance(rewards, list):
                raise ValueError(f"rewards must be a list of numbers (one per tuning seed), got {rewards!r}")
            reward = entry.get("reward")
            return cls(entry["trial"], entry["state"], float(reward) if is_number(reward) else reward,
                       entry["params"], tuple(float(r) if is_number(r) else r for r in rewards),
                       entry.get("error"))  # fmt: skip


@dataclass(frozen=True)
class TunedAgent:
    """How one agent's hyperparameters were chosen: the values, the trials run, the budget, the tuning seeds.
    Checks itself: counts are integers >= 0, the seeds a non-empty tuple of integers >= 0, and a ``history``
    agrees with the counts and the choice (its trials numbered once each, as many as ``trials``, as many pruned
    and failed as said, the chosen ``trial`` a complete one of reward ``reward``)."""

    chosen: dict[str, Any]  # by search-space name (policy_kwargs.x for a policy argument)
    trials: int  # finished trials: complete, pruned and failed
    pruned: int
    failed: int
    steps: int  # training steps per trial run
    seeds: tuple[int, ...]  # the tuning seeds: every trial trained on each
    reward: float | None  # the chosen trial's objective, its mean final expected reward over the tuning seeds
    seconds: float | None = None  # the trials' run time, summed
    trial: int | None = None  # the chosen trial's number
    history: tuple[TrialRecord, ...] = ()  # every finished trial, in order (files written by tune have it)

    def __post_init__(self) -> None:
        counts = [self.trials, self.pruned, self.failed, self.steps]
        if not all(is_integer(count) and count >= 0 for count in counts):
            raise ValueError(f"trials, pruned, failed and steps must be integers >= 0, got {counts}")
        if (
            not isinstance(self.seeds, tuple)
            or not self.seeds
            or not all(is_integer(seed) and seed >= 0 for seed in self.seeds)
        ):
            raise ValueError(f"seeds must be a non-empty list of integers >= 0 (the tuning seeds), got {self.seeds!r}")
        if not isinstance(self.chosen, dict):
            raise ValueError(f"chosen must map hyperparameters to the values chosen, got {self.chosen!r}")
        for name, value in (("reward", self.reward), ("seconds", self.seconds)):
            if value is not None:
                check_number(name, value)
        if self.trial is not None and (not is_integer(self.trial) or self.trial < 0):
            raise ValueError(f"trial must be an integer >= 0 (the chosen trial's number), got {self.trial!r}")
        if self.history:
            self._check_history()

    def _check_history(self) -> None:
        numbers = [record.number for record in self.history]
        if len(set(numbers)) != len(numbers):
            repeated = sorted({number for number in numbers if numbers.count(number) > 1})
            raise ValueError(f"history lists trial(s) {repeated} more than once; each finished trial once")
        said = {"trials": self.trials, "pruned": self.pruned, "failed": self.failed}
        found = {"trials": len(self.history), **{key: self.count(state) for key, state in
                                                  (("pruned", "PRUNED"), ("failed", "FAIL"))}}  # fmt: skip
        if said != found:
            raise ValueError(f"history holds {found}, and the counts say {said}: the two must agree")
        chosen = next((record for record in self.history if record.number == self.trial), None)
        if self.trial is not None and (chosen is None or chosen.state != "COMPLETE" or chosen.reward != self.reward):
            raise ValueError(
                f"trial {self.trial} (reward {self.reward}) is the one chosen, and history "
                f"{'has no such trial' if chosen is None else f'gives it state {chosen.state}, reward {chosen.reward}'}"
                ": the chosen trial must be a complete trial of history with that reward"
            )

    def count(self, state: str) -> int:
        """How many trials of ``history`` ended in ``state`` (COMPLETE, PRUNED or FAIL)."""
        return sum(record.state == state for record in self.history)

    @classmethod
    def from_mapping(cls, where: str, entry: Any) -> TunedAgent:
        """One agent of a tuned file's ``tuning.agents``."""
        _check_keys(where, entry, TUNED_AGENT_KEYS, required=("chosen", "trials", "pruned", "failed", "steps", "seeds"))
        seeds = tuple(entry["seeds"]) if isinstance(entry["seeds"], list) else entry["seeds"]
        reward, seconds = entry.get("reward"), entry.get("seconds")
        history = entry.get("history", [])
        if not isinstance(history, list):
            raise ValueError(f"{where}: history must be a list of trials, got {type(history).__name__}")
        records = tuple(TrialRecord.from_mapping(f"{where}: history[{i}]", item) for i, item in enumerate(history))
        with _within(where):
            return cls(
                entry["chosen"], entry["trials"], entry["pruned"], entry["failed"], entry["steps"], seeds,
                reward if reward is None or not is_number(reward) else float(reward),
                seconds if seconds is None or not is_number(seconds) else float(seconds),
                entry.get("trial"), records,
            )  # fmt: skip


@dataclass(frozen=True)
class Tuning:
    """An experiment file's ``tuning`` section: which agents were tuned, how, and on which seeds."""

    experiment: str  # the experiment the agents were tuned on
    path: str  # the file it was read from
    agents: dict[str, TunedAgent]

    def __post_init__(self) -> None:
        if not isinstance(self.experiment, str):
            raise ValueError(f"experiment must be the name of the experiment tuned, got {self.experiment!r}")

    @property
    def seeds(self) -> list[int]:
        return sorted({seed for agent in self.agents.values() for seed in agent.seeds})

    @classmethod
    def from_mapping(cls, where: str, data: Any, agents: dict[str, Agent], path: str) -> Tuning:
        """An experiment file's ``tuning``, checked against the file's ``agents``."""
        _check_keys(where, data, TUNING_KEYS, required=("agents", "experiment"))
        _check_keys(f"{where}: agents", data["agents"], tuple(agents))
        tuned = {
            agent: TunedAgent.from_mapping(f"{where}: agents.{agent}", entry) for agent, entry in data["agents"].items()
        }
        with _within(where):
            return cls(data["experiment"], path, tuned)


@dataclass
class Experiment:
    """What a study trains: a task, a network, a budget, the agents. Checks its own values (a ValueError that
    names the experiment); :meth:`from_mapping` reads an experiment file's mapping into one."""

    name: str
    task: str
    net_arch: list[int]
    steps: int
    eval_freq: int
    agents: dict[str, Agent]
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    paper: dict[str, dict[str, float]] = field(default_factory=dict)
    quick: dict[str, int] = field(default_factory=dict)
    frontier: Frontier | None = None
    seeds: int = DEFAULT_SEEDS  # the default number of seeds per agent
    tuning: Tuning | None = None
    path: str = ""  # the file it was read from

    @property
    def where(self) -> str:
        """How errors name the experiment: its name and file."""
        return f"experiment {self.name}" + (f" ({self.path})" if self.path else "")

    def color(self, agent: str) -> str:
        """An agent's colour by its place in the experiment (a study's TensorBoard root may give another)."""
        return agent_color(list(self.agents).index(agent))

    def __post_init__(self) -> None:
        with _within(self.where):
            check_task(self.task)
            self.net_arch = check_net_arch(self.net_arch)
            for name, agent in self.agents.items() if isinstance(self.agents, dict) else ():
                inner = (agent.hyperparameters.get("policy_kwargs") or {}).get("net_arch")
                if inner is not None:  # one setting, one place: the file's net_arch is every agent's network
                    raise ValueError(f"agents.{name}: policy_kwargs.net_arch {inner!r} and net_arch {self.net_arch} "
                                     "both set the network: give net_arch once, for every agent")  # fmt: skip
            self.steps, self.eval_freq = _count("steps", self.steps), _count("eval_freq", self.eval_freq)
            _check_keys("quick", self.quick, QUICK_KEYS)
            self.quick = {key: _count(f"quick.{key}", value) for key, value in self.quick.items()}
            if not (is_integer(self.seeds) and self.seeds >= 2):
                raise ValueError(f"seeds must be an integer >= 2 (an interval needs two), got {self.seeds!r}")
            self.paper = {agent: _paper_values(f"paper.{agent}", values) for agent, values in self.paper.items()}
            if not isinstance(self.agents, dict) or not self.agents:
                raise ValueError(f"agents must be a mapping of agent names to their settings, got {self.agents!r}")

    @classmethod
    def from_mapping(cls, data: Any, path: Path) -> Experiment:
        """The experiment an experiment file's mapping describes; relative data files are read from its folder."""
        where = f"experiment {path.stem} ({path})"
        _check_keys(where, data, EXPERIMENT_KEYS, required=("task", "net_arch", "steps", "eval_freq", "agents"))
        with _within(where):
            check_task(data["task"])  # before the data files, which the task names
        task_kwargs = data.get("task_kwargs") or {}
        if not isinstance(task_kwargs, dict):
            raise ValueError(f"{where}: task_kwargs must be a mapping of the task's arguments, got {task_kwargs!r}")
        if not isinstance(data["agents"], dict) or not data["agents"]:
            raise ValueError(
                f"{where}: agents must be a mapping of agent names to their settings, got {data['agents']!r}"
            )
        agents = {name: Agent.from_settings(f"{where}: agents", name, value) for name, value in data["agents"].items()}
        frontier = Frontier.from_mapping(f"{where}: frontier", data["frontier"], agents) if "frontier" in data else None
        agents |= _variants(where, frontier, agents)
        paper = data.get("paper") or {}
        _check_keys(f"{where}: paper", paper, tuple(agents))
        tuning = data.get("tuning")
        return cls(
            name=path.stem,
            task=data["task"],
            net_arch=data["net_arch"],
            steps=data["steps"],
            eval_freq=data["eval_freq"],
            agents=agents,
            task_kwargs=_with_data_files(task_kwargs, data["task"], path.parent, where),
            paper=paper,
            quick=data.get("quick") or {},
            frontier=frontier,
            seeds=data.get("seeds", DEFAULT_SEEDS),
            tuning=None if tuning is None else Tuning.from_mapping(f"{where}: tuning", tuning, agents, str(path)),
            path=str(path),
        )


MAX_COUNT = 2**53  # steps are logged as floats too (TensorBoard, results.csv): beyond this they are not exact


def _count(name: str, value: Any) -> int:
    """An integer in [1, 2**53] (steps, eval_freq), with a word on YAML's ``1e3``, which it reads as text."""
    if not (is_integer(value) and value >= 1):
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}{_yaml_hint(value)}")
    if value > MAX_COUNT:
        raise ValueError(f"{name} must be at most 2**53 = {MAX_COUNT:,} (steps are logged as floats), got {value:,}")
    return int(value)


def _paper_values(where: str, values: Any) -> dict[str, float]:
    """A published agent's ``reward`` (a finite number) and ``entropy`` (a number >= 0, nats)."""
    _check_keys(where, values, ("entropy", "reward"))
    for key, value in values.items():
        if key == "entropy":
            check_number(f"{where}.{key} (nats)", value, at_least=0)
        else:
            check_number(f"{where}.{key}", value)
    return {key: float(value) for key, value in values.items()}


def _variants(where: str, frontier: Frontier | None, agents: dict[str, Agent]) -> dict[str, Agent]:
    """The frontier's variants (none without one); a ValueError when one's name is an agent's."""
    if frontier is None:
        return {}
    variants = frontier_agents(frontier, agents)
    clashes = sorted(set(variants) & set(agents))
    if clashes:
        raise ValueError(f"{where}: agents {clashes} clash with the names of the frontier's variants")
    return variants


def available_experiments() -> list[str]:
    return sorted(path.stem for path in EXPERIMENTS_DIR.glob("*.yml") if path.stem not in NOT_EXPERIMENTS)


def _check_keys(where: str, mapping: Any, valid: tuple[str, ...], required: tuple[str, ...] = ()) -> None:
    if not isinstance(mapping, dict):
        raise ValueError(f"{where} must be a mapping, got {type(mapping).__name__}")
    unknown = sorted(set(mapping) - set(valid))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; valid: {list(valid)}")
    missing = [key for key in required if key not in mapping]
    if missing:
        raise ValueError(f"{where}: missing key(s) {missing}")


def _yaml_hint(value: Any) -> str:
    """A note for a number YAML read as text (``1e3``, which YAML 1.1 reads as a string)."""
    return " (YAML reads 1e3 as text: write 1000)" if isinstance(value, str) and is_number_text(value) else ""


def frontier_agents(frontier: Frontier, agents: dict[str, Agent]) -> dict[str, Agent]:
    """The variants a frontier adds: the agent it regularises, with the regularizer and ``ent_coef`` of the point."""
    return {
        name: Agent(agents[base].algo, {**agents[base].hyperparameters, "ent_coef": coefficient}, regularizer)
        for name, (base, regularizer, coefficient) in frontier.variants().items()
    }


def experiment_file(name: str) -> Path:
    """The file of a packaged experiment by name, or a YAML file by path; a ValueError if there is none."""
    path = Path(name)
    if path.suffix not in (".yml", ".yaml"):
        path = EXPERIMENTS_DIR / f"{name}.yml"
        if not path.is_file() or name in NOT_EXPERIMENTS:
            raise ValueError(f"unknown experiment {name!r}; valid: {available_experiments()} or a path to a .yml file")
    elif not path.is_file():
        raise ValueError(f"experiment file {path} not found")
    return path


def check_distinct_names(experiments: list[Experiment]) -> None:
    """A ValueError when two experiments share a name: each writes its runs, results and figures into a folder of
    its name, so the second would overwrite the first's. Both are named, with their files."""
    first: dict[str, Experiment] = {}
    for experiment in experiments:
        other = first.setdefault(experiment.name, experiment)
        if other is not experiment:
            raise ValueError(
                f"{other.where} and {experiment.where} share the name {experiment.name!r}: both would write the "
                f"output folder {experiment.name}/, the second over the first; rename one of the files"
            )


def load_experiment(name: str) -> Experiment:
    """A packaged experiment by name (see :func:`available_experiments`) or a YAML file by path."""
    path = experiment_file(name)
    return Experiment.from_mapping(read_yaml(path, f"experiment {path.stem} ({path})"), path)


def _with_data_files(task_kwargs: dict[str, Any], task: str, folder: Path, where: str) -> dict[str, Any]:
    """``task_kwargs`` with the task's data-file arguments (its ``FILE_ARGUMENTS``) read from the experiment file's
    folder when they are relative paths, and checked to exist before anything trains."""
    task_kwargs = dict(task_kwargs)
    for name in getattr(task_class(task), "FILE_ARGUMENTS", ()):
        value = task_kwargs.get(name)
        if not isinstance(value, str):
            continue  # not given, or given as numbers in the file itself
        file = Path(value).expanduser()
        file = file if file.is_absolute() else folder / file
        if not file.is_file():
            raise ValueError(f"{where}: task_kwargs.{name}: file {file} not found (relative paths are read from the "
                             f"experiment file's folder, {folder})")  # fmt: skip
        task_kwargs[name] = str(file.resolve())
    return task_kwargs


def with_tuned_hyperparameters(experiment: Experiment, tuned: Experiment) -> Experiment:
    """``experiment`` with the hyperparameters of the agents ``tuned`` (a file personalization-gym tune wrote) tuned,
    renamed ``<name>_tuned``; its other agents keep their settings."""
    where = f"tuned file {tuned.tuning.path if tuned.tuning else tuned.name}"
    if tuned.tuning is None:
        raise ValueError(
            f"{where}: the file has no tuning section; give a tuned.yml that personalization-gym tune wrote"
        )
    if (tuned.task, tuned.net_arch, tuned.task_kwargs) != (
        experiment.task,
        experiment.net_arch,
        experiment.task_kwargs,
    ):
        raise ValueError(
            f"{where}: tuned on {tuned.task} {tuned.task_kwargs or ''} with net_arch {tuned.net_arch}, but experiment "
            f"{experiment.name} is {experiment.task} {experiment.task_kwargs or ''} with net_arch {experiment.net_arch}"
        )
    for agent in tuned.tuning.agents:
        if agent not in experiment.agents or tuned.agents[agent].algo != experiment.agents[agent].algo:
            raise ValueError(f"{where}: agent {agent} is not an agent of experiment {experiment.name} "
                             f"({list(experiment.agents)})")  # fmt: skip
    agents = {
        name: tuned.agents[name] if name in tuned.tuning.agents else agent for name, agent in experiment.agents.items()
    }
    return dataclasses.replace(experiment, name=f"{experiment.name}_tuned", agents=agents, tuning=tuned.tuning)


class TuningSeedsError(ValueError):
    """A study that would judge tuned agents on seeds they were tuned on."""


def check_fresh_seeds(experiment: Experiment, seeds: list[int]) -> None:
    """Refuse to judge tuned agents on a seed they were tuned on: a ValueError naming both sets of seeds."""
    if experiment.tuning is None:
        return
    overlap = sorted(set(seeds) & set(experiment.tuning.seeds))
    if overlap:
        raise TuningSeedsError(
            f"experiment {experiment.name}: its agents were tuned on seeds {experiment.tuning.seeds} "
            f"({experiment.tuning.path}), and the study would run seeds {_seed_range(seeds)}: seed(s) {overlap} in "
            "both. A tuned agent must be judged on seeds it was not tuned on: tune on other seeds, or run fewer seeds"
        )


def _seed_range(seeds: list[int]) -> str:
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))) and len(seeds) > 2:
        return f"{seeds[0]}-{seeds[-1]}"
    return str(seeds)


@dataclass
class ExperimentResult:
    experiment: Experiment
    rows: list[dict[str, Any]] = field(default_factory=list)
    histories: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    baselines: dict[str, float] = field(default_factory=dict)  # random policy and oracle on the evaluation set
    missing_data: str | None = None
    failures: dict[tuple[str, int], str] = field(default_factory=dict)
    seconds: float = 0.0  # wall time of this call
    run_seconds: float = 0.0  # training time summed over the runs, those kept from an earlier call included
    resumed_runs: int = 0  # runs kept from an earlier call (--resume) rather than trained in this one
    quick: bool = False
    task_note: str | None = None  # what building the task measured (Ratings-v0: its low-rank fit's held-out error)
    colors: dict[str, str] = field(default_factory=dict)  # each agent's colour, as its TensorBoard root gives it
    # where each run trained (sb3_entropy.study.runs); None for a run stored before runs recorded it
    environments: dict[tuple[str, int], dict[str, Any] | None] = field(default_factory=dict)

    def color(self, agent: str) -> str:
        """An agent's colour in every view: as its study's TensorBoard root gives it, else by its place in the
        experiment."""
        return self.colors.get(agent) or self.experiment.color(agent)
