"""Reproduce the paper's experiments, with more seeds than the paper used.

    personalization-gym reproduce music --agents a2c ppo dqn    # the paper's three agents, 5 seeds: 132 CPU s
    personalization-gym reproduce music                         # with TRPO and QR-DQN too: 461 CPU s
    personalization-gym report music --agents a2c ppo dqn       # the report and figures again, from the stored runs
    personalization-gym reproduce sample --agents a2c dqn --seeds 10   # the paper's two agents only, more seeds
    personalization-gym reproduce music mnist --seeds 5 --out results
    personalization-gym reproduce behavior ads --quick          # a smoke test of the pipeline, no verdict
    personalization-gym reproduce all --quick --skip-missing    # every experiment whose data is at hand
    personalization-gym reproduce frontier_music                # regularised A2C/PPO over a grid, DQN as reference

Experiments are YAML files (sb3_entropy/experiments/: sample, mnist, cifar10, music, ads, behavior, digits,
frontier_music, frontier_behavior, or a path to your own, whose task may be any registered id, my_package:Task-v0
included, and whose task_kwargs may name data files relative to the file). Writes, for each experiment,
DIR/EXPERIMENT/results.csv (one row per agent, seed and evaluation with every metric), DIR/tb/EXPERIMENT/
(TensorBoard: AGENT/seedN for every run, mean/AGENT for each agent's mean over seeds with 95 % bounds; open
with tensorboard --logdir DIR/tb), overview.png (the finding in one picture), reward.png and entropy.png (mean
and 95 % Student-t band over seeds), distribution_<agent>.png (the paper's sorted stacked action bars) and, with
--hyperparams, tuning.png (reward per trial, from the tuned file's record); and DIR/report.md, which opens
with the verdict: whether the entropy gap between policy-optimization agents and DQN is reproduced (Welch
intervals), with each agent's final reward and marginal entropy beside the paper's; then a
table per experiment (mean and Student-t interval over seeds). An experiment with a frontier section
(frontier_music, frontier_behavior) also writes frontier.png and frontier.csv, and its report section gives
every agent's final reward, marginal and per-state entropy with Student-t intervals, and the smallest
coefficient at which each regularised agent reaches the reference's marginal entropy. Experiments whose data
is missing are reported as such, and make the exit status non-zero unless --skip-missing.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

from sb3_entropy.atomic import output_folder
from sb3_entropy.study import available_experiments, load_experiment, write_outputs, write_report
from sb3_entropy.study.analysis import agent_label
from sb3_entropy.study.cli.parsing import TOOL, Distinct, command_parser, in_flags
from sb3_entropy.study.execution import connect_ray
from sb3_entropy.study.experiments import (
    TUNED_DIR,
    Experiment,
    check_distinct_names,
    check_fresh_seeds,
    with_tuned_hyperparameters,
)
from sb3_entropy.study.plans import MissingRunsError, plan_experiment, run_plan
from sb3_entropy.study.runs import limit_threads
from sb3_entropy.tensorboard import color_name, dashboard_url


def tuned(experiment: Experiment, files: list[str]) -> Experiment:
    """``experiment`` with the hyperparameters tuned for it in one of ``files`` (``tuned``: the packaged file)."""
    if files == ["tuned"]:
        path = TUNED_DIR / f"{experiment.name}.yml"
        if not path.is_file():
            shipped = sorted(p.stem for p in TUNED_DIR.glob("*.yml"))
            raise ValueError(
                f"--hyperparams tuned: no tuned hyperparameters ship for {experiment.name}; they do for {shipped}. "
                "Tune it: personalization-gym tune " + experiment.name
            )
        return _with_tuned(experiment, load_experiment(str(path)))
    if "tuned" in files:
        raise ValueError(
            f"--hyperparams takes either the word tuned (the packaged files) or tuned files, not both: got {files}"
        )
    try:
        candidates = [load_experiment(file) for file in files]
    except ValueError as error:
        raise ValueError(f"--hyperparams: {error}") from None
    for candidate in candidates:
        if candidate.tuning is not None and candidate.tuning.experiment == experiment.name:
            return _with_tuned(experiment, candidate)
    if len(candidates) == 1:  # says why it does not fit
        return _with_tuned(experiment, candidates[0])
    raise ValueError(f"--hyperparams: none of {files} was tuned on experiment {experiment.name}")


def _with_tuned(experiment: Experiment, candidate: Experiment) -> Experiment:
    """:func:`with_tuned_hyperparameters`, its errors named after the flag that gave the file."""
    try:
        return with_tuned_hyperparameters(experiment, candidate)
    except ValueError as error:
        raise ValueError(f"--hyperparams: {error}") from None


def only_agents(experiment: Experiment, agents: list[str]) -> Experiment:
    """The experiment with only ``agents`` (in the file's order); a name it does not have is an error."""
    unknown = [agent for agent in agents if agent not in experiment.agents]
    if unknown:
        raise ValueError(
            f"--agents: experiment {experiment.name} has no agent {unknown}; valid: {list(experiment.agents)}"
        )
    if experiment.frontier is not None:
        raise ValueError(f"--agents: {experiment.name} is a frontier study, whose agents form one grid; run it whole")
    return dataclasses.replace(experiment, agents={k: v for k, v in experiment.agents.items() if k in agents})


RERENDER = (
    "Write a study's report and figures again from the runs stored in --out, with the arguments the study ran "
    "with; nothing trains (a run that is not stored is an error)."
)


def _parser(prog: str | None, rerender: bool = False) -> argparse.ArgumentParser:
    """reproduce's (and report's) command line."""
    parser = command_parser(__doc__, prog, RERENDER if rerender else None)
    parser.add_argument(
        "experiments",
        nargs="+",
        action=Distinct,
        metavar="EXPERIMENT",
        help=f"{available_experiments()}, all, or a .yml path",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="seeds per agent (default: the experiment file's, else 3; the paper ran 1)",
    )
    parser.add_argument(
        "--agents", nargs="+", action=Distinct, default=None, metavar="AGENT",
        help="run only these agents of each experiment (default: all of its agents)",
    )  # fmt: skip
    parser.add_argument(
        "--hyperparams", nargs="+", action=Distinct, default=None, metavar="FILE",
        help="tuned.yml files that personalization-gym tune wrote, or 'tuned' for those that ship with the package: "
        "the tuned agents run with the hyperparameters chosen (the experiment becomes EXPERIMENT_tuned)",
    )  # fmt: skip
    parser.add_argument("--out", default="results", help="output folder (default results/)")
    parser.add_argument("--quick", action="store_true", help="fewer steps and smaller evaluation sets")
    parser.add_argument("--steps", type=int, default=None, help="training steps per run, overriding the experiment's")
    parser.add_argument("--data-dir", default=None, help="data root for tasks that need data")
    parser.add_argument("--literal", action="store_true", help="the reference setup: one env (default: 32 in a batch)")
    parser.add_argument("--no-download", action="store_true", help="never download data: missing data is reported")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="parallel runs (default: one per core)"
    )
    parser.add_argument("--ray-address", default=None, help="run on a Ray cluster: its address, or auto")
    parser.add_argument("--resume", action="store_true", help="reuse the runs already finished in --out")
    parser.add_argument("--skip-missing", action="store_true", help="exit 0 even if some experiment's data is missing")
    return parser


