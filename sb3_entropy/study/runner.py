"""Running a study: every agent of an experiment with every seed, in worker processes or as Ray tasks."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import personalization_gym
from sb3_entropy.atomic import write_text_atomically
from sb3_entropy.metrics import ACTION_KEYS, ENTROPY_KEYS, EXPOSURE_KEYS, entropy, exposure_metrics, head_size, marginal
from sb3_entropy.probs import softmax_policy
from sb3_entropy.study.experiments import Experiment
from sb3_entropy.study.mean_runs import write_mean_runs
from sb3_entropy.study.progress import RUN_COST, StepsReporter, StudyProgress
from sb3_entropy.study.runs import RunSpec, agent_hparams, check_run, one_torch_thread, train
from sb3_entropy.study.workers import check_main_is_guarded, init_worker, progress_sender

__all__ = [
    "ExperimentResult",
    "MissingRunsError",
    "StudyPlan",
    "evaluation_baselines",
    "plan_experiment",
    "run_experiment",
    "run_plan",
]

RAY_CONNECT_SECONDS = 30  # how long a Ray cluster may take to answer before --ray-address is an error
METRIC_KEYS = (*ENTROPY_KEYS, *ACTION_KEYS, *EXPOSURE_KEYS)  # every run's history has these (reward keys: tasks only)


class MissingRunsError(ValueError):
    """Runs asked for without training that are not stored with the settings asked for."""


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


def evaluation_baselines(expected: np.ndarray, temperature: float = 0.1) -> dict[str, float]:
    """What a uniformly random policy and the oracle (best action for every state) score on an evaluation set.

    Also the oracle's marginal entropy H(p), so that an agent's diversity can be read against the diversity the
    task asks for. Where several actions tie for best the oracle splits evenly among them (``oracle_entropy``);
    ``oracle_tied`` is the share of states with such a tie. With ties, other oracles reach the same reward with
    less diversity: ``oracle_entropy_cover`` is H(p) of one that gives every state the best action shared by the
    most states still unserved (a greedy cover), an upper bound on the least diverse oracle's H(p).

    ``exact_q`` and ``exact_q_entropy`` are the reward and H(p) of a Q-learner whose Q-values are exact, read as
    the Q-learning agents are, ``softmax(Q / temperature)``: a reference for DQN and QR-DQN, not a bound (a
    learned Q with wider gaps between actions is read more greedily and can score more).
    Where rewards are small against the temperature (Ads-v0's click rates), that policy is nearly uniform.

    ``<policy>_gini``, ``<policy>_long_tail_share`` and ``<policy>_aggregate_diversity`` are the exposure metrics
    of the oracle and of that Q-learner (see :mod:`sb3_entropy.metrics`); ``uniform_long_tail_share`` is the
    long-tail share of the random policy (its Gini is 0).
    """
    expected = np.asarray(expected, dtype=np.float64)
    best = expected == expected.max(axis=1, keepdims=True)
    oracle_policy = best / best.sum(axis=1, keepdims=True)
    exact_q = softmax_policy(expected, temperature)
    exposure = {
        f"{name}_{key.split('/')[1]}": value
        for name, policy in (("oracle", oracle_policy), ("exact_q", exact_q))
        for key, value in exposure_metrics(marginal(policy), np.bincount(policy.argmax(axis=1))).items()
    }
    n_actions = expected.shape[1]
    return exposure | {
        "uniform_long_tail_share": (n_actions - head_size(n_actions)) / n_actions,
        "random": float(expected.mean()),
        "oracle": float(expected.max(axis=1).mean()),
        "oracle_entropy": float(entropy(marginal(oracle_policy))),
        "oracle_tied": float((best.sum(axis=1) > 1).mean()),
        "oracle_entropy_cover": float(entropy(_greedy_cover_marginal(best))),
        "exact_q": float((exact_q * expected).sum(axis=1).mean()),
        "exact_q_entropy": float(entropy(marginal(exact_q))),
        "temperature": float(temperature),
    }


def _greedy_cover_marginal(best: np.ndarray) -> np.ndarray:
    """p(a) of an oracle that serves the states in rounds: each round, the action best for the most states not yet
    served goes to all of them (ties between actions go to the lowest index)."""
    counts = np.zeros(best.shape[1])
    unserved = np.ones(len(best), dtype=bool)
    while unserved.any():
        action = int(best[unserved].sum(axis=0).argmax())
        served = unserved & best[:, action]
        counts[action] = served.sum()
        unserved &= ~served
    return counts / len(best)


def _run_in_worker(spec: RunSpec, send: Callable | None = None, key: Any = None) -> dict[str, Any]:
    """One run, its failure caught: a bad hyperparameter or a crash in one run must not stop the others. With
    ``send``, the run's progress goes there as ``(key, timesteps)`` a few times a second."""
    start = time.perf_counter()
    try:
        with one_torch_thread():  # in a worker process or, with workers=1, in the caller's (restored after)
            _, callback = train(spec, callbacks=() if send is None else (StepsReporter(send, key),))
    except Exception as error:  # reported with the run (its first line; the traceback in a file); the study goes on
        first_line = (str(error).strip().splitlines() or [""])[0]
        return {
            "error": f"{type(error).__name__}: {first_line}",
            "traceback": traceback.format_exc(),
            "seconds": time.perf_counter() - start,
        }
    history = [{**row, "p": row["p"].tolist()} for row in callback.history]
    return {"history": history, "seconds": time.perf_counter() - start}


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


def plan_experiment(
    experiment: Experiment,
    seeds: int,
    out_dir: Path,
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
    plan.baselines = evaluation_baselines(env.unwrapped.eval_set().expected)
    if hasattr(env.unwrapped, "fit_report"):
        plan.task_note = f"the task's {env.unwrapped.fit_report}"
        report(f"{experiment.name}: {plan.task_note}")
    plan.specs = {
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
        )
        for name, agent in experiment.agents.items()
        for seed in range(seeds)
    }
    try:
        for (name, seed), spec in plan.specs.items():
            if seed == 0:  # one model per agent, on the task built above: the seed changes no setting
                try:
                    check_run(spec, env.unwrapped)
                except ValueError as error:
                    raise ValueError(f"{where}: agents.{name}: {error}") from None
    finally:
        env.close()
    return plan


def run_experiment(
    experiment: Experiment,
    seeds: int,
    out_dir: Path,
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
    plan = plan_experiment(experiment, seeds, out_dir, quick, steps, data_dir, download, literal, report)
    return run_plan(plan, report, workers, resume, ray_address)


def run_plan(
    plan: StudyPlan,
    report: Callable[[str], None] = print,
    workers: int = 1,
    resume: bool = False,
    ray_address: str | None = None,
    show_progress: bool = False,
    train_missing: bool = True,
) -> ExperimentResult:
    """Train the runs of ``plan`` (see :func:`run_experiment`). With ``show_progress``, a display of the whole
    study (:class:`~sb3_entropy.study.progress.StudyProgress`) from its start, and each run's line through it.
    Without ``train_missing``, only stored runs are used (``resume`` must be set): a MissingRunsError names the
    runs that are not stored with these settings, and nothing trains."""
    experiment, specs = plan.experiment, plan.specs
    result = ExperimentResult(experiment, quick=plan.quick, baselines=plan.baselines, task_note=plan.task_note)
    if plan.missing_data is not None:
        result.missing_data = plan.missing_data
        return result
    runs_dir = plan.out_dir / experiment.name / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    outcomes = _stored_outcomes(experiment.name, specs, runs_dir, report) if resume else {}
    # each replaces its TensorBoard folder when it trains; the dearest start first (see RUN_COST)
    todo = sorted((key for key in specs if key not in outcomes), key=lambda key: -RUN_COST.get(specs[key].algo, 1.0))
    if todo and not train_missing:
        names = ", ".join(f"{agent} seed {seed}" for agent, seed in sorted(todo))
        raise MissingRunsError(f"{experiment.name}: {len(todo)} of {len(specs)} runs are not stored in {runs_dir} "
                               f"with these settings ({names})")  # fmt: skip
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
            _store_outcome(runs_dir, key, specs[key], outcome)
        reported += 1
        line = _run_line(f"[{reported}/{len(specs)}] {experiment.name} {key[0]} seed {key[1]}", outcome)
        if progress is None:
            report(line)
        else:
            progress.finished(key, line, kept=bool(outcome.get("resumed")))

    for key in [key for key in specs if key in outcomes]:
        finish(key, outcomes[key])
    try:
        if ray_address is not None:
            _run_on_ray(ray_address, [(key, specs[key]) for key in todo], finish)
        elif workers <= 1 or len(todo) <= 1:
            send = None if progress is None else (lambda message: progress.advanced(*message))
            for key in todo:
                finish(key, _run_in_worker(specs[key], send, key))
        else:
            _run_in_pool(workers, [(key, specs[key]) for key in todo], finish, progress)
    finally:
        if progress is not None:
            progress.close()

    _collect(result, specs, outcomes)
    hparams = {
        name: agent_hparams(experiment.name, name, agent.algo, agent.regularizer, agent.coefficient)
        for name, agent in experiment.agents.items()
    }
    write_mean_runs(plan.out_dir / "tb", experiment.name, result.histories, result.baselines, hparams)
    result.seconds = time.perf_counter() - start
    return result


def _store_outcome(runs_dir: Path, key: tuple[str, int], spec: RunSpec, outcome: dict[str, Any]) -> None:
    """A finished run's history, with the settings it ran with (``--resume`` compares them), or its traceback."""
    stem = f"{key[0]}_seed{key[1]}"  # agent names may hold dots (a frontier's a2c_marginal_0.05): no with_suffix
    if "history" in outcome:
        write_text_atomically(runs_dir / f"{stem}.json", json.dumps({**outcome, "settings": _settings_of(spec)}))
        (runs_dir / f"{stem}.error.txt").unlink(missing_ok=True)  # an earlier call's failure
    if "traceback" in outcome:
        write_text_atomically(runs_dir / f"{stem}.error.txt", outcome["traceback"])


def _run_line(name: str, outcome: dict[str, Any]) -> str:
    """The line printed when a run is over: its final reward, H(p) and effective actions, or why it failed."""
    if "error" in outcome:
        return f"{name}: FAILED: {outcome['error']}"
    last = outcome["history"][-1]
    how = "resumed from an earlier run" if outcome.get("resumed") else f"{outcome['seconds']:.1f} s"
    return (
        f"{name}: reward {last['eval/expected_reward']:.3f}, marginal entropy {last['entropy/marginal']:.3f} nats, "
        f"{last['actions/effective_number']:.1f} effective actions ({how})"
    )


def _stored_outcomes(
    name: str, specs: dict[tuple[str, int], RunSpec], runs_dir: Path, report: Callable[[str], None]
) -> dict[tuple[str, int], dict[str, Any]]:
    """The runs stored in ``runs_dir`` that ran with the same settings as their spec (``--resume``); each one that
    cannot be used is reported, with why, and trains again."""
    outcomes: dict[tuple[str, int], dict[str, Any]] = {}
    for key, spec in specs.items():
        path = runs_dir / f"{key[0]}_seed{key[1]}.json"
        if not path.is_file():
            continue
        try:
            saved = json.loads(path.read_text())
            saved["history"][-1]
        except (OSError, UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError) as error:
            report(f"{name} {key[0]} seed {key[1]}: {path} is unreadable ({type(error).__name__}: {error}), rerun")
            continue
        if saved.get("settings") != _settings_of(spec):
            report(f"{name} {key[0]} seed {key[1]}: settings changed since the saved run, rerun")
        elif not set(METRIC_KEYS) <= set(saved["history"][-1]):
            report(f"{name} {key[0]} seed {key[1]}: saved before some metrics existed, rerun")
        else:
            outcomes[key] = {**saved, "resumed": True}
    return outcomes


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
        result.run_seconds += outcome.get("seconds", 0.0)
        result.resumed_runs += bool(outcome.get("resumed"))
        agent = experiment.agents[key[0]]
        described = {
            "experiment": experiment.name, "agent": key[0], "algo": agent.algo, "regularizer": agent.regularizer or "",
            "per_state_weight": agent.per_state_weight, "ent_coef": agent.coefficient, "seed": key[1],
        }  # fmt: skip
        for row in history:
            result.rows.append(described | row)


def _settings_of(spec: RunSpec) -> dict[str, Any]:
    """What a run's results depend on, as saved with it (JSON-comparable), for --resume."""
    return json.loads(json.dumps({
        "env_id": spec.env_id, "algo": spec.algo, "seed": spec.seed, "timesteps": spec.timesteps,
        "net_arch": spec.net_arch, "hyperparameters": spec.hyperparameters, "batched": spec.batched,
        "eval_freq": spec.eval_freq, "temperature": spec.temperature,
        **({"regularizer": spec.regularizer, "per_state_weight": spec.per_state_weight} if spec.regularizer else {}),
        "env_kwargs": {k: v for k, v in spec.env_kwargs.items() if k not in ("data_dir", "download")},
    }, default=str))  # fmt: skip


def _keyed_run(item: tuple[tuple[str, int], RunSpec]) -> tuple[tuple[str, int], dict[str, Any]]:
    key, spec = item
    return key, _run_in_worker(spec, progress_sender(), key)


def _run_in_pool(
    workers: int,
    items: list[tuple[tuple[str, int], RunSpec]],
    finish: Callable[[tuple[str, int], dict[str, Any]], None],
    progress: StudyProgress | None,
) -> None:
    """The runs in a pool of spawned processes; outcomes handed to ``finish`` as they arrive, and the workers'
    progress messages to ``progress`` by a thread of this process."""
    check_main_is_guarded()
    context = multiprocessing.get_context("spawn")
    messages = context.Queue() if progress is not None else None
    pool = context.Pool(min(workers, len(items)), initializer=init_worker, initargs=(os.getpid(), messages))
    listening = threading.Event()
    if messages is not None:
        listening.set()
        threading.Thread(target=_relay, args=(messages, progress, listening), daemon=True, name="progress").start()
    try:
        for key, outcome in pool.imap_unordered(_keyed_run, items):
            finish(key, outcome)
        pool.close()
    except BaseException:  # Ctrl-C included: stop every worker now, keep the runs already written
        pool.terminate()
        raise
    finally:
        listening.clear()
        pool.join()


def _relay(messages: Any, progress: StudyProgress, listening: threading.Event) -> None:
    """Hand the workers' ``(key, timesteps)`` messages to ``progress`` until ``listening`` is cleared."""
    while listening.is_set():
        try:
            key, timesteps = messages.get(timeout=0.2)
        except Exception:  # queue.Empty; or the queue closed as the pool ends
            continue
        if listening.is_set():
            progress.advanced(key, timesteps)


def check_ray_address(address: str, timeout: float = 10.0) -> None:
    """A ValueError within ``timeout`` seconds if nothing listens at a Ray address (``host:port`` or
    ``ray://host:port``): ``ray.init`` itself retries an unreachable address for minutes. ``"auto"`` is left to
    Ray, which says at once when no cluster runs on this machine."""
    if address == "auto":
        return
    host, separator, port = address.removeprefix("ray://").rpartition(":")
    if not separator or not host or not port.isdigit():
        raise ValueError(f"--ray-address {address}: give host:port (such as 10.0.0.5:6379), ray://host:port or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        raise ValueError(
            f"--ray-address {address}: no Ray cluster answers there ({error.strerror or error}, waited at most "
            f"{timeout:g} s); start one with `ray start --head` and give the address it prints, or use auto"
        ) from None


def connect_ray(address: str) -> None:
    """Connect to the Ray cluster at ``address`` (unless Ray is already initialized): a ValueError within about
    half a minute when there is none (``check_ray_address`` first, then Ray's own attempt)."""
    try:
        import ray
    except ImportError as error:
        raise ImportError('running on Ray needs the ray extra: pip install -e ".[ray]"') from error
    if ray.is_initialized():
        return
    check_ray_address(address)
    # ray.init retries a port that accepts connections but is not Ray's for many minutes: try it first in a child
    # process that is given RAY_CONNECT_SECONDS
    probe = "import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); ray.shutdown()"
    try:
        tried = subprocess.run(
            [sys.executable, "-c", probe, address], capture_output=True, text=True, timeout=RAY_CONNECT_SECONDS
        )
    except subprocess.TimeoutExpired:
        raise ValueError(
            f"--ray-address {address}: no Ray cluster answered within {RAY_CONNECT_SECONDS} s (something listens "
            "there, but not Ray's GCS server); give the address `ray start --head` printed, or auto"
        ) from None
    if tried.returncode != 0:
        last = [line for line in tried.stderr.splitlines() if line.strip()][-1:] or ["(no message)"]
        raise ValueError(f"--ray-address {address}: cannot connect: {last[0]}")
    ray.init(address=address, log_to_driver=False)


def _run_on_ray(address: str, items: list, finish: Callable[[tuple[str, int], dict[str, Any]], None]) -> None:
    """Each run a Ray task of one CPU; outcomes handed to ``finish`` as they arrive."""
    import ray

    connect_ray(address)
    remote_run = ray.remote(num_cpus=1)(_keyed_run)
    pending = [remote_run.remote(item) for item in items]
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            finish(*ray.get(ready[0]))
    except BaseException:  # Ctrl-C included: cancel what has not finished
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
