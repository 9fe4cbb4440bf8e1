"""A study's plan: every agent of an experiment with every seed, checked before any of them trains, then run (in
worker processes or as Ray tasks) into an :class:`~sb3_entropy.study.experiments.ExperimentResult`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import personalization_gym
from personalization_gym.checks import in_context
from personalization_gym.fingerprints import data_fingerprint
from sb3_entropy.atomic import write_text_atomically
from sb3_entropy.baselines import evaluation_baselines
from sb3_entropy.metrics import EFFECTIVE_ACTIONS, EXPECTED_REWARD, MARGINAL_ENTROPY
from sb3_entropy.study.dashboard import write_mean_runs
from sb3_entropy.study.execution import RUN_COST, StudyProgress, execute
from sb3_entropy.study.experiments import EXPERIMENTS_DIR, Experiment, ExperimentResult
from sb3_entropy.study.runs import RunSpec, agent_hparams, check_run, store_outcome, stored_outcomes
from sb3_entropy.tensorboard import agent_color, agent_positions

__all__ = [
    "MissingRunsError",
    "StudyPlan",
    "plan_experiment",
    "run_experiment",
    "run_plan",
]


class MissingRunsError(ValueError):
    """Runs asked for without training that are not stored with the settings asked for."""


@dataclass
class StudyPlan:
    """An experiment ready to run: its runs' specs, checked, and what the task's evaluation set scores."""

    experiment: Experiment
    out_dir: Path
    specs: dict[tuple[str, int], RunSpec] = field(default_factory=dict)
    baselines: dict[str, float] = field(default_factory=dict)
    missing_data: str | None = None
    task_note: str | None = None
    quick: bool = False


SOURCE_FILE = "experiment_file.txt"  # in an experiment's output folder: the file whose runs it holds


def _source(experiment: Experiment) -> str:
    """What an experiment's output folder records it came from: its file, and the tuned file its hyperparameters
    came from when they came from another (``NAME_tuned`` is one name for the hyperparameters of any tuned file)."""
    source = _file(experiment.path) if experiment.path else f"experiment {experiment.name}, built without a file"
    tuning = experiment.tuning
    if tuning is not None and tuning.path and _file(tuning.path) != source:
        source += f" with the hyperparameters of {_file(tuning.path)}"
    return source


def _file(path: str) -> str:
    """A packaged file by its place in the package (whose folder moves between installs), any other absolutely."""
    resolved = Path(path).resolve()
    if EXPERIMENTS_DIR in resolved.parents:
        return f"the packaged experiment file {resolved.relative_to(EXPERIMENTS_DIR).as_posix()}"
    return str(resolved)


def _check_folder_is_its_own(out_dir: Path, experiment: Experiment) -> None:
    """Refuse to write an experiment's folder that holds another file's experiment of the same name (two calls of
    reproduce with one --out and two files named alike): the second would overwrite the first's runs."""
    marker = out_dir / experiment.name / SOURCE_FILE
    if marker.is_file() and (owner := marker.read_text(encoding="utf-8").strip()) != _source(experiment):
        raise ValueError(
            f"{out_dir / experiment.name} holds the runs of {owner}, and experiment {experiment.name} is now "
            f"{_source(experiment)}: it would overwrite them. Give another --out, or rename the file"
        )


def plan_experiment(
    experiment: Experiment,
    seeds: int,
    out_dir: Path,
    *,
    quick: bool = False,
    steps: int | None = None,
    data_dir: str | None = None,
    download: bool = True,
    literal: bool = False,
    report: Callable[[str], None] = print,
) -> StudyPlan:
    """Every run of ``experiment`` with seeds 0..seeds-1, checked before any of them trains.

    The task is built once (its data found or downloaded, its arguments checked) and every agent's model once,
    without training, so settings that cannot work are a ValueError naming the experiment file and the agent here,
    not a failure in every run. Missing data is not an error: the plan says so (``missing_data``).
    """
    where = f"experiment {experiment.name}" + (f" ({experiment.path})" if experiment.path else "")
    _check_folder_is_its_own(out_dir, experiment)
    plan = StudyPlan(experiment, out_dir, quick=quick)
    settings = {"steps": experiment.steps, "eval_freq": experiment.eval_freq, "n_eval": None}
    if quick:
        settings |= experiment.quick
    if steps is not None:
        settings["steps"] = steps
    data = personalization_gym.data_kwargs(experiment.task, data_dir, download=None if download else False)
    env_kwargs = dict(experiment.task_kwargs) | data
    if settings["n_eval"] is not None:
        env_kwargs["n_eval"] = settings["n_eval"]
    try:  # find (or download) the data once, here, rather than in every run
        env = gym.make(experiment.task, **env_kwargs)
    except personalization_gym.DataNotFoundError as error:
        plan.missing_data = str(error)
        report(f"{experiment.name}: data missing, experiment not run: {str(error).splitlines()[0]}")
        return plan
    except (TypeError, ValueError) as error:  # TypeError: an argument the task does not take
        raise ValueError(f"{where}: task {experiment.task}, task_kwargs {experiment.task_kwargs}: {error}") from None
    plan.baselines = evaluation_baselines(chunk.expected for chunk in env.unwrapped.eval_chunks())
    if hasattr(env.unwrapped, "fit_report"):
        source = getattr(env.unwrapped, "ratings_file", None)  # MovieLens-v0: the file it found
        plan.task_note = (
            f"ratings from {source}; " if source else ""
        ) + f"{env.unwrapped.read_report}; the task's {env.unwrapped.fit_report}"
        report(f"{experiment.name}: {plan.task_note}")
    fingerprint = data_fingerprint(env.unwrapped)
    plan.specs = _specs(experiment, seeds, settings, env_kwargs, out_dir, literal, fingerprint)
    try:
        _check_runs(plan, env.unwrapped, where, settings["steps"], report)
    finally:
        env.close()
    return plan


