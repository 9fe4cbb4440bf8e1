"""A diversity report card: every metric the EntropyCallback logs, for one model on one evaluation set, beside the
random policy's and the oracle's rewards on the same states.

The callback's evaluations and ``personalization-gym evaluate`` both come from :func:`evaluate_states`, so a saved
model's report card holds the numbers the callback logged for it (with the same ``seed``, ``n_eval`` and
normalization statistics).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize

from personalization_gym.checks import check_choice, check_integer, check_number
from sb3_entropy.eval_states import EVAL_MEMORY_MB, EvalStates, rewards_source, task_id_of
from sb3_entropy.metrics import METRICS, metrics_of
from sb3_entropy.probs import Q_POLICIES, ProbsFn, action_probs

__all__ = ["ReportCard", "check_model_fits", "check_reading", "evaluate_states", "report_card", "sampling_generator"]


@dataclass(frozen=True)
class ReportCard:
    """One evaluation of a policy: its metrics by TensorBoard tag (``metrics["entropy/marginal"]`` is H(p) in nats),
    the marginal ``p`` over the ``n_actions`` items, and, on a task's evaluation set, the random policy's and the
    oracle's expected rewards on the same states (``baselines``: empty for bare states, as are the reward metrics)."""

    metrics: dict[str, float]
    p: np.ndarray
    baselines: dict[str, float]
    n_states: int
    n_actions: int
    model: str = ""  # the model's class, or what the caller names it
    task: str | None = None  # the task's registered id, when known
    normalized: bool = False  # the states were normalized with VecNormalize statistics before the policy saw them
    settings: dict[str, Any] = field(default_factory=dict)  # temperature, q_policy, seed, n_eval
    states: EvalStates | None = field(default=None, repr=False, compare=False)  # what was evaluated

    def __getitem__(self, tag: str) -> float:
        return self.metrics[tag]

    def row(self) -> dict[str, Any]:
        """The card as one table row: who and what, every metric under its tag (as results.csv names them), then the
        random policy's and the oracle's expected rewards."""
        columns = {m.tag: self.metrics[m.tag] for m in METRICS if m.tag in self.metrics}
        described = {"model": self.model, "task": self.task or "", "states": self.n_states, "actions": self.n_actions}
        return described | {"normalized": self.normalized} | columns | self.baselines


def sampling_generator(seed: int) -> np.random.Generator:
    """The generator of an evaluation's sampled actions (``eval/reward_stochastic``): the same draws at every
    evaluation of a seed, so a saved model's card repeats what the callback logged."""
    return np.random.default_rng([seed, 1])


def evaluate_states(states: EvalStates, probs_of: Callable[[np.ndarray], np.ndarray], seed: int) -> ReportCard:
    """Every metric of the policy ``probs_of(states) -> (n, K)`` on ``states``, chunk after chunk."""
    total = states.totals(probs_of, sampling_generator(seed))
    baselines = total.baselines() if total.rewards is not None else {}
    return ReportCard(metrics_of(total), total.p, baselines, len(states), int(total.n_actions))


def check_reading(temperature: Any, q_policy: Any, probs_fn: Any, n_eval: Any, seed: Any, eval_memory_mb: Any) -> None:
    """Refuse settings of an evaluation of the wrong kind or out of range: a ValueError that names the argument."""
    check_number("temperature", temperature, above=0)
    check_choice("q_policy", q_policy, Q_POLICIES)
    if probs_fn is not None and not callable(probs_fn):
        raise ValueError(f"probs_fn must be a function probs_fn(model, obs) -> (n, K) array, or None, got {probs_fn!r}")
    if n_eval is not None:
        check_integer("n_eval", n_eval, 1)
    check_integer("seed", seed, 0)
    check_number("eval_memory_mb", eval_memory_mb, above=0)


def check_model_fits(model: BaseAlgorithm, states: EvalStates, task: str | None = None) -> None:
    """Refuse states whose shape is not the model's observation shape, or a task with another number of actions
    than the model's: a ValueError naming both."""
    shape = model.observation_space.shape
    where = f"task {task}'s " if task else ""
    if states.obs.ndim < 1 or states.obs.shape[1:] != shape:
        raise ValueError(
            f"{where}evaluation states must have shape (n, {', '.join(map(str, shape))}) to match the model's "
            f"observation space, got {states.obs.shape}"
        )
    n_actions = getattr(model.action_space, "n", None)
    if states.has_rewards and n_actions is not None and int(n_actions) != states.n_actions:
        raise ValueError(
            f"the evaluation set's task{f' {task}' if task else ''} has {states.n_actions} actions and the model "
            f"{int(n_actions)}: evaluate the model on its own task"
        )


def report_card(
    model: BaseAlgorithm,
    task: Any = None,
    *,
    eval_obs: np.ndarray | None = None,
    vec_normalize: VecNormalize | None = None,
    n_eval: int | None = None,
    temperature: float = 0.1,
    q_policy: str = "softmax",
    probs_fn: ProbsFn | None = None,
    seed: int = 0,
    eval_memory_mb: float = EVAL_MEMORY_MB,
) -> ReportCard:
    """The report card of ``model`` on ``task``'s evaluation set (a personalization task, a wrapper or VecEnv of one)
    or on the states ``eval_obs`` (entropy and action metrics only), as the EntropyCallback evaluates it.

    ``vec_normalize``: the normalization statistics the model trained with (``VecNormalize.load(...)``, or
    ``model.get_vec_normalize_env()``), applied to the states before the policy sees them. ``n_eval`` keeps a fixed
    random subset of the states; ``seed`` draws it and the sampled actions, as the callback's ``seed`` does.
    ``temperature``, ``q_policy`` and ``probs_fn`` read the policy as :func:`sb3_entropy.probs.action_probs` does.
    """
    check_reading(temperature, q_policy, probs_fn, n_eval, seed, eval_memory_mb)
    if (task is None) == (eval_obs is None):
        raise ValueError("give one of task (a personalization_gym task) and eval_obs (an array of states)")
    if vec_normalize is not None and not isinstance(vec_normalize, VecNormalize):
        raise TypeError(f"vec_normalize must be a VecNormalize (VecNormalize.load(path, venv)), got "
                        f"{type(vec_normalize).__name__}")  # fmt: skip
    states = EvalStates(*_source(task)) if task is not None else EvalStates(eval_obs)
    if n_eval is not None:
        states.keep(n_eval, np.random.default_rng(seed))
    task_id = task_id_of(task) if task is not None else None
    check_model_fits(model, states, task_id)

    def probs_of(obs: np.ndarray) -> np.ndarray:
        seen = obs if vec_normalize is None else vec_normalize.normalize_obs(obs)
        return action_probs(model, seen, temperature, q_policy, probs_fn)

    probs_of(states.obs[:1])  # a continuous or MultiDiscrete action space fails here, naming the models read
    states.plan(int(model.action_space.n), eval_memory_mb)
    settings = {"temperature": temperature, "q_policy": q_policy, "seed": seed, "n_eval": n_eval}
    return dataclasses.replace(evaluate_states(states, probs_of, seed), model=type(model).__name__, task=task_id,
                               normalized=vec_normalize is not None, settings=settings, states=states)  # fmt: skip


def _source(task: Any) -> tuple[np.ndarray, Any, int]:
    source = rewards_source(task)
    if source is None:
        raise TypeError(
            f"task must be a personalization_gym task (with eval_rows()), a wrapper of one or a VecEnv of them, got "
            f"{type(task).__name__}; for another env give eval_obs, an array of states"
        )
    return source
