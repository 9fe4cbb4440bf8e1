"""Tune an experiment's agents for reward alone with Optuna, then judge them on fresh seeds.

    personalization-gym tune music                                     # every agent, 20 trials each
    personalization-gym tune music --agents a2c dqn --trials 3 --steps 2000   # a quick look
    personalization-gym reproduce music --hyperparams tuning/music/tuned.yml  # the study, tuned, on seeds 0-4
    personalization-gym tune mnist --resume                            # go on after Ctrl-C or a crash
    personalization-gym tune ads --storage postgresql://host/db --resume       # on each of several machines

Each agent gets an Optuna study: a seeded TPE sampler proposes hyperparameters from the agent's search space
(sb3_entropy/experiments/search_space.yml, or --search-space); a trial trains the agent at the tuning budget on
every tuning seed, and its value is the mean final exact expected reward, nothing else: no entropy reaches the
tuner. The median pruner stops a trial whose first seed's expected reward, at one of its evaluations, is below
the median of the trials before it. Studies are kept in DIR/EXPERIMENT/tuning.db (SQLite), or in --storage.

Writes DIR/EXPERIMENT/tuned.yml (an experiment file: the tuned agents' chosen hyperparameters, and a 'tuning'
section with the budget, the tuning seeds and every trial's reward), trials.csv (one row per trial) and
tuning.png (reward per trial).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

import personalization_gym
from sb3_entropy.agents import rounded_up
from sb3_entropy.baselines import evaluation_baselines
from sb3_entropy.study import available_experiments, load_experiment
from sb3_entropy.study.analysis import three_decimals
from sb3_entropy.study.cli.parsing import TOOL, Distinct, command_parser, in_flags
from sb3_entropy.study.experiments import Experiment, experiment_file, read_yaml
from sb3_entropy.study.runs import limit_threads
from sb3_entropy.study.tuning import DEFAULT_TUNING_SEEDS, StudyExistsError, tune_agents
from sb3_entropy.study.tuning_files import DEFAULT_SEARCH_SPACE, Dimension, load_search_space, write_tuning_outputs


def _parser(prog: str | None) -> argparse.ArgumentParser:
    """tune's command line."""
    parser = command_parser(__doc__, prog)
    parser.add_argument("experiment", metavar="EXPERIMENT", help=f"{available_experiments()} or a .yml path")
    parser.add_argument(
        "--agents", nargs="+", action=Distinct, default=None, metavar="AGENT", help="agents to tune (default: all)"
    )
    parser.add_argument("--trials", type=int, default=20, help="finished trials per agent (default 20)")
    parser.add_argument("--steps", type=int, default=None, help="training steps per run (default: the experiment's)")
    parser.add_argument(
        "--seeds", type=int, nargs="+", action=Distinct, default=list(DEFAULT_TUNING_SEEDS), metavar="SEED",
        help="tuning seeds: every trial trains on each (default: 1000 1001; the study's seeds are 0, 1, ...)",
    )  # fmt: skip
    parser.add_argument("--evaluations", type=int, default=10, help="evaluations per run, for pruning (default 10)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel processes (default: cores)")
    parser.add_argument("--out", default="tuning", help="output folder (default tuning/)")
    parser.add_argument("--storage", default=None, help="an Optuna storage URL (default: sqlite in DIR/EXPERIMENT/)")
    parser.add_argument("--resume", action="store_true", help="go on with the studies already in the storage")
    parser.add_argument("--search-space", default=None, help=f"search-space YAML (default {DEFAULT_SEARCH_SPACE.name})")
    parser.add_argument("--sampler-seed", type=int, default=0, help="seed of the TPE sampler (default 0)")
    parser.add_argument(
        "--startup-trials", type=int, default=5,
        help="trials sampled at random, and finished before the pruner prunes (default 5)",
    )  # fmt: skip
    parser.add_argument("--data-dir", default=None, help="data root for tasks that need data")
    parser.add_argument("--no-download", action="store_true", help="never download data")
    parser.add_argument("--literal", action="store_true", help="the reference setup: one env (default: 32 in a batch)")
    return parser


