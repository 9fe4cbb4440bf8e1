"""EntropyCallback: the paper's policy-entropy metric and more, logged live through SB3's logger."""

from __future__ import annotations

import csv
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Image, TensorBoardOutputFormat
from stable_baselines3.common.vec_env import VecEnv, unwrap_vec_normalize

from personalization_gym.checks import check_bool, check_integer, is_number
from sb3_entropy.atomic import atomic_path, write_text_atomically
from sb3_entropy.eval_states import EVAL_MEMORY_MB, EvalStates, rewards_source, task_id_of
from sb3_entropy.figures import DistributionFigure, DownsampledHistory
from sb3_entropy.metrics import (
    EXPECTED_REWARD,
    MARGINAL_ENTROPY,
    METRICS,
    NORMALIZED_MARGINAL_ENTROPY,
    STORED,
)
from sb3_entropy.probs import ProbsFn, action_probs
from sb3_entropy.report_card import ReportCard, check_model_fits, check_reading, evaluate_states

__all__ = ["CUSTOM_SCALARS_CHARTS", "CUSTOM_SCALARS_LAYOUT", "EntropyCallback", "exact_tag_pattern"]


def _charts() -> dict[str, dict[str, list[str]]]:
    """TensorBoard's custom-scalars dashboard from the metrics table: one chart per title, every run in it, each
    chart listing the exact tags it plots."""
    charts: dict[str, dict[str, list[str]]] = {}
    for metric in METRICS:
        if metric.chart is not None:
            category, title = metric.chart
            charts.setdefault(category, {}).setdefault(title, []).append(metric.tag)
    return charts


CUSTOM_SCALARS_CHARTS = _charts()
HISTOGRAM_BUCKETS = 2048  # the most buckets of an action histogram: neighbouring actions share one past it


def exact_tag_pattern(tag: str) -> str:
    """A regular expression that matches ``tag`` and nothing else.

    TensorBoard reads every tag of a custom-scalars chart as a regular expression and plots every tag it
    matches, so ``entropy/marginal`` alone would also plot ``entropy/marginal_normalized``.
    """
    return f"^{re.escape(tag)}$"


CUSTOM_SCALARS_LAYOUT = {
    category: {title: ["Multiline", [exact_tag_pattern(tag) for tag in tags]] for title, tags in charts.items()}
    for category, charts in CUSTOM_SCALARS_CHARTS.items()
}