def _experiments(args: argparse.Namespace) -> list[Experiment]:
    """The experiments named on the command line, with their tuned hyperparameters and only the agents asked for;
    a ValueError for one that cannot run as asked (a tuned agent on its tuning seeds among them)."""
    if "all" in args.experiments and len(args.experiments) > 1:
        raise ValueError(f"all runs every experiment: give it alone, or name the experiments, got {args.experiments}")
    names = available_experiments() if args.experiments == ["all"] else args.experiments
    experiments = [load_experiment(name) for name in names]
    if args.hyperparams is not None:
        experiments = [tuned(experiment, args.hyperparams) for experiment in experiments]
    if args.agents is not None:
        experiments = [only_agents(experiment, args.agents) for experiment in experiments]
    check_distinct_names(experiments)  # each writes out/NAME: two of one name would overwrite each other
    for experiment in experiments:  # a tuned agent is judged on seeds it was not tuned on
        check_fresh_seeds(experiment, list(range(args.seeds or experiment.seeds)))
    return experiments


def _summary(args: argparse.Namespace, results: list, out: Path) -> int:
    """The lines after the report (failed runs, missing data, the figures, the dashboard); the exit status."""
    status = 0
    failed = [f"{r.experiment.name} {agent} seed {seed}" for r in results for (agent, seed) in r.failures]
    if failed:
        print(f"failed runs (see the report): {', '.join(failed)} (exit status 1)")
        status = 1
    missing = [result.experiment.name for result in results if result.missing_data is not None]
    if missing:
        print(f"data missing for: {', '.join(missing)}" + ("" if args.skip_missing else " (exit status 1)"))
        status = status or (0 if args.skip_missing else 1)
    figures = [
        out / result.experiment.name / ("frontier.png" if result.experiment.frontier else "overview.png")
        for result in results
        if result.histories
    ]
    if figures:
        print(f"Figures: {', '.join(map(str, figures))}.")
        colors = {agent: color for result in results for agent, color in result.colors.items()}
        named = ", ".join(f"{agent_label(agent)} {color_name(color)}" for agent, color in colors.items())
        print(f"The dashboard: tensorboard --logdir {out / 'tb'}, then open {dashboard_url()} (each agent's mean "
              f"over seeds, one colour per agent: {named}; clear the run filter to see every seed)")  # fmt: skip
    return status