def _check_runs(plan: StudyPlan, task: Any, where: str, steps: int, report: Callable[[str], None]) -> None:
    """Build each agent's model once on ``task`` (the seed changes no setting): settings that cannot work fail
    here, naming the agent; budgets that round up to SB3's whole rounds are reported."""
    rounded: dict[int, list[str]] = {}  # steps trained -> the agents whose budget rounds up to them
    for (name, seed), spec in plan.specs.items():
        if seed == 0:
            try:
                trained = check_run(spec, task)
            except ValueError as error:
                raise in_context(f"{where}: agents.{name}", error) from None
            if trained != spec.timesteps:
                rounded.setdefault(trained, []).append(name)
    for trained, names in rounded.items():
        who = "every agent" if len(names) == len(plan.experiment.agents) else ", ".join(names)
        report(f"{plan.experiment.name}: {who} trains {trained:,} steps, {steps:,} rounded up to SB3's whole "
               "rollouts (or rounds of train_freq)")  # fmt: skip


def _specs(
    experiment: Experiment,
    seeds: int,
    settings: dict[str, Any],
    env_kwargs: dict[str, Any],
    out_dir: Path,
    literal: bool,
    fingerprint: str | None = None,
) -> dict[tuple[str, int], RunSpec]:
    """Every run of the plan: each agent with each seed, at the budget and evaluation cadence of ``settings``."""
    return {
        (name, seed): RunSpec(
            env_id=experiment.task,
            algo=agent.algo,
            seed=seed,
            timesteps=settings["steps"],
            net_arch=experiment.net_arch,
            hyperparameters=agent.hyperparameters,
            env_kwargs=env_kwargs,
            eval_freq=settings["eval_freq"],
            tensorboard_log=str(out_dir / "tb"),  # one root for every experiment: <experiment>/<agent>/seed<N>
            experiment=experiment.name,
            agent=name,
            batched=not literal,
            regularizer=agent.regularizer,
            per_state_weight=agent.per_state_weight,
            data_fingerprint=fingerprint,
        )
        for name, agent in experiment.agents.items()
        for seed in range(seeds)
    }


def run_experiment(
    experiment: Experiment,
    seeds: int,
    out_dir: Path,
    *,
    quick: bool = False,
    steps: int | None = None,
    data_dir: str | None = None,
    download: bool = True,
    literal: bool = False,
    report: Callable[[str], None] = print,
    workers: int = 1,
    resume: bool = False,
    ray_address: str | None = None,
) -> ExperimentResult:
    """Train every agent of ``experiment`` with seeds 0..seeds-1, in ``workers`` processes.

    TensorBoard logs go to ``out_dir/<name>/tb``; each finished run's history to ``out_dir/<name>/runs/`` as JSON,
    which ``resume`` reuses instead of training again. A run that fails is recorded in ``result.failures``.
    With ``ray_address`` (an address, or ``"auto"``) the runs are Ray tasks on that cluster instead (an already
    initialized Ray is used as it is); the results are the same as local runs'. Settings that cannot work raise a
    ValueError before any run (:func:`plan_experiment`, which a caller with several experiments calls for all of
    them first, then :func:`run_plan` for each).
    """
    plan = plan_experiment(
        experiment, seeds, out_dir, quick=quick, steps=steps, data_dir=data_dir, download=download, literal=literal,
        report=report,
    )  # fmt: skip
    return run_plan(plan, report, workers=workers, resume=resume, ray_address=ray_address)


