"""The agents of the paper's setup: which SB3 class each name is, its batch settings, checked hyperparameters, and
``paper_agent``, a stock SB3 model in the setup where the collapse shows."""

from __future__ import annotations

import collections.abc
import inspect
import math
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.type_aliases import TrainFrequencyUnit
from stable_baselines3.common.vec_env import VecMonitor

from personalization_gym.checks import check_integer, is_bool, is_integer, is_number, is_number_text
from sb3_entropy.policies import MarginalEntropyPolicy
from sb3_entropy.regularizers import check_regularizer
from sb3_entropy.vec_env import BanditVecEnv, make_vec

__all__ = [
    "AGENT_DEFAULTS",
    "BATCH",
    "DEFAULT_NET_ARCH",
    "ON_POLICY",
    "Q_LEARNING",
    "REGULARIZABLE",
    "NotWholeBatchesError",
    "algorithm_class",
    "batched_hyperparameters",
    "budget_round",
    "check_hyperparameter_names",
    "check_hyperparameters",
    "check_net_arch",
    "make_agent",
    "paper_agent",
    "policy_for",
    "rounded_up",
    "trained_steps",
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


class NotWholeBatchesError(ValueError):
    """A rollout length or training frequency that the batched setup cannot collect in whole batches."""


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
        raise NotWholeBatchesError(
            f"{name}: {key}={value} is not a multiple of {n_envs}, so it cannot be collected in batches of "
            f"{n_envs} envs; use the literal setup (batched=False: one user per step) or a multiple of {n_envs}"
        )
    hyperparameters[key] = value // n_envs
    return hyperparameters


def algorithm_class(name: str) -> type:
    """The SB3 (or sb3-contrib) class of an agent name: a2c, ppo, dqn, qrdqn, trpo."""
    if name not in AGENT_DEFAULTS:
        raise ValueError(f"unknown algorithm {name!r}; valid: {sorted(AGENT_DEFAULTS)}")
    if name in ("qrdqn", "trpo"):
        try:
            import sb3_contrib
        except ImportError:
            raise ImportError(
                f'{name} is sb3-contrib\'s: pip install sb3-contrib (or "personalization-gym[study]")'
            ) from None

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
        if key in HYPERPARAMETER_RANGES and is_number(number):
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
        return is_bool(value)
    if option is int:
        return is_integer(value)
    if option is float:
        return is_number(value) and math.isfinite(value)
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


def budget_round(model: Any) -> int:
    """How many steps an SB3 model takes between two looks at its budget: a whole rollout for on-policy
    algorithms (``n_steps`` x envs), a whole round of ``train_freq`` for off-policy ones. ``learn(total)`` trains
    :func:`trained_steps` steps, ``total`` rounded up to these rounds."""
    n_envs = model.n_envs
    if isinstance(model, OnPolicyAlgorithm):
        return model.n_steps * n_envs
    if model.train_freq.unit == TrainFrequencyUnit.STEP:
        return model.train_freq.frequency * n_envs
    return model.train_freq.frequency  # episodes, which SB3 allows with one env only: each one step long


def trained_steps(model: Any, steps: int) -> int:
    """The steps ``model.learn(steps)`` trains: ``steps`` rounded up to whole rounds (:func:`budget_round`)."""
    return rounded_up(steps, budget_round(model))


def rounded_up(steps: int, unit: int) -> int:
    """``steps`` rounded up to a whole number of rounds of ``unit`` steps."""
    return math.ceil(steps / unit) * unit


DEFAULT_NET_ARCH = (64, 64)  # SB3's own default for an MLP policy


def check_net_arch(net_arch: Any, name: str = "net_arch") -> list[int]:
    """``net_arch`` as a list if it is a list of hidden-layer widths, integers >= 1; else a ValueError in the words
    every layer uses (a width of 0 builds a layer that ignores its input)."""
    if not isinstance(net_arch, (list, tuple)) or not net_arch or not all(is_integer(w) and w >= 1 for w in net_arch):
        raise ValueError(f"{name} must be a list of layer sizes, integers >= 1 such as [256, 256], got {net_arch!r}")
    return [int(width) for width in net_arch]


def network_of(net_arch: Sequence[int] | None, policy_kwargs: dict[str, Any]) -> list[int] | dict[str, Any]:
    """The network an agent gets: ``net_arch`` or ``policy_kwargs["net_arch"]`` (SB3's list, or its dict of
    ``pi``/``vf`` or ``qf`` lists), checked; both given is an error naming both, neither gives DEFAULT_NET_ARCH."""
    inner = policy_kwargs.get("net_arch")
    if net_arch is not None and inner is not None:
        raise ValueError(
            f"net_arch={list(net_arch)!r} and policy_kwargs['net_arch']={inner!r} both set the network: give one"
        )
    if isinstance(inner, dict):
        return {key: check_net_arch(value, f"policy_kwargs['net_arch'][{key!r}]") for key, value in inner.items()}
    if inner is not None:
        return check_net_arch(inner, "policy_kwargs['net_arch']")
    return check_net_arch(DEFAULT_NET_ARCH if net_arch is None else net_arch)


def make_agent(
    algo: str,
    env_id: str,
    seed: int = 0,
    net_arch: Sequence[int] | None = None,
    hyperparameters: dict[str, Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    batched: bool = True,
    regularizer: str | None = None,
    per_state_weight: float = 0.0,
    task: Any = None,
) -> tuple[Any, Any]:
    """The SB3 model of an agent in the paper's setup (its batch settings under ``hyperparameters``) and its training
    env: ``BATCH`` parallel users per step when ``batched``, else one. The env is made from ``task`` (the task of
    ``env_id``, already built) when given, else from the id and ``env_kwargs``; the model logs nowhere until given a
    logger or ``tensorboard_log``. ``net_arch`` (default DEFAULT_NET_ARCH) may instead come in
    ``hyperparameters["policy_kwargs"]``, not from both."""
    check_integer("seed", seed, 0)
    hyperparameters = {**AGENT_DEFAULTS.get(algo, {}), **(hyperparameters or {})}
    check_hyperparameters(algo, hyperparameters)  # an unknown algorithm raises here
    policy, regularizer_kwargs = policy_for(algo, regularizer, per_state_weight)
    env_kwargs = dict(env_kwargs or {})
    if batched:
        hyperparameters = batched_hyperparameters(algo, hyperparameters)
        if task is not None:
            env = VecMonitor(BanditVecEnv(task, BATCH, seed))
        else:
            env = make_vec(env_id, BATCH, seed=seed, **env_kwargs)
    else:
        env = task if task is not None else gym.make(env_id, **env_kwargs)
    policy_kwargs = dict(hyperparameters.pop("policy_kwargs", None) or {})
    policy_kwargs["net_arch"] = network_of(net_arch, policy_kwargs)
    policy_kwargs |= regularizer_kwargs
    model = algorithm_class(algo)(policy, env, seed=seed, device="cpu", policy_kwargs=policy_kwargs, **hyperparameters)
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


def paper_agent(
    algo: str,
    env_id: str = "Personalization/Music-v0",
    seed: int = 0,
    net_arch: Sequence[int] | None = None,
    tensorboard_log: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    **hyperparameters: Any,
) -> Any:
    """A stock SB3 agent (a2c, ppo, trpo, dqn, qrdqn) in the paper's setup, the one where the collapse shows.

    Every agent updates on batches of 32 users (``AGENT_DEFAULTS``: A2C, PPO and TRPO roll out 32 users per update,
    PPO with one epoch; DQN and QR-DQN train every 32 users on 32 of them, from the first step), collected as one
    step of 32 parallel users (``sb3_entropy.make_vec``), which gives the same updates as 32 steps of one.
    ``hyperparameters`` (e.g. ``learning_rate=1e-3``, ``ent_coef``) are passed to the algorithm over those
    settings. Attach :class:`EntropyCallback` and call ``learn``::

        model = paper_agent("ppo", "Personalization/Music-v0", net_arch=[256, 256], learning_rate=1e-3)
        model.learn(20_000, callback=EntropyCallback())

    With SB3's own defaults instead (PPO: 2,048 steps of one user per rollout, 10 epochs) a policy makes ten
    updates in 20,000 steps and barely moves, so there is no collapse to see (docs/callback.md).
    """
    model = make_agent(algo, env_id, seed, net_arch, hyperparameters, dict(env_kwargs or {}))[0]
    model.tensorboard_log = tensorboard_log  # SB3's own run folders, as the constructor argument gives them
    return model
