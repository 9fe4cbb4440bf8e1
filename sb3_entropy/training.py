"""Train a stock SB3 agent on a task with EntropyCallback attached: the logic behind personalization-gym train."""

from __future__ import annotations

import collections.abc
import inspect
import math
import numbers
import os
import re
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import yaml
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecMonitor

import personalization_gym
from personalization_gym.vector import BanditVecEnv
from sb3_entropy.callback import EntropyCallback
from sb3_entropy.policies import MarginalEntropyPolicy
from sb3_entropy.regularizers import check_regularizer
from sb3_entropy.tensorboard import (
    HParamsCallback,
    evaluation_log_interval,
    run_folder,
    run_layout,
    tensorboard_logger,
)

__all__ = [
    "AGENT_DEFAULTS",
    "ON_POLICY",
    "Q_LEARNING",
    "REGULARIZABLE",
    "RunSpec",
    "algorithm_class",
    "build_model",
    "check_hyperparameter_names",
    "check_hyperparameters",
    "check_run",
    "paper_agent",
    "parse_hp",
    "parse_net_arch",
    "train",
    "use_foreach_optimizer",
]

# The paper's reference code: batches of 32 transitions per update for every agent; otherwise SB3's defaults.
AGENT_DEFAULTS: dict[str, dict[str, Any]] = {
    "a2c": {"n_steps": 32},
    "ppo": {"n_steps": 32, "batch_size": 32, "n_epochs": 1},
    "trpo": {"n_steps": 32, "batch_size": 32},
    "dqn": {"batch_size": 32, "train_freq": 32, "learning_starts": 0, "buffer_size": 10_000},
    "qrdqn": {"batch_size": 32, "train_freq": 32, "learning_starts": 0, "buffer_size": 10_000},
}


# The two families the paper compares: policy optimization (on-policy actor-critics) and Q-learning.
ON_POLICY = ("a2c", "ppo", "trpo")
Q_LEARNING = ("dqn", "qrdqn")

# Agents whose entropy term a diversity regulariser can replace (sb3_entropy.policies).
REGULARIZABLE = ("a2c", "ppo")

# Batched runs collect this many transitions per environment step (one per parallel context).
BATCH = 32


def batched_hyperparameters(name: str, hyperparameters: dict[str, Any], n_envs: int = BATCH) -> dict[str, Any]:
    """The same updates collected as 1 step of ``n_envs`` environments instead of ``n_envs`` steps of one.

    Every episode is one step long, so a batch of 32 independent contexts is the same whether it comes from
    32 steps of one env or 1 step of 32 envs: on-policy ``n_steps`` and off-policy ``train_freq`` (in steps)
    are divided by ``n_envs``, which they must be multiples of.
    """
    hyperparameters = dict(hyperparameters)
    if name in ON_POLICY:
        key, value = "n_steps", hyperparameters.get("n_steps", 5 if name == "a2c" else 2048)
    else:
        key, value = "train_freq", hyperparameters.get("train_freq", 1)
        if isinstance(value, (tuple, list)):
            if value[1] != "step":
                return hyperparameters  # (n, "episode"): 32 envs finish 32 one-step episodes per step already
            value = value[0]
    if value % n_envs:
        raise ValueError(
            f"{name}: {key}={value} is not a multiple of {n_envs}, so it cannot be collected in batches of "
            f"{n_envs} envs; use the literal setup (--literal) or a multiple of {n_envs}"
        )
    hyperparameters[key] = value // n_envs
    return hyperparameters


def algorithm_class(name: str) -> type:
    """The SB3 (or sb3-contrib) class of an agent name: a2c, ppo, dqn, qrdqn, trpo."""
    if name not in AGENT_DEFAULTS:
        raise ValueError(f"unknown algorithm {name!r}; valid: {sorted(AGENT_DEFAULTS)}")
    if name in ("qrdqn", "trpo"):
        import sb3_contrib

        return getattr(sb3_contrib, name.upper())
    import stable_baselines3

    return getattr(stable_baselines3, name.upper())