class EntropyCallback(BaseCallback):
    """Evaluate the policy's action distribution on fixed states every ``eval_freq`` environment steps.

    The evaluation states come from, in order: ``eval_obs``; ``eval_env``; or, when neither is given, the model's
    training env, if it is one of personalization_gym's tasks (through Monitor, DummyVecEnv / SubprocVecEnv and
    VecNormalize). When the model trains behind ``VecNormalize``, the states are normalized with its running
    statistics as they stand at each evaluation, so the policy sees them as it sees training observations.

    :param eval_env: one of personalization_gym's tasks (or a Gymnasium wrapper of one, an SB3 VecEnv of them,
        or a registered env id such as ``"Personalization/Music-v0"``): its ``eval_set()`` gives the states and
        their expected rewards, so reward metrics are logged too.
    :param eval_obs: any ``(n, *obs_shape)`` array of raw states, for any env: only entropy and action metrics.
    :param eval_freq: evaluate every this many environment steps (summed over parallel envs; default 2,000: about
        4 % of PPO's training time with the paper's settings on 10,000 states), at step 0, and
        when training ends. An evaluation that falls due during a rollout runs when the rollout is over and the
        policy updated, at the next rollout's start, so each logged point is the policy at that timestep.
    :param temperature: DQN / QR-DQN policies are ``softmax(Q / temperature)`` (0.1: the paper's).
    :param n_eval: evaluate on a fixed random subset of this many states (default: all).
    :param log_figures: log the action-distribution picture (960 x 400, labelled: p(a) over training as the paper's
        sorted stacked bars, and the current p(a) in item order) every ``figure_every`` evaluations and at the end
        of training (TensorBoard's Images page; it keeps 10 pictures per run unless --samples_per_plugin says more).
    :param figure_every: see ``log_figures``.
    :param min_entropy: warn when the normalized marginal entropy H(p)/log K falls below this value.
    :param stop_on_collapse: with ``min_entropy``, stop training instead of only warning.
    :param probs_fn: ``probs_fn(model, obs) -> (n, K)`` for models the built-in reader does not know.
    :param q_policy: ``"softmax"`` or ``"epsilon_greedy"`` for Q-learning models (see ``action_probs``).
    :param seed: seeds the subset of states and the sampled actions of ``eval/reward_stochastic`` (the same draws
        at every evaluation, as :func:`sb3_entropy.report_card.report_card` makes them).
    :param verbose: 1 prints one line per evaluation.
    :param eval_env_kwargs: arguments for the task when ``eval_env`` is an env id (e.g. ``{"n_eval": 2000}``).
    :param eval_memory_mb: the most memory one chunk of an evaluation takes: an evaluation set whose tables (the
        probabilities and expected rewards of every state and action) are larger is evaluated in chunks of users,
        with the same numbers (to rounding).
    :param other_task: ``eval_env`` may be another task than the model trains on (a different population, say);
        by default that is an error at training start, since every metric would be of another task.
    """

    def __init__(
        self,
        eval_env: Any = None,
        eval_obs: np.ndarray | None = None,
        eval_freq: int = 2000,
        temperature: float = 0.1,
        n_eval: int | None = None,
        log_figures: bool = True,
        figure_every: int = 10,
        min_entropy: float | None = None,
        stop_on_collapse: bool = False,
        probs_fn: ProbsFn | None = None,
        q_policy: str = "softmax",
        seed: int = 0,
        verbose: int = 0,
        eval_env_kwargs: dict[str, Any] | None = None,
        eval_memory_mb: float = EVAL_MEMORY_MB,
        other_task: bool = False,
    ) -> None:
        super().__init__(verbose=verbose)
        if eval_env is not None and eval_obs is not None:
            raise ValueError("pass at most one of eval_env (a personalization_gym task) and eval_obs (an array)")
        if eval_env_kwargs is not None and not isinstance(eval_env, str):
            raise ValueError("eval_env_kwargs are the arguments of a task given by id: pass eval_env='<env id>' too")
        if eval_env_kwargs is not None and not isinstance(eval_env_kwargs, dict):
            raise ValueError(f"eval_env_kwargs must be a dict of the task's arguments, got {eval_env_kwargs!r}")
        self.eval_freq, self.figure_every, self.n_eval = eval_freq, figure_every, n_eval
        self.temperature, self.q_policy, self.probs_fn = temperature, q_policy, probs_fn
        self.log_figures, self.min_entropy, self.stop_on_collapse = log_figures, min_entropy, stop_on_collapse
        self.seed, self.eval_memory_mb, self.other_task = seed, eval_memory_mb, other_task
        self._check_settings()
        self.eval_freq, self.figure_every = int(eval_freq), int(figure_every)
        self._rng = np.random.default_rng(seed)  # draws the subset of states (n_eval); sampled actions: evaluate_states

        self.states: EvalStates | None = None
        self._eval_task: str | None = None  # the task eval_env is, checked against the model's at training start
        if eval_env is not None:
            if isinstance(eval_env, str):
                eval_env = _make_task(eval_env, eval_env_kwargs or {})
            self._eval_task = task_id_of(eval_env)
            self._use_states(*self._source_of(eval_env))
        elif eval_obs is not None:
            self._use_states(eval_obs, None, None)

        self.history: list[dict[str, Any]] = []
        self.report_card: ReportCard | None = None  # the last evaluation's, the final one once training ends
        self.figure_history = DownsampledHistory(capacity=64)
        self._n_evaluations = 0
        self._next_eval = 0
        self._due = False
        self._stop = False
        self._action_counts: np.ndarray | None = None
        self._counted_until = 0
        self._writer = None
        self._figure: DistributionFigure | None = None
        self._figure_step: int | None = None
        self._total_steps: int | None = None
        self._final = False  # the evaluation at the end of training: its picture is logged whatever figure_every
        # The Custom Scalars charts the run writes at its start (sb3_entropy.study.runs puts the means' charts first).
        self.custom_scalars_layout: dict[str, Any] = CUSTOM_SCALARS_LAYOUT

    def _check_settings(self) -> None:
        """Refuse settings of the wrong kind or out of range: a ValueError that names the argument."""
        check_reading(self.temperature, self.q_policy, self.probs_fn, self.n_eval, self.seed, self.eval_memory_mb)
        check_integer("eval_freq", self.eval_freq, 1)
        check_integer("figure_every", self.figure_every, 1)
        if self.min_entropy is not None and not (is_number(self.min_entropy) and 0.0 <= self.min_entropy <= 1.0):
            raise ValueError(f"min_entropy is a normalized entropy: a number in [0, 1], got {self.min_entropy!r}")
        check_bool("log_figures", self.log_figures)
        check_bool("stop_on_collapse", self.stop_on_collapse)
        check_integer("verbose", self.verbose, 0)
        check_bool("other_task", self.other_task)
        if self.stop_on_collapse and self.min_entropy is None:
            raise ValueError("stop_on_collapse needs min_entropy, the threshold that counts as a collapse")

    def _use_states(self, obs: Any, rewards: Any, n_actions: int | None) -> None:
        """Check the evaluation states (before any forward pass) and keep them, or a fixed subset of them, with the
        task's expected rewards when it gives them; split them into chunks once the number of actions is known."""
        self.states = EvalStates(obs, rewards, n_actions)
        if self.n_eval is not None:
            self.states.keep(self.n_eval, self._rng)
        if n_actions is not None:
            self.states.plan(n_actions, self.eval_memory_mb)

    @property
    def eval_obs(self) -> np.ndarray | None:
        """The states every evaluation is made on (``(n, *obs_shape)``)."""
        return None if self.states is None else self.states.obs

    @property
    def expected(self) -> np.ndarray | None:
        """Their expected rewards, ``(n, K)``, when a task gives them and they fit in one chunk of ``eval_memory_mb``
        (larger ones are computed chunk by chunk at every evaluation)."""
        return None if self.states is None else self.states.expected

    @staticmethod
    def _source_of(eval_env: Any) -> tuple[np.ndarray, Any, int]:
        """The evaluation states, rewards and actions of a task, of a Gymnasium wrapper of one, or of an SB3 VecEnv of
        them (an env id is made into its task first)."""
        source = rewards_source(eval_env)
        if source is None:
            raise TypeError(
                f"eval_env must be a personalization_gym task (with eval_rows()), a wrapper of one, a VecEnv of them "
                f"or a registered task id, got {_describe(eval_env)}; for another env pass eval_obs, an array of states"
            )
        return source

    # ----------------------------------------------------------------------------------------------
    def _init_callback(self) -> None:
        if self.states is None:  # neither eval_env nor eval_obs: the training env's own evaluation set
            env = self.training_env
            if env is None or rewards_source(env) is None:
                raise ValueError(
                    f"EntropyCallback() found no evaluation states: the model's training env ({_describe(env)}) is "
                    "not a personalization_gym task. Pass eval_env (a task, or its id such as "
                    "'Personalization/Music-v0') or eval_obs (an array of states)."
                )
            self._use_states(*self._source_of(env))
        check_model_fits(self.model, self.states, self._eval_task)
        # Fails early, with the supported kinds of model, on a continuous or MultiDiscrete action space.
        self._probs(self.eval_obs[:1])
        n_actions = int(self.model.action_space.n)
        self._check_task()
        if not self.states.chunks:  # states given as an array: chunked now that the model says how many actions
            self.states.plan(n_actions, self.eval_memory_mb)
        self._action_counts = np.zeros(int(self.model.action_space.n), dtype=np.int64)
        self._writer = next(
            (f.writer for f in self.logger.output_formats if isinstance(f, TensorBoardOutputFormat)), None
        )
        if self._writer is not None:
            self._writer.add_custom_scalars(self.custom_scalars_layout)

    def _check_task(self) -> None:
        """Refuse an eval_env of another task than the model trains on, unless ``other_task`` says it is meant."""
        trained_on = task_id_of(self.training_env) if self.training_env is not None else None
        if self.other_task or None in (self._eval_task, trained_on) or self._eval_task == trained_on:
            return
        raise ValueError(
            f"eval_env is {self._eval_task} but the model trains on {trained_on}: every metric would be of another "
            "task's users and rewards. Evaluate on the model's task, or pass other_task=True if that is meant"
        )

    def _probs(self, obs: np.ndarray) -> np.ndarray:
        return action_probs(self.model, self._as_the_policy_sees(obs), self.temperature, self.q_policy, self.probs_fn)

    def _as_the_policy_sees(self, obs: np.ndarray) -> np.ndarray:
        """``obs`` normalized with the training env's VecNormalize statistics as they are now, if there is one."""
        vec_normalize = unwrap_vec_normalize(self.training_env) if self.training_env is not None else None
        return obs if vec_normalize is None else vec_normalize.normalize_obs(obs)

    def _on_training_start(self) -> None:
        self._counted_until = self.num_timesteps
        # the step training ends at fixes the picture's time axis, so only its bars are drawn again each time
        self._figure = None
        self._total_steps = self.locals.get("total_timesteps")
        # Steps already taken in an earlier learn() call count: evaluate at the first multiple of eval_freq.
        self._next_eval = -(-self.num_timesteps // self.eval_freq) * self.eval_freq
        if self.num_timesteps >= self._next_eval:
            self._evaluate()

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next_eval:
            self._due = True
        return not self._stop

    def _on_rollout_end(self) -> None:
        # Count the actions taken in this rollout from the algorithm's own buffer: one bincount per rollout
        # instead of work at every step. On-policy buffers hold exactly the rollout; replay buffers hold it
        # as the last rows written.
        steps = (self.num_timesteps - self._counted_until) // self.training_env.num_envs
        self._counted_until = self.num_timesteps
        buffer = getattr(self.model, "rollout_buffer", None) or getattr(self.model, "replay_buffer", None)
        actions = getattr(buffer, "actions", None)
        if actions is None or steps <= 0:
            return
        size = len(actions)
        rows = slice(None) if steps >= size else (buffer.pos - steps + np.arange(steps)) % size
        taken = np.asarray(actions[rows]).ravel().astype(np.int64)
        self._action_counts += np.bincount(taken, minlength=len(self._action_counts))

    def _on_rollout_start(self) -> None:
        # Evaluations fall between rollouts, after the gradient update that followed the due step: every
        # logged point is the policy as it stands at that timestep (SB3 updates only between rollouts).
        if self._due:
            self._evaluate()

    def _on_training_end(self) -> None:
        if not self.history or self.history[-1]["timesteps"] != self.num_timesteps:
            self._final = True
            self._evaluate()  # the policy that training hands back
            self._final = False
        elif self.log_figures and self._writer is not None and self._figure_step != self.num_timesteps:
            # the final evaluation's picture, when figure_every skipped it
            self._log_figure(self.num_timesteps, self.history[-1]["p"])
            self.logger.dump(self.num_timesteps)

    # ----------------------------------------------------------------------------------------------
    def _evaluate(self) -> None:
        self.report_card = evaluate_states(self.states, self._probs, self.seed)
        metrics, p = self.report_card.metrics, self.report_card.p
        step = self.num_timesteps
        for key, value in metrics.items():
            self.logger.record(key, value)
        # the history keeps the stored metrics; the derived ones (the score) are computed again from them
        self.history.append({"timesteps": step, **{m.tag: metrics[m.tag] for m in STORED if m.tag in metrics}, "p": p})
        self.figure_history.append(step, p)
        self._log_tensorboard_extras(step, p)
        self.logger.dump(step)
        self._n_evaluations += 1
        self._next_eval = (step // self.eval_freq + 1) * self.eval_freq
        self._due = False
        if self.verbose:
            summary = ", ".join(
                f"{k} {metrics[k]:.4f}" for k in (MARGINAL_ENTROPY.tag, EXPECTED_REWARD.tag) if k in metrics
            )
            print(f"EntropyCallback at {step} steps: {summary}")
        self._check_collapse(metrics[NORMALIZED_MARGINAL_ENTROPY.tag], step)

    def _log_tensorboard_extras(self, step: int, p: np.ndarray) -> None:
        counts = self._action_counts
        if self._writer is not None:
            self._add_histogram("actions/marginal", p, step)
            if counts.sum():
                self._add_histogram("train/action_histogram", counts.astype(np.float64), step)
        counts[:] = 0
        # the picture goes to TensorBoard only: not drawn (0.1 s) when the run logs no TensorBoard
        if (
            self.log_figures
            and self._writer is not None
            and (self._n_evaluations % self.figure_every == 0 or self._final)
        ):
            self._log_figure(step, p)

    def _log_figure(self, step: int, p: np.ndarray) -> None:
        if self._figure is None:
            self._figure = DistributionFigure(len(p), self._total_steps)
        image = self._figure.render(self.figure_history, p, step)
        self.logger.record("actions/distribution", Image(image, "HWC"), exclude=("stdout", "log", "json", "csv"))
        self._figure_step = step

    def _add_histogram(self, tag: str, weights: np.ndarray, step: int) -> None:
        """A histogram over action indices whose bucket for action a (centred on a) holds ``weights[a]``; past
        ``HISTOGRAM_BUCKETS`` actions, each bucket holds a run of neighbouring actions (an event file of tens of
        KB a step at any K; TensorBoard shows about 30 buckets anyway)."""
        actions = np.arange(len(weights), dtype=np.float64)
        per_bucket = -(-len(weights) // HISTOGRAM_BUCKETS)
        starts = np.arange(0, len(weights), per_bucket)
        total = float(weights.sum())
        self._writer.add_histogram_raw(
            tag,
            min=0.0,
            max=float(len(weights) - 1),
            num=total,
            sum=float((actions * weights).sum()),
            sum_squares=float((actions**2 * weights).sum()),
            bucket_limits=(np.minimum(starts + per_bucket, len(weights)) - 0.5).tolist(),
            bucket_counts=np.add.reduceat(weights, starts).tolist(),
            global_step=step,
        )

    def _check_collapse(self, normalized_entropy: float, step: int) -> None:
        if self.min_entropy is None or normalized_entropy >= self.min_entropy:
            return
        message = (
            f"policy collapse at {step} steps: normalized marginal entropy {normalized_entropy:.4f} "
            f"< min_entropy {self.min_entropy}"
        )
        if self.stop_on_collapse:
            message += "; stopping training (stop_on_collapse=True)"
            self._stop = True  # _on_step returns False at the next step
        warnings.warn(message, stacklevel=3)

    # ----------------------------------------------------------------------------------------------
    def save_history(self, path: str | os.PathLike[str]) -> Path:
        """Write ``history`` to ``.csv`` (columns: timesteps, every metric, p_0 ... p_{K-1}) or ``.json``."""
        path = Path(path)
        if path.suffix not in (".csv", ".json"):
            raise ValueError(f"history files are .csv or .json, got {path.name!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".json":
            rows = [{**row, "p": row["p"].tolist()} for row in self.history]
            return write_text_atomically(path, json.dumps(rows, indent=1))
        metric_keys = [m.tag for m in STORED if self.history and m.tag in self.history[0]]
        n_actions = len(self.history[0]["p"]) if self.history else 0
        with atomic_path(path) as temporary, open(temporary, "w", newline="") as stream:  # whole or not at all
            writer = csv.writer(stream)
            writer.writerow(["timesteps", *metric_keys, *(f"p_{a}" for a in range(n_actions))])
            for row in self.history:
                writer.writerow([row["timesteps"], *(repr(row[k]) for k in metric_keys), *map(repr, row["p"].tolist())])
        return path


def _make_task(env_id: str, task_kwargs: dict[str, Any]) -> Any:
    """The bare task registered as ``env_id``, with ``task_kwargs``."""
    from personalization_gym.registration import make_task

    if not isinstance(task_kwargs, dict):
        raise ValueError(f"eval_env_kwargs must be a dict of the task's arguments, got {task_kwargs!r}")
    try:
        return make_task(env_id, **task_kwargs)
    except ValueError as error:
        raise ValueError(f"eval_env: {error}") from None


def _describe(env: Any) -> str:
    """An env's class, with its registered id when Gymnasium knows one."""
    if env is None:
        return "None"
    if isinstance(env, VecEnv):
        try:
            spec = env.get_attr("spec", indices=[0])[0]
        except AttributeError:
            spec = None
    else:
        spec = getattr(getattr(env, "unwrapped", env), "spec", None)
    return f"{type(env).__name__} of {spec.id}" if spec is not None else type(env).__name__
