"""Reproduce the paper's experiments: YAML experiment files, runs over agents and seeds, results, figures, report.

The logic behind scripts/reproduce.py. An experiment file (``sb3_entropy/experiments/<name>.yml``) holds:
``task`` (a task id), ``net_arch``, ``steps``, ``eval_freq``, ``agents`` (agent name -> hyperparameters on top of
:data:`~sb3_entropy.training.AGENT_DEFAULTS`), optionally ``task_kwargs``, ``paper`` (agent -> published final
``reward`` and ``entropy``) and ``quick`` (``steps``, ``eval_freq``, ``n_eval`` for a fast, smaller study).
"""

from __future__ import annotations

import csv
import json
import math
import multiprocessing
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml

import personalization_gym
from sb3_entropy.figures import DownsampledHistory, action_colors, stacked_bars
from sb3_entropy.metrics import ACTION_KEYS, ENTROPY_KEYS, REWARD_KEYS
from sb3_entropy.training import AGENT_DEFAULTS, RunSpec, check_hyperparameters, one_torch_thread, train

__all__ = [
    "EXPERIMENTS_DIR",
    "Experiment",
    "ExperimentResult",
    "available_experiments",
    "bootstrap_ci",
    "load_experiment",
    "run_experiment",
    "write_outputs",
]

EXPERIMENTS_DIR = Path(__file__).parent / "experiments"
EXPERIMENT_KEYS = ("agents", "eval_freq", "net_arch", "paper", "quick", "steps", "task", "task_kwargs")
QUICK_KEYS = ("eval_freq", "n_eval", "steps")
PO_AGENTS = ("a2c", "ppo")
RESULT_COLUMNS = ("experiment", "agent", "seed", "timesteps", *ENTROPY_KEYS, *ACTION_KEYS, *REWARD_KEYS)


@dataclass
class Experiment:
    name: str
    task: str
    net_arch: list[int]
    steps: int
    eval_freq: int
    agents: dict[str, dict[str, Any]]
    task_kwargs: dict[str, Any] = field(default_factory=dict)
    paper: dict[str, dict[str, float]] = field(default_factory=dict)
    quick: dict[str, int] = field(default_factory=dict)


def available_experiments() -> list[str]:
    return sorted(path.stem for path in EXPERIMENTS_DIR.glob("*.yml"))


def _check_keys(where: str, mapping: Any, valid: tuple[str, ...], required: tuple[str, ...] = ()) -> None:
    if not isinstance(mapping, dict):
        raise ValueError(f"{where} must be a mapping, got {type(mapping).__name__}")
    unknown = sorted(set(mapping) - set(valid))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; valid: {list(valid)}")
    missing = [key for key in required if key not in mapping]
    if missing:
        raise ValueError(f"{where}: missing key(s) {missing}")


def load_experiment(name: str) -> Experiment:
    """A packaged experiment by name (see :func:`available_experiments`) or a YAML file by path."""
    path = Path(name)
    if path.suffix not in (".yml", ".yaml"):
        path = EXPERIMENTS_DIR / f"{name}.yml"
        if not path.is_file():
            raise ValueError(f"unknown experiment {name!r}; valid: {available_experiments()} or a path to a .yml file")
    elif not path.is_file():
        raise ValueError(f"experiment file {path} not found")
    data = yaml.safe_load(path.read_text())
    where = f"experiment {path.stem} ({path})"
    _check_keys(where, data, EXPERIMENT_KEYS, required=("task", "net_arch", "steps", "eval_freq", "agents"))
    if data["task"] not in personalization_gym.TASK_IDS:
        raise ValueError(f"{where}: unknown task {data['task']!r}; valid: {list(personalization_gym.TASK_IDS)}")
    _check_keys(f"{where}: agents", data["agents"], tuple(AGENT_DEFAULTS))
    for agent, hyperparameters in data["agents"].items():
        check_hyperparameters(agent, hyperparameters or {})
    _check_keys(f"{where}: quick", data.get("quick", {}), QUICK_KEYS)
    _check_keys(f"{where}: paper", data.get("paper", {}), tuple(AGENT_DEFAULTS))
    for agent, values in data.get("paper", {}).items():
        _check_keys(f"{where}: paper.{agent}", values, ("entropy", "reward"))
    return Experiment(
        name=path.stem,
        task=data["task"],
        net_arch=[int(size) for size in data["net_arch"]],
        steps=int(data["steps"]),
        eval_freq=int(data["eval_freq"]),
        agents={agent: dict(hp or {}) for agent, hp in data["agents"].items()},
        task_kwargs=dict(data.get("task_kwargs") or {}),
        paper=dict(data.get("paper") or {}),
        quick=dict(data.get("quick") or {}),
    )