def _chosen(args: argparse.Namespace) -> tuple[Experiment, list[str], dict, dict]:
    """The experiment, the agents to tune, their search space and the experiment file's own text; a ValueError
    for an experiment or agents that cannot be tuned."""
    experiment = load_experiment(args.experiment)
    if experiment.frontier is not None:
        raise ValueError(f"experiment {args.experiment} is a frontier study: tune the experiment it extends instead")
    agents = args.agents or list(experiment.agents)
    unknown = [agent for agent in agents if agent not in experiment.agents]
    if unknown:
        raise ValueError(
            f"--agents: experiment {experiment.name} has no agent {unknown}; valid: {list(experiment.agents)}"
        )
    regularized = [agent for agent in agents if experiment.agents[agent].regularizer is not None]
    if regularized:
        raise ValueError(f"--agents: {regularized} are regularised variants; tune the stock agents")
    space = load_search_space(args.search_space, batched=not args.literal)
    missing = sorted({experiment.agents[agent].algo for agent in agents} - set(space))
    if missing:
        raise ValueError(f"--search-space {args.search_space or DEFAULT_SEARCH_SPACE}: no dimensions for {missing}, "
                         f"the algorithm(s) of the agents to tune; it has {list(space)}")  # fmt: skip
    source = read_yaml(experiment_file(args.experiment), f"experiment {experiment.name}")
    return experiment, agents, space, source


def _print_tunings(tunings: dict) -> None:
    """One line per agent: its trials (pruned, failed), the best mean reward and the hyperparameters chosen."""
    print(f"{'agent':<8} {'trials':>6} {'pruned':>6} {'failed':>6} {'reward':>8}  chosen")
    for agent, tuning in tunings.items():
        best = tuning.best
        chosen = (
            ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items())
            if best
            else "-"
        )
        reward = f"{best.value:.4f}" if best else "-"
        counts = f"{len(tuning.trials):>6} {tuning.count('PRUNED'):>6} {tuning.count('FAIL'):>6}"
        print(f"{agent:<8} {counts} {reward:>8}  {chosen}")


def _check_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse counts out of range and repeated seeds: exit 2 naming the flag."""
    for flag, value, minimum in (
        ("--trials", args.trials, 1), ("--steps", args.steps, 1), ("--evaluations", args.evaluations, 1),
        ("--workers", args.workers, 1), ("--sampler-seed", args.sampler_seed, 0),
        ("--startup-trials", args.startup_trials, 0),
    ):  # fmt: skip
        if value is not None and value < minimum:
            parser.error(f"{flag} must be an integer >= {minimum}, got {value}")
    negative = [seed for seed in args.seeds if seed < 0]  # a seed given twice is refused as the flag is parsed
    if negative:
        parser.error(f"--seeds must be integers >= 0, got {negative[0]}")
    if args.storage is not None:  # before the banner, not as a database driver's traceback after it
        try:
            make_url(args.storage)
        except ArgumentError:
            parser.error(f"--storage {args.storage!r} is not a database URL such as sqlite:///tuning.db or "
                         "postgresql://host/db")  # fmt: skip
        problem = _unopenable(args.storage)
        if problem:
            parser.error(f"--storage {args.storage!r}: cannot open the database ({problem}); give a database the "
                         "tuning can open (sqlite:///PATH: a file in a writable folder that exists)")  # fmt: skip


def _unopenable(storage: str) -> str | None:
    """Why the database at ``storage`` cannot be opened (its driver's words), or None when it opens."""
    try:
        engine = create_engine(storage)
        try:
            engine.connect().close()
        finally:
            engine.dispose()
    except (SQLAlchemyError, ImportError) as error:
        return str(getattr(error, "orig", None) or error).splitlines()[0]
    return None


def _task_data(experiment: Experiment, args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, float]]:
    """The task's arguments with its data found (downloaded unless --no-download), and its reward baselines."""
    env_kwargs = dict(experiment.task_kwargs) | personalization_gym.data_kwargs(
        experiment.task, args.data_dir, download=False if args.no_download else None
    )
    env = gym.make(experiment.task, **env_kwargs)
    baselines = evaluation_baselines(chunk.expected for chunk in env.unwrapped.eval_chunks())
    env.close()
    return env_kwargs, baselines