# Ranges of the hyperparameters whose meaning bounds them (SB3 itself checks few of them, some only mid-training).
# A value outside is refused before anything trains; the rest is left to the algorithm's constructor.
_AT_LEAST_1 = (
    "n_steps", "batch_size", "n_epochs", "buffer_size", "target_update_interval", "cg_max_steps", "n_critic_updates",
    "line_search_max_iter", "sub_sampling_factor", "stats_window_size", "train_freq",
)  # fmt: skip
_UNIT_INTERVAL = (
    "gamma", "gae_lambda", "tau", "exploration_fraction", "exploration_initial_eps", "exploration_final_eps",
)  # fmt: skip
_POSITIVE = ("learning_rate", "clip_range", "clip_range_vf", "max_grad_norm", "target_kl", "rms_prop_eps")
_NON_NEGATIVE = ("ent_coef", "vf_coef", "learning_starts", "cg_damping")
HYPERPARAMETER_RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    **{name: (lambda v: v >= 1, ">= 1") for name in _AT_LEAST_1},
    **{name: (lambda v: 0 <= v <= 1, "in [0, 1]") for name in _UNIT_INTERVAL},
    **{name: (lambda v: v > 0, "> 0") for name in _POSITIVE},
    **{name: (lambda v: v >= 0, ">= 0") for name in _NON_NEGATIVE},
    "line_search_shrinking_factor": (lambda v: 0 < v < 1, "in (0, 1)"),
    "gradient_steps": (lambda v: v >= 1 or v == -1, ">= 1, or -1 (as many as environment steps)"),
}


def check_hyperparameter_names(name: str, names: Iterable[str]) -> None:
    """Raise ValueError naming any key the algorithm's constructor does not take, and the valid ones."""
    parameters = inspect.signature(algorithm_class(name).__init__).parameters
    reserved = ("self", "policy", "env", "_init_setup_model", "kwargs", "seed", "device", "tensorboard_log")
    valid = sorted(p for p in parameters if p not in reserved)
    unknown = sorted(set(names) - set(valid))
    if unknown:
        raise ValueError(f"unknown hyperparameter(s) {unknown} for {name}; valid: {valid}")


def check_hyperparameters(name: str, hyperparameters: dict[str, Any]) -> None:
    """Raise ValueError naming any key the algorithm's constructor does not take (and the valid ones), any value of
    the wrong kind (a string where a number belongs, as YAML reads ``1e-3``), and any number outside its range."""
    check_hyperparameter_names(name, hyperparameters)
    parameters = inspect.signature(algorithm_class(name).__init__).parameters
    for key, value in hyperparameters.items():
        options = _options(parameters[key].annotation)
        if options and not any(_is_kind(option, value) for option in options):
            numeric_text = isinstance(value, str) and is_number_text(value)
            hint = " (YAML reads 1e-3 as text: write 1.0e-3)" if numeric_text else ""
            raise ValueError(
                f"{name}: {key} must be {' or '.join(_kind_words(option) for option in options)}, got {value!r}{hint}"
            )
        number = value[0] if key == "train_freq" and isinstance(value, (list, tuple)) else value
        if key in HYPERPARAMETER_RANGES and isinstance(number, numbers.Real) and not isinstance(number, bool):
            within, words = HYPERPARAMETER_RANGES[key]
            if not within(number):
                raise ValueError(f"{name}: {key} must be {words}, got {value!r}")


def _options(annotation: Any) -> tuple[Any, ...]:
    """The kinds of value a constructor annotation allows (``float | Callable`` -> both); () if not annotated."""
    if annotation is inspect.Parameter.empty:
        return ()
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _is_kind(option: Any, value: Any) -> bool:
    origin = typing.get_origin(option)
    if option is type(None):
        return value is None
    if option is bool:
        return isinstance(value, bool)
    if option is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if option is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if option is str:
        return isinstance(value, str)
    if option is dict or origin is dict:
        return isinstance(value, dict)
    if origin is tuple:  # train_freq: [4, "step"]
        kinds = typing.get_args(option)
        return (
            isinstance(value, (list, tuple))
            and len(value) == len(kinds)
            and all(_is_kind(kind, item) for kind, item in zip(kinds, value, strict=True))
            and (len(value) != 2 or value[1] in ("step", "episode"))
        )
    if origin is type:
        return isinstance(value, type)
    if origin is collections.abc.Callable:
        return callable(value) and not isinstance(value, type)
    return True  # a kind this check does not know: left to the constructor