@dataclass
class ExperimentResult:
    experiment: Experiment
    rows: list[dict[str, Any]] = field(default_factory=list)
    histories: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    missing_data: str | None = None
    failures: dict[tuple[str, int], str] = field(default_factory=dict)
    seconds: float = 0.0
    quick: bool = False


def _run_in_worker(spec: RunSpec) -> dict[str, Any]:
    """One run, its failure caught: a bad hyperparameter or a crash in one run must not stop the others."""
    start = time.perf_counter()
    try:
        with one_torch_thread():  # in a worker process or, with workers=1, in the caller's (restored after)
            _, callback = train(spec)
    except Exception as error:  # reported with the run; the study goes on
        return {"error": f"{type(error).__name__}: {error}", "seconds": time.perf_counter() - start}
    history = [{**row, "p": row["p"].tolist()} for row in callback.history]
    return {"history": history, "seconds": time.perf_counter() - start}


def _ignore_sigint() -> None:
    # Workers leave Ctrl-C to the main process, which then terminates them all at once.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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
    initialized Ray is used as it is); the results are the same as local runs'.
    """
    result = ExperimentResult(experiment, quick=quick)
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
        gym.make(experiment.task, **env_kwargs).close()
    except personalization_gym.DataNotFoundError as error:
        result.missing_data = str(error)
        report(f"{experiment.name}: data missing, experiment not run: {str(error).splitlines()[0]}")
        return result

    runs_dir = out_dir / experiment.name / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    specs = {
        (agent, seed): RunSpec(
            env_id=experiment.task,
            algo=agent,
            seed=seed,
            timesteps=settings["steps"],
            net_arch=experiment.net_arch,
            hyperparameters=hyperparameters,
            env_kwargs=env_kwargs,
            eval_freq=settings["eval_freq"],
            tensorboard_log=str(out_dir / experiment.name / "tb"),
            run_name=f"{agent}_seed{seed}",
            batched=not literal,
        )
        for agent, hyperparameters in experiment.agents.items()
        for seed in range(seeds)
    }
    outcomes: dict[tuple[str, int], dict[str, Any]] = {}
    if resume:  # a finished run counts only if it ran with the same settings
        for key, spec in specs.items():
            path = runs_dir / f"{key[0]}_seed{key[1]}.json"
            if path.is_file():
                saved = json.loads(path.read_text())
                if saved.get("settings") == _settings_of(spec):
                    outcomes[key] = {**saved, "resumed": True}
                else:
                    report(f"{experiment.name} {key[0]} seed {key[1]}: settings changed since the saved run, rerun")
    todo = [key for key in specs if key not in outcomes]
    start = time.perf_counter()
    reported = 0

    def finish(key: tuple[str, int], outcome: dict[str, Any]) -> None:
        nonlocal reported
        outcomes[key] = outcome
        if "history" in outcome and not outcome.get("resumed"):
            saved = {**outcome, "settings": _settings_of(specs[key])}
            (runs_dir / f"{key[0]}_seed{key[1]}.json").write_text(json.dumps(saved))
        reported += 1
        name = f"[{reported}/{len(specs)}] {experiment.name} {key[0]} seed {key[1]}"
        if "error" in outcome:
            report(f"{name}: FAILED: {outcome['error']}")
        else:
            last = outcome["history"][-1]
            how = "resumed from an earlier run" if outcome.get("resumed") else f"{outcome['seconds']:.1f} s"
            report(
                f"{name}: reward {last['eval/expected_reward']:.3f}, marginal entropy {last['entropy/marginal']:.3f} "
                f"nats, {last['actions/effective_number']:.1f} effective actions ({how})"
            )

    for key in [key for key in specs if key in outcomes]:
        finish(key, outcomes[key])
    if ray_address is not None:
        _run_on_ray(ray_address, [(key, specs[key]) for key in todo], finish)
    elif workers <= 1 or len(todo) <= 1:
        for key in todo:
            finish(key, _run_in_worker(specs[key]))
    else:
        pool = multiprocessing.get_context("spawn").Pool(min(workers, len(todo)), initializer=_ignore_sigint)
        try:
            keyed = pool.imap_unordered(_keyed_run, [(key, specs[key]) for key in todo])
            for key, outcome in keyed:
                finish(key, outcome)
            pool.close()
        except BaseException:  # Ctrl-C included: stop every worker now, keep the runs already written
            pool.terminate()
            raise
        finally:
            pool.join()

    for key in specs:  # rows in a stable order, whatever order the runs finished in
        outcome = outcomes[key]
        if "error" in outcome:
            result.failures[key] = outcome["error"]
            continue
        history = [{**row, "p": np.asarray(row["p"])} for row in outcome["history"]]
        result.histories[key] = history
        for row in history:
            result.rows.append({"experiment": experiment.name, "agent": key[0], "seed": key[1]} | row)
    result.seconds = time.perf_counter() - start
    return result


def _settings_of(spec: RunSpec) -> dict[str, Any]:
    """What a run's results depend on, as saved with it (JSON-comparable), for --resume."""
    return json.loads(json.dumps({
        "env_id": spec.env_id, "algo": spec.algo, "seed": spec.seed, "timesteps": spec.timesteps,
        "net_arch": spec.net_arch, "hyperparameters": spec.hyperparameters, "batched": spec.batched,
        "eval_freq": spec.eval_freq, "temperature": spec.temperature,
        "env_kwargs": {k: v for k, v in spec.env_kwargs.items() if k not in ("data_dir", "download")},
    }, default=str))  # fmt: skip