def _most_steps_trained(
    space: dict[str, list[Dimension]], experiment: Experiment, agents: list[str], steps: int
) -> int:
    """The most steps a trial can train: ``steps`` rounded up to the largest rollout the search space offers."""
    most = steps
    for agent in agents:
        for dimension in space.get(experiment.agents[agent].algo, []):
            if dimension.name == "n_steps":
                sizes = dimension.choices or range(int(dimension.low), int(dimension.high) + 1)
                most = max(most, *(rounded_up(steps, size) for size in sizes))
    return most


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = _parser(prog)
    args = parser.parse_args(argv)

    _check_flags(parser, args)
    try:
        experiment, agents, space, source = _chosen(args)
    except ValueError as error:
        parser.error(in_flags(error))
    study_seeds = sorted(set(args.seeds) & set(range(experiment.seeds)))
    if study_seeds:
        default = " ".join(map(str, DEFAULT_TUNING_SEEDS))
        parser.error(
            f"--seeds {study_seeds}: a study of {experiment.name} runs seeds 0-{experiment.seeds - 1}, and a tuned "
            f"agent is judged on seeds it was not tuned on; tune on others (default: {default})"
        )

    limit_threads()
    folder = Path(args.out) / experiment.name
    folder.mkdir(parents=True, exist_ok=True)
    storage = args.storage or f"sqlite:///{(folder / 'tuning.db').resolve()}"
    try:  # find (or download) the data once, here, rather than in every trial
        env_kwargs, baselines = _task_data(experiment, args)
    except personalization_gym.DataNotFoundError as error:
        print(f"error: {experiment.name}: {error}", file=sys.stderr)
        return 2

    start = time.perf_counter()
    steps = args.steps or experiment.steps
    if args.evaluations > steps:
        parser.error(f"--evaluations {args.evaluations:,}: a run of {steps:,} steps is evaluated at most once a step; "
                     f"give at most {steps:,}")  # fmt: skip
    print(
        f"Tuning {experiment.name} ({', '.join(agents)}): {args.trials} trials per agent of {steps:,} steps on seeds "
        f"{args.seeds}, {args.workers} worker(s); storage {storage}",
        flush=True,
    )
    most = _most_steps_trained(space, experiment, agents, steps)
    if most > steps:
        print(f"A trial whose n_steps does not divide {steps:,} trains whole rollouts, up to {most:,} steps; its "
              "line says how many.", flush=True)  # fmt: skip
    try:
        tunings = tune_agents(
            experiment, agents, space, trials=args.trials, steps=steps, seeds=args.seeds, storage=storage,
            env_kwargs=env_kwargs, evaluations=args.evaluations, sampler_seed=args.sampler_seed,
            startup_trials=args.startup_trials, batched=not args.literal, workers=args.workers, resume=args.resume,
        )  # fmt: skip
    except StudyExistsError as error:
        parser.error(f"{error} (--resume goes on with a study; --out or --storage chooses another storage)")
    except ValueError as error:
        parser.error(in_flags(error))
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished trials are kept in {storage}; --resume goes on from there", file=sys.stderr)
        return 130
    command = shlex.join([*(prog or f"{TOOL} tune").split(), *(argv if argv is not None else sys.argv[1:])])
    paths = write_tuning_outputs(experiment, source, tunings, baselines, folder, command)

    random, oracle = three_decimals(baselines["random"]), three_decimals(baselines["oracle"])
    print(f"\n{experiment.name}: tuned for the final expected reward (random policy {random}, oracle {oracle}); "
          f"{time.perf_counter() - start:.0f} s")  # fmt: skip
    _print_tunings(tunings)
    print(f"\nWritten: {', '.join(map(str, paths))}")
    print(f"Next, the study on fresh seeds: personalization-gym reproduce {args.experiment} --hyperparams {paths[0]}")
    return 0
