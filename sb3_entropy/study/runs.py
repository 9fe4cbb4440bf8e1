"""A study's runs: one agent on a task with one seed (``RunSpec``), built, checked and trained with EntropyCallback
attached and its TensorBoard run in the study's layout."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger

from personalization_gym.checks import check_integer
from sb3_entropy.agents import REGULARIZABLE, make_agent, trained_steps
from sb3_entropy.callback import EntropyCallback
from sb3_entropy.study.mean_runs import run_layout
from sb3_entropy.tensorboard import HParamsCallback, evaluation_log_interval, run_folder, tensorboard_logger

__all__ = [
    "RunSpec",
    "agent_hparams",
    "build_model",
    "check_run",
    "figure_every",
    "final_row",
    "limit_threads",
    "one_torch_thread",
    "run_hparams",
    "train",
]


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
    data_fingerprint: str | None = None  # the task's data (personalization_gym.fingerprints), for --resume


def build_model(spec: RunSpec, task: Any = None) -> tuple[Any, Any]:
    """The SB3 model of ``spec`` (the paper's batch settings under its own hyperparameters) and its training env,
    made from ``task`` (the task of ``spec``, already built) when given, else from the spec's id and arguments."""
    return make_agent(
        spec.algo, spec.env_id, spec.seed, spec.net_arch, spec.hyperparameters, spec.env_kwargs, spec.batched,
        spec.regularizer, spec.per_state_weight, task,
    )  # fmt: skip


def check_run(spec: RunSpec, task: Any = None) -> int:
    """Build ``spec``'s model once, without training, so that settings which cannot work (a network, a batch
    size, a policy argument the constructor refuses) fail before any run starts: a ValueError with the cause.
    ``task``: the spec's task, already built (a Ratings-v0 fit or a dataset is then not made again); left open.
    Returns the steps the run will train: ``spec.timesteps`` rounded up to SB3's whole rounds (``trained_steps``)."""
    check_integer("timesteps", spec.timesteps, 1)
    try:
        model, env = build_model(spec, task)  # checks the hyperparameters first
    except ValueError:
        raise
    except Exception as error:  # SB3 and torch refuse with asserts and TypeErrors: say which settings did it
        raise ValueError(f"{spec.algo} cannot be built with these settings: {type(error).__name__}: {error}") from None
    if task is None:
        env.close()
    return trained_steps(model, spec.timesteps)


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
    check_integer("timesteps", spec.timesteps, 1)
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
    else:  # SB3's own default would make an empty folder in the temporary directory for every run
        model.set_logger(Logger(folder=None, output_formats=[]))
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
        "timesteps": last["timesteps"],  # trained: the budget rounded up to SB3's whole rounds
        "reward": last.get("eval/reward_stochastic", np.nan),
        "expected_reward": last.get("eval/expected_reward", np.nan),
        "marginal_entropy": last["entropy/marginal"],
        "per_state_entropy": last["entropy/per_state"],
        "effective_actions": last["actions/effective_number"],
        "gini": last["exposure/gini"],
        "long_tail_share": last["exposure/long_tail_share"],
        "aggregate_diversity": last["exposure/aggregate_diversity"],
    }