def run_plan(
    plan: StudyPlan,
    report: Callable[[str], None] = print,
    *,
    workers: int = 1,
    resume: bool = False,
    ray_address: str | None = None,
    show_progress: bool = False,
    train_missing: bool = True,
) -> ExperimentResult:
    """Train the runs of ``plan`` (see :func:`run_experiment`). With ``show_progress``, a display of the whole
    study (:class:`~sb3_entropy.study.execution.StudyProgress`) from its start, and each run's line through it.
    Without ``train_missing``, only stored runs are used (``resume`` must be set): a MissingRunsError names the
    runs that are not stored with these settings, and nothing trains."""
    experiment, specs = plan.experiment, plan.specs
    result = ExperimentResult(experiment, quick=plan.quick, baselines=plan.baselines, task_note=plan.task_note)
    if plan.missing_data is not None:
        result.missing_data = plan.missing_data
        return result
    runs_dir = plan.out_dir / experiment.name / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomically(plan.out_dir / experiment.name / SOURCE_FILE, _source(experiment) + "\n")
    why_not: dict[tuple[str, int], str] = {}
    outcomes = stored_outcomes(experiment.name, specs, runs_dir, report, why_not) if resume else {}
    todo = _to_train(plan, outcomes, runs_dir, train_missing, why_not)
    start = time.perf_counter()
    reported = 0
    progress = None
    if show_progress:
        runs = {key: (spec.algo, spec.timesteps) for key, spec in specs.items()}
        where = None if ray_address is not None else workers
        progress = StudyProgress(experiment.name, runs, len(outcomes), where, print_line=report)

    def finish(key: tuple[str, int], outcome: dict[str, Any]) -> None:
        nonlocal reported
        outcomes[key] = outcome
        if not outcome.get("resumed"):
            store_outcome(runs_dir, key, specs[key], outcome)
        reported += 1
        line = _run_line(f"[{reported}/{len(specs)}] {experiment.name} {key[0]} seed {key[1]}", outcome)
        if progress is None:
            report(line)
        else:
            progress.finished(key, line, kept=bool(outcome.get("resumed")))

    for key in [key for key in specs if key in outcomes]:
        finish(key, outcomes[key])
    try:
        execute([(key, specs[key]) for key in todo], finish, workers, ray_address, progress)
    finally:
        if progress is not None:
            progress.close()

    _collect(result, specs, outcomes)
    positions = agent_positions(plan.out_dir / "tb", list(experiment.agents))
    result.colors = {agent: agent_color(position) for agent, position in positions.items()}
    write_mean_runs(plan.out_dir / "tb", experiment.name, result.histories, result.baselines, _hparams(experiment),
                    positions)  # fmt: skip
    result.seconds = time.perf_counter() - start
    return result


def _to_train(
    plan: StudyPlan,
    outcomes: dict[tuple[str, int], dict[str, Any]],
    runs_dir: Path,
    train_missing: bool,
    why_not: dict[tuple[str, int], str],
) -> list[tuple[str, int]]:
    """The runs not stored, dearest first (see RUN_COST; each replaces its TensorBoard folder when it trains); a
    MissingRunsError naming them, each with why it is not usable, when nothing may train."""
    specs = plan.specs
    todo = sorted((key for key in specs if key not in outcomes), key=lambda key: -RUN_COST.get(specs[key].algo, 1.0))
    if todo and not train_missing:
        names = "; ".join(
            f"{agent} seed {seed}: {why_not.get((agent, seed), 'not stored')}" for agent, seed in sorted(todo)
        )
        raise MissingRunsError(f"{plan.experiment.name}: {len(todo)} of {len(specs)} runs are not stored in "
                               f"{runs_dir} with these settings ({names})")  # fmt: skip
    return todo


def _hparams(experiment: Experiment) -> dict[str, dict[str, Any]]:
    """Each agent's HParams settings, for its mean run's row."""
    return {
        name: agent_hparams(agent.algo, agent.regularizer, agent.coefficient)
        for name, agent in experiment.agents.items()
    }


def _run_line(name: str, outcome: dict[str, Any]) -> str:
    """The line printed when a run is over: its final reward, H(p) and effective actions, or why it failed."""
    if "error" in outcome:
        return f"{name}: FAILED: {outcome['error']}"
    last = outcome["history"][-1]
    how = "resumed from an earlier run" if outcome.get("resumed") else f"{outcome['seconds']:.1f} s"
    return (
        f"{name}: reward {last[EXPECTED_REWARD.tag]:.3f}, marginal entropy {last[MARGINAL_ENTROPY.tag]:.3f} nats, "
        f"{last[EFFECTIVE_ACTIONS.tag]:.1f} effective actions ({how})"
    )


def _collect(
    result: ExperimentResult, specs: dict[tuple[str, int], RunSpec], outcomes: dict[tuple[str, int], dict[str, Any]]
) -> None:
    """Every run's outcome into ``result``: its failure, or its history and one row per evaluation, in the specs'
    order whatever order the runs finished in."""
    experiment = result.experiment
    for key in specs:
        outcome = outcomes[key]
        if "error" in outcome:
            result.failures[key] = outcome["error"]
            continue
        history = [{**row, "p": np.asarray(row["p"])} for row in outcome["history"]]
        result.histories[key] = history
        result.environments[key] = outcome.get("environment")
        result.run_seconds += outcome.get("seconds", 0.0)
        result.resumed_runs += bool(outcome.get("resumed"))
        agent = experiment.agents[key[0]]
        described = {
            "experiment": experiment.name, "agent": key[0], "algo": agent.algo, "regularizer": agent.regularizer or "",
            "per_state_weight": agent.per_state_weight, "ent_coef": agent.coefficient, "seed": key[1],
        }  # fmt: skip
        for row in history:
            result.rows.append(described | row)