def main(argv: list[str] | None = None, prog: str | None = None, rerender: bool = False) -> int:
    """``reproduce`` (or, with ``rerender``, ``report``: the same arguments, from the stored runs alone)."""
    parser = _parser(prog, rerender)
    args = parser.parse_args(argv)
    for flag, value in (("--seeds", args.seeds), ("--workers", args.workers), ("--steps", args.steps)):
        if value is not None and value < 1:
            parser.error(f"{flag} must be an integer >= 1, got {value}")
    if args.data_dir is not None and not Path(args.data_dir).expanduser().is_dir():
        parser.error(f"--data-dir {args.data_dir} is not a folder: give a data root (the folder that holds spotify/, "
                     "MNIST/, ...), or leave it out")  # fmt: skip
    if args.ray_address is not None:  # the cluster is reached before anything else: an error in seconds, not hours
        try:
            connect_ray(args.ray_address)
        except (ValueError, ImportError) as error:
            parser.error(f"--ray-address: {error}")
    try:
        experiments = _experiments(args)
    except ValueError as error:
        parser.error(in_flags(error))

    limit_threads()
    try:
        out = output_folder("--out", args.out)
    except ValueError as error:
        parser.error(in_flags(error))
    start = time.perf_counter()
    results = []
    try:
        try:  # every experiment's task and models are built once before any run trains: bad settings fail here
            plans = [
                plan_experiment(
                    experiment, args.seeds or experiment.seeds, out, quick=args.quick, steps=args.steps,
                    data_dir=args.data_dir, download=not args.no_download, literal=args.literal,
                )
                for experiment in experiments
            ]  # fmt: skip
        except ValueError as error:
            parser.error(in_flags(error))
        for plan in plans:
            try:
                result = run_plan(
                    plan, workers=args.workers, resume=args.resume or rerender, ray_address=args.ray_address,
                    show_progress=not rerender, train_missing=not rerender,
                )  # fmt: skip
            except MissingRunsError as error:
                parser.error(f"{error}: run them first (the same arguments to {TOOL} reproduce)")
            write_outputs(result, out)
            results.append(result)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the finished runs are kept in {out}/; --resume goes on from there", file=sys.stderr)
        return 130
    report = write_report(results, out / "report.md", quick=args.quick)
    print(f"\n{report.read_text()}\nwritten to {out}/ in {time.perf_counter() - start:.0f} s")
    status = _summary(args, results, out)
    return status