def _kind_words(option: Any) -> str:
    origin = typing.get_origin(option)
    words = {type(None): "null", bool: "true or false", int: "an integer", float: "a finite number", str: "text"}
    if option in words:
        return words[option]
    if option is dict or origin is dict:
        return "a mapping"
    if origin is tuple:
        return "a pair [integer, step or episode]"
    if origin is type:
        return "a Python class (not settable from YAML)"
    if origin is collections.abc.Callable:
        return "a schedule, a function of the remaining progress (not settable from YAML)"
    return str(option)


def is_number_text(text: str) -> bool:
    """Whether ``text`` reads as a number (``1e-3``, which YAML 1.1 leaves as a string)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_hp(items: list[str], flag: str = "--hp") -> dict[str, Any]:
    """``["learning_rate=1e-3", "gamma=0.9"]`` -> a dict; values are read as YAML (numbers, lists, booleans).

    A number in exponent notation without a dot (``1e-3``), which YAML 1.1 reads as text, is read as the number
    it is on a command line. Any other value YAML reads as a string stays a string (a file name such as
    ``users.npy``).
    """
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{flag} takes key=value, got {item!r}")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as error:
            raise ValueError(f"{flag} {item!r}: cannot read the value: {error}") from None
        if isinstance(parsed, str) and _EXPONENT_NUMBER.fullmatch(parsed.strip()):
            parsed = float(parsed)
        result[key.strip()] = parsed
    return result


_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def parse_net_arch(text: str) -> list[int]:
    """``"256,256"`` -> ``[256, 256]``."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"net_arch takes comma-separated layer sizes such as 256,256, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise ValueError(f"net_arch layer sizes must be >= 1, got {text!r}")
    return sizes


def policy_for(algo: str, regularizer: str | None, per_state_weight: float = 0.0) -> tuple[str | type, dict[str, Any]]:
    """The policy (class or SB3 alias) and its extra policy_kwargs for an agent with or without a regulariser."""
    if regularizer is None and not per_state_weight:
        return "MlpPolicy", {}
    if algo not in REGULARIZABLE:
        raise ValueError(
            f"a regularizer applies to {list(REGULARIZABLE)} (actor-critic agents with an entropy term), not {algo}"
        )
    regularizer, per_state_weight = check_regularizer(regularizer or "marginal", per_state_weight)
    return MarginalEntropyPolicy, {"regularizer": regularizer, "per_state_weight": per_state_weight}


@dataclass
class RunSpec:
    """One training run: an agent on a task with one seed."""

    env_id: str
    algo: str
    seed: int
    timesteps: int
    net_arch: list[int] = field(default_factory=lambda: [64, 64])
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    eval_freq: int = 2000
    n_eval: int | None = None
    temperature: float = 0.1
    tensorboard_log: str | None = None  # the TensorBoard root: the run logs to <root>/<experiment>/<agent>/seed<seed>
    experiment: str = "default"
    agent: str | None = None  # default: algo
    progress: bool = False
    log_figures: bool = True
    batched: bool = True  # 1 step of BATCH envs per update batch; False: the reference setup, 1 env
    regularizer: str | None = None  # a2c / ppo: MarginalEntropyPolicy with this regularizer, coefficient ent_coef
    per_state_weight: float = 0.0


def build_model(spec: RunSpec, task: Any = None) -> tuple[Any, Any]:
    """The SB3 model of ``spec`` (the paper's batch settings under its own hyperparameters) and its training env,
    made from ``task`` (the task of ``spec``, already built) when given, else from the spec's id and arguments."""
    hyperparameters = {**AGENT_DEFAULTS.get(spec.algo, {}), **spec.hyperparameters}
    check_hyperparameters(spec.algo, hyperparameters)  # an unknown algorithm raises here
    policy, regularizer_kwargs = policy_for(spec.algo, spec.regularizer, spec.per_state_weight)
    if spec.batched:
        hyperparameters = batched_hyperparameters(spec.algo, hyperparameters)
        if task is not None:
            env = VecMonitor(BanditVecEnv(task, BATCH, spec.seed))
        else:
            env = personalization_gym.make_vec(spec.env_id, BATCH, seed=spec.seed, **spec.env_kwargs)
    else:
        env = task if task is not None else gym.make(spec.env_id, **spec.env_kwargs)
    policy_kwargs = {"net_arch": list(spec.net_arch), **hyperparameters.pop("policy_kwargs", {})}
    policy_kwargs |= regularizer_kwargs
    model = algorithm_class(spec.algo)(
        policy,
        env,
        seed=spec.seed,
        device="cpu",
        policy_kwargs=policy_kwargs,
        **hyperparameters,
    )  # its TensorBoard logger is set by train(), in a folder of the run's own (no SB3 "_1" suffix)
    use_foreach_optimizer(model.policy.optimizer)
    return model, env


