"""What logging costs a run: CPU time spent in SB3's logger (its dumps to TensorBoard), at SB3's own cadence and at
the evaluation cadence that sb3_entropy's training uses.

    python benchmarks/bench_logging.py                       # music's agents, its settings: 20,000 steps each
    python benchmarks/bench_logging.py --agents dqn --steps 5000

For each agent of the experiment (its hyperparameters, network, steps and evaluation cadence, batched as the
study trains), three runs with the same seed: without TensorBoard; with TensorBoard and SB3's default
``log_interval`` (how SB3 logs when nobody sets it: A2C every 100 rollouts, PPO and TRPO every rollout, DQN and
QR-DQN every 4 episodes, which with 32 one-step users per step is 8 dumps a step); and with TensorBoard at the
evaluation cadence (``sb3_entropy.tensorboard.evaluation_log_interval``). Prints, per run, the CPU seconds of
``learn`` (this process, one torch thread), the number of dumps, the CPU seconds inside them, those of the
histograms and the action-distribution picture EntropyCallback writes beside them (about 10 pictures a run, as
the study draws them; none without TensorBoard), and the share of both in ``learn``.
The three runs of an agent end with the same parameters: logging changes no result.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from stable_baselines3.common.logger import configure

from sb3_entropy.callback import EntropyCallback
from sb3_entropy.figures import DistributionFigure, DownsampledHistory
from sb3_entropy.study import load_experiment
from sb3_entropy.study.plans import plan_experiment
from sb3_entropy.study.runs import RunSpec, build_model, figure_every, limit_threads
from sb3_entropy.tensorboard import evaluation_log_interval, tensorboard_logger


def one_run(spec: RunSpec, cadence: str, folder: Path) -> dict[str, float]:
    """CPU seconds of learn, and of the logger's dumps in it, for one cadence: "none", "sb3" or "evaluation"."""
    model, env = build_model(spec)
    # "none": a logger without outputs, as SB3 makes for a model without tensorboard_log
    logger = configure(str(folder / cadence), []) if cadence == "none" else tensorboard_logger(folder / cadence)
    model.set_logger(logger)
    dump, spent = logger.dump, {"seconds": 0.0, "dumps": 0}

    def timed_dump(step: int = 0) -> None:  # the benchmark's own instrument: every dump, SB3's and the callback's
        start = time.process_time()
        dump(step)
        spent["seconds"] += time.process_time() - start
        spent["dumps"] += 1

    logger.dump = timed_dump
    every = figure_every(spec.timesteps, spec.eval_freq)  # as sb3_entropy.study.runs.train makes it
    callback = EntropyCallback(eval_env=env, eval_freq=spec.eval_freq, seed=spec.seed, figure_every=every)
    extras, extras_spent = callback._log_tensorboard_extras, {"seconds": 0.0}

    def timed_extras(step: int, p: np.ndarray) -> None:  # the histograms and the picture, written beside the dumps
        start = time.process_time()
        extras(step, p)
        extras_spent["seconds"] += time.process_time() - start

    callback._log_tensorboard_extras = timed_extras
    written = {"histograms": 0, "pictures": 0}  # what the extras wrote: counted, since a time is never exactly 0
    histogram, figure = callback._add_histogram, callback._log_figure

    def counted_histogram(*args: object) -> None:
        written["histograms"] += 1
        histogram(*args)

    def counted_figure(*args: object) -> None:
        written["pictures"] += 1
        figure(*args)

    callback._add_histogram, callback._log_figure = counted_histogram, counted_figure
    kwargs = {} if cadence == "sb3" else {"log_interval": evaluation_log_interval(model, spec.eval_freq)}
    start = time.process_time()
    model.learn(spec.timesteps, callback=callback, **kwargs)
    total = time.process_time() - start
    parameters = np.concatenate([p.detach().numpy().ravel() for p in model.policy.parameters()])
    return {
        "cpu": total, "dump_cpu": spent["seconds"], "dumps": spent["dumps"], "extras_cpu": extras_spent["seconds"],
        "parameters": parameters, **written,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("experiment", nargs="?", default="music")
    parser.add_argument("--agents", nargs="+", default=None, help="some of the experiment's agents (default: all)")
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default: the experiment's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    experiment = load_experiment(args.experiment)
    agents = args.agents or list(experiment.agents)
    unknown = [agent for agent in agents if agent not in experiment.agents]
    if unknown:
        parser.error(f"--agents {unknown}: {experiment.name} has {list(experiment.agents)}")
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be an integer >= 1, got {args.steps}")
    if args.seed < 0:
        parser.error(f"--seed must be an integer >= 0, got {args.seed}")
    limit_threads()
    DistributionFigure(2, 2).render(DownsampledHistory(2), np.array([0.5, 0.5]), 1)  # matplotlib's one-time start-up
    print(f"{experiment.name}: {args.steps or experiment.steps} steps per run, evaluation every {experiment.eval_freq} "
          f"steps, seed {args.seed}, one torch thread; CPU seconds of this process")  # fmt: skip
    print(f"{'agent':<8} {'logging':<22} {'learn CPU s':>11} {'dumps':>7} {'in dumps s':>10} "
          f"{'histograms+picture s':>20} {'logging share':>13} {'histograms':>10} {'pictures':>8}")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        # the runs' settings as the study makes them (its own plan, not a copy of it)
        plan = plan_experiment(experiment, args.seed + 1, Path(folder), steps=args.steps, report=lambda _: None)
        for name in agents:
            spec = plan.specs[name, args.seed]
            runs = {}
            for cadence, label in (("none", "no TensorBoard"), ("sb3", "SB3's log_interval"),
                                   ("evaluation", "evaluation cadence")):  # fmt: skip
                runs[cadence] = run = one_run(spec, cadence, Path(folder) / name)
                share = (run["dump_cpu"] + run["extras_cpu"]) / run["cpu"]
                print(f"{name:<8} {label:<22} {run['cpu']:>11.1f} {run['dumps']:>7} {run['dump_cpu']:>10.2f} "
                      f"{run['extras_cpu']:>20.2f} {share:>13.1%} {run['histograms']:>10} {run['pictures']:>8}",
                      flush=True)  # fmt: skip
            same = all(np.array_equal(runs["none"]["parameters"], run["parameters"]) for run in runs.values())
            print(f"{name:<8} final parameters of the three runs {'identical' if same else 'DIFFER'}", flush=True)
            if not same:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