def _keyed_run(item: tuple[tuple[str, int], RunSpec]) -> tuple[tuple[str, int], dict[str, Any]]:
    key, spec = item
    return key, _run_in_worker(spec)


def _run_on_ray(address: str, items: list, finish: Callable[[tuple[str, int], dict[str, Any]], None]) -> None:
    """Each run a Ray task of one CPU; outcomes handed to ``finish`` as they arrive."""
    try:
        import ray
    except ImportError as error:
        raise ImportError('running on Ray needs the ray extra: pip install -e ".[ray]"') from error
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False)
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


# --------------------------------------------------------------------------------------------------
# Statistics


def bootstrap_ci(values: np.ndarray, rng: np.random.Generator, resamples: int = 10_000) -> tuple[float, float, float]:
    """Mean and 95 % percentile-bootstrap interval of the mean over the first axis (the seeds)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 1:
        return float(values[0]), float("nan"), float("nan")
    means = values[rng.integers(len(values), size=(resamples, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5], axis=0)
    return float(values.mean(axis=0)), float(low), float(high)


def _final(result: ExperimentResult, agent: str, key: str) -> np.ndarray:
    seeds = sorted(seed for (name, seed) in result.histories if name == agent)
    return np.array([result.histories[(agent, seed)][-1][key] for seed in seeds])


# --------------------------------------------------------------------------------------------------
# Outputs


def write_outputs(result: ExperimentResult, out_dir: Path) -> Path:
    """``results.csv`` and the PNG figures of one experiment in ``out_dir/<name>/``."""
    folder = out_dir / result.experiment.name
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "results.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=RESULT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(result.rows)
    if result.histories:
        _curves_figure(result, "eval/expected_reward", "expected reward", folder / "reward.png")
        _curves_figure(result, "entropy/marginal", "marginal entropy H(p) [nats]", folder / "entropy.png")
        for agent in {name for name, _ in result.histories}:
            _distribution_figure(result, agent, folder / f"distribution_{agent}.png")
    return folder


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _curves_figure(result: ExperimentResult, key: str, label: str, path: Path) -> None:
    plt = _pyplot()

    rng = np.random.default_rng(0)
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for agent in result.experiment.agents:
        runs = [result.histories[(name, seed)] for (name, seed) in sorted(result.histories) if name == agent]
        if not runs:
            continue
        length = min(len(run) for run in runs)  # the same schedule for every seed
        steps = [row["timesteps"] for row in runs[0][:length]]
        values = np.array([[row[key] for row in run[:length]] for run in runs])
        means = values.mean(axis=0)
        axes.plot(steps, means, label=agent.upper())
        if len(runs) > 1:
            resampled = values[rng.integers(len(runs), size=(2000, len(runs)))].mean(axis=1)
            low, high = np.percentile(resampled, [2.5, 97.5], axis=0)
            axes.fill_between(steps, low, high, alpha=0.25)
    if key == "entropy/marginal":
        n_actions = len(next(iter(result.histories.values()))[0]["p"])
        axes.axhline(math.log(n_actions), color="grey", linestyle=":", label=f"max log K = {math.log(n_actions):.3f}")
    axes.set_xlabel("environment steps")
    axes.set_ylabel(label)
    seeds = len({seed for _, seed in result.histories})
    axes.set_title(f"{result.experiment.name}: {label}\nmean and 95 % bootstrap band over {seeds} seed(s)", fontsize=10)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _distribution_figure(result: ExperimentResult, agent: str, path: Path) -> None:
    """The paper's sorted stacked bars of p(a) over training (first seed), one bar per evaluation (at most 64)."""
    plt = _pyplot()

    history = DownsampledHistory(capacity=64)
    seed = min(seed for name, seed in result.histories if name == agent)
    for row in result.histories[(agent, seed)]:
        history.append(row["timesteps"], row["p"])
    image = stacked_bars(history.marginals, action_colors(len(history.marginals[0])), 300, 640)
    figure, axes = plt.subplots(figsize=(7, 3.6))
    axes.imshow(image, aspect="auto", extent=(history.steps[0], history.steps[-1], 0, 1))
    axes.set_xlabel("environment steps")
    axes.set_ylabel("p(a), sorted")
    axes.set_title(f"{result.experiment.name}: {agent.upper()} action distribution over training (seed {seed})")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def report_section(result: ExperimentResult) -> str:
    """The Markdown section of one experiment: a table of final values and the entropy-gap sentence."""
    experiment = result.experiment
    title = f"## {experiment.name} ({experiment.task})\n"
    if result.missing_data is not None:
        return title + f"\nNot run: its data is missing.\n\n```\n{result.missing_data}\n```\n"
    rng = np.random.default_rng(0)
    seeds = len({seed for _, seed in result.histories})
    steps = result.rows[-1]["timesteps"] if result.rows else 0
    n_actions = len(result.rows[-1]["p"]) if result.rows else 0
    lines = [
        title,
        f"{seeds} seed(s), {steps:,} steps, marginal entropy in nats of at most log K = {math.log(n_actions):.3f}; "
        "mean [95 % bootstrap CI over seeds] of the final evaluation; run time "
        f"{result.seconds:.0f} s.\n",
        "| agent | reward (expected) | marginal entropy | effective actions | paper reward | paper entropy |",
        "|---|---|---|---|---|---|",
    ]
    for agent in experiment.agents:
        if not any(name == agent for name, _ in result.histories):
            lines.append(f"| {agent.upper()} | every run failed | | | | |")
            continue
        cells = []
        for key in ("eval/expected_reward", "entropy/marginal", "actions/effective_number"):
            mean, low, high = bootstrap_ci(_final(result, agent, key), rng)
            cells.append(f"{mean:.3f} [{low:.3f}, {high:.3f}]" if seeds > 1 else f"{mean:.3f}")
        paper = experiment.paper.get(agent, {})
        cells += [
            f"{paper['reward']:.3f}" if "reward" in paper else "-",
            f"{paper['entropy']:.3f}" if "entropy" in paper else "-",
        ]
        lines.append(f"| {agent.upper()} | " + " | ".join(cells) + " |")
    for (agent, seed), error in sorted(result.failures.items()):
        lines.append(f"\nRun {agent} seed {seed} failed: `{error}`")
    lines += ["", _gap_sentence(result, rng), ""]
    return "\n".join(lines)