def use_foreach_optimizer(optimizer: torch.optim.Optimizer) -> None:
    """Switch ``optimizer`` to torch's multi-tensor ("foreach") step where it was left to torch's choice.

    On the CPU torch picks the per-parameter loop; the foreach step does the same arithmetic on every parameter
    with fewer temporaries and less Python, so the parameters are bit-identical (tested for every agent's
    optimizer: Adam, and A2C's RMSprop) and a step is faster (docs/performance.md: QR-DQN's Adam step on its 2.6
    million parameters 22.8 -> 20.1 ms, TRPO's critic step 1.56 -> 1.20 ms). A ``foreach`` given in
    ``optimizer_kwargs`` is kept, and so is a fused optimizer (torch's fused Adam gives different numbers).
    """
    if "foreach" not in optimizer.defaults:
        return
    for group in optimizer.param_groups:
        if group.get("foreach") is None and not group.get("fused") and not group.get("differentiable"):
            group["foreach"] = True


def check_run(spec: RunSpec, task: Any = None) -> None:
    """Build ``spec``'s model once, without training, so that settings which cannot work (a network, a batch
    size, a policy argument the constructor refuses) fail before any run starts: a ValueError with the cause.
    ``task``: the spec's task, already built (a Ratings-v0 fit or a dataset is then not made again); left open."""
    if isinstance(spec.timesteps, bool) or not isinstance(spec.timesteps, numbers.Integral) or spec.timesteps < 1:
        raise ValueError(f"timesteps must be an integer >= 1, got {spec.timesteps!r}")
    try:
        _, env = build_model(spec, task)  # checks the hyperparameters first
    except ValueError:
        raise
    except Exception as error:  # SB3 and torch refuse with asserts and TypeErrors: say which settings did it
        raise ValueError(f"{spec.algo} cannot be built with these settings: {type(error).__name__}: {error}") from None
    if task is None:
        env.close()


def paper_agent(
    algo: str,
    env_id: str = "Personalization/Music-v0",
    seed: int = 0,
    net_arch: Sequence[int] = (64, 64),
    tensorboard_log: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    **hyperparameters: Any,
) -> Any:
    """A stock SB3 agent (a2c, ppo, trpo, dqn, qrdqn) in the paper's setup, the one where the collapse shows.

    Every agent updates on batches of 32 users (``AGENT_DEFAULTS``: A2C, PPO and TRPO roll out 32 users per update,
    PPO with one epoch; DQN and QR-DQN train every 32 users on 32 of them, from the first step), collected as one
    step of 32 parallel users (``personalization_gym.make_vec``), which gives the same updates as 32 steps of one.
    ``hyperparameters`` (e.g. ``learning_rate=1e-3``, ``ent_coef``) are passed to the algorithm over those
    settings. Attach :class:`EntropyCallback` and call ``learn``::

        model = paper_agent("ppo", "Personalization/Music-v0", net_arch=[256, 256], learning_rate=1e-3)
        model.learn(20_000, callback=EntropyCallback())

    With SB3's own defaults instead (PPO: 2,048 steps of one user per rollout, 10 epochs) a policy makes ten
    updates in 20,000 steps and barely moves, so there is no collapse to see (docs/callback.md).
    """
    spec = RunSpec(
        env_id=env_id, algo=algo, seed=seed, timesteps=1, net_arch=list(net_arch), hyperparameters=hyperparameters,
        env_kwargs=dict(env_kwargs or {}),
    )  # fmt: skip
    model = build_model(spec)[0]
    model.tensorboard_log = tensorboard_log  # SB3's own run folders, as the constructor argument gives them
    return model