def _gap_sentence(result: ExperimentResult, rng: np.random.Generator) -> str:
    finished = {agent for agent, _ in result.histories}
    po = [agent for agent in PO_AGENTS if agent in finished]
    if "dqn" not in finished or not po:
        return "Entropy gap: not applicable (it needs finished runs of DQN and of a policy-optimization agent)."
    seeds = sorted({seed for agent, seed in result.histories if agent == "dqn"})
    if any(sorted(s for a, s in result.histories if a == agent) != seeds for agent in po):
        return "Entropy gap: not computed (some runs failed, so the agents do not share the same seeds)."
    gap = np.mean([_final(result, agent, "entropy/marginal") for agent in po], axis=0) - _final(
        result, "dqn", "entropy/marginal"
    )
    mean, low, high = bootstrap_ci(gap, rng)
    who = " and ".join(agent.upper() for agent in po)
    if result.quick:
        verdict = "not tested by a quick run, whose agents are far from converged: run without --quick"
    elif len(gap) == 1:
        verdict = "one seed gives no interval: run more seeds to judge"
    elif high < 0:
        verdict = "reproduced: the interval lies below 0"
    elif low > 0:
        verdict = "not reproduced: the interval lies above 0, the opposite of the paper's finding"
    else:
        verdict = "not established: the interval includes 0"
    interval = f" [{low:.3f}, {high:.3f}]" if len(gap) > 1 else ""
    return (
        f"Entropy gap ({who} minus DQN, final marginal entropy): {mean:+.3f} nats{interval}; the paper's finding "
        f"that policy optimization ends with lower entropy than Q-learning is {verdict}."
    )


def write_report(results: list[ExperimentResult], path: Path, quick: bool = False) -> Path:
    header = (
        "# Reproduction report\n\n"
        "Final evaluation of every agent, as in 'Examining Policy Entropy of Reinforcement Learning Agents for "
        "Personalization Tasks' (arXiv 2211.11869). Reward: the exact expected reward of the policy on the "
        "evaluation set. Figures and per-evaluation results (results.csv) are in each experiment's folder.\n\n"
    )
    if quick:
        header += (
            "**Quick run**: far fewer steps and smaller evaluation sets than the paper's, to check the pipeline; "
            "the agents have not converged, so the entropy gap is not expected yet.\n\n"
        )
    path.write_text(header + "\n".join(report_section(result) for result in results))
    return path