def train(
    spec: RunSpec,
    model_path: str | os.PathLike[str] | None = None,
    on_model: Callable[[Any, EntropyCallback], None] | None = None,
    callbacks: Sequence[BaseCallback] = (),
) -> tuple[Any, EntropyCallback]:
    """Train ``spec`` with EntropyCallback attached; save the model to ``model_path`` if given.

    ``on_model(model, callback)`` is called once the model and its callback are built, before training (e.g.
    to instrument them). ``callbacks`` run after EntropyCallback, so they see each of its evaluations as soon as
    it is made.
    """
    if spec.timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {spec.timesteps}")
    model, env = build_model(spec)
    callback = EntropyCallback(
        eval_env=env,
        eval_freq=spec.eval_freq,
        n_eval=spec.n_eval,
        temperature=spec.temperature,
        log_figures=spec.log_figures,
        figure_every=figure_every(spec.timesteps, spec.eval_freq),
        seed=spec.seed,
    )
    extra: list[BaseCallback] = []
    if spec.tensorboard_log is not None:
        agent = spec.agent or spec.algo
        model.set_logger(tensorboard_logger(run_folder(spec.tensorboard_log, spec.experiment, agent, spec.seed)))
        extra.append(HParamsCallback(run_hparams(spec, model)))
        callback.custom_scalars_layout = run_layout(spec.experiment)
    if on_model is not None:
        on_model(model, callback)
    model.learn(
        spec.timesteps,
        callback=[callback, *extra, *callbacks],
        log_interval=evaluation_log_interval(model, spec.eval_freq),
        progress_bar=spec.progress,
    )
    if model_path is not None:
        Path(model_path).parent.mkdir(parents=True, exist_ok=True)
        model.save(model_path)
    return model, callback


def figure_every(timesteps: int, eval_freq: int) -> int:
    """EntropyCallback's ``figure_every`` for about 10 pictures a run, as many as TensorBoard keeps by default."""
    return max(1, math.ceil(timesteps / eval_freq / 10))


def agent_hparams(
    experiment: str, agent: str, algo: str, regularizer: str | None, coefficient: float
) -> dict[str, Any]:
    """What the HParams dashboard shows of an agent: experiment, agent, algorithm, its entropy regulariser
    (``per_state`` for SB3's own term, ``none`` for agents without one) and, where there is a term, its coefficient
    (an agent without one shows no coefficient rather than a 0 it does not have)."""
    # TRPO carries SB3's ent_coef attribute but no entropy term in its update: only A2C and PPO have one
    has_term = algo in REGULARIZABLE
    hparams: dict[str, Any] = {
        "experiment": experiment,
        "agent": agent,
        "algo": algo,
        "regularizer": regularizer or ("per_state" if has_term else "none"),
    }
    if has_term:
        hparams["coefficient"] = float(coefficient)
    return hparams


def run_hparams(spec: RunSpec, model: Any) -> dict[str, Any]:
    """:func:`agent_hparams` of a run (its coefficient as the model holds it) and its seed."""
    ent_coef = float(getattr(model, "ent_coef", 0.0))
    return agent_hparams(spec.experiment, spec.agent or spec.algo, spec.algo, spec.regularizer, ent_coef) | {
        "seed": spec.seed
    }


def limit_threads() -> None:
    """One torch thread per run: small networks gain nothing from more, and parallel runs then share cores."""
    torch.set_num_threads(1)


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """``limit_threads`` for a block, then back to the caller's thread count (for runs in the caller's process)."""
    previous = torch.get_num_threads()
    limit_threads()
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def final_row(spec: RunSpec, callback: EntropyCallback) -> dict[str, Any]:
    last = callback.history[-1]
    return {
        "agent": spec.algo,
        "seed": spec.seed,
        "reward": last.get("eval/reward_stochastic", np.nan),
        "expected_reward": last.get("eval/expected_reward", np.nan),
        "marginal_entropy": last["entropy/marginal"],
        "per_state_entropy": last["entropy/per_state"],
        "effective_actions": last["actions/effective_number"],
        "gini": last["exposure/gini"],
        "long_tail_share": last["exposure/long_tail_share"],
        "aggregate_diversity": last["exposure/aggregate_diversity"],
    }
