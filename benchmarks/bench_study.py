"""Where a study's CPU time goes: one seed of each agent of an experiment, trained as the study trains it, with its
CPU time split into environment, acting, update, evaluation forward pass, evaluation metrics, logging and other.

    python benchmarks/bench_study.py                     # music: its five agents, 20,000 steps each
    python benchmarks/bench_study.py music --agents dqn qrdqn --seed 1

Each run goes through the study's own path (``plan_experiment`` and ``training.train``: batched envs, the
evaluation cadence, TensorBoard with HParams and the mean-run layout) in this process with one torch thread.
The split is exclusive CPU time (``time.process_time``, this process with its threads) inside:

- environment: the training VecEnv's ``step`` (the tasks and SB3's VecMonitor);
- acting: the policy choosing actions (on-policy ``policy.forward``; off-policy ``_sample_action``);
- update: the algorithm's ``train`` (gradient steps);
- evaluation forward pass: EntropyCallback's probabilities of the evaluation states;
- evaluation metrics: the rest of each evaluation (every metric, p(a), the history);
- logging: the logger's dumps (SB3's and the callback's) and the callback's histograms and pictures;
- other: the rest of ``learn`` (SB3's loops, buffers, callbacks' bookkeeping).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

from sb3_entropy.figures import DistributionFigure, DownsampledHistory
from sb3_entropy.study import load_experiment
from sb3_entropy.study.plans import plan_experiment
from sb3_entropy.study.runs import limit_threads, train

PARTS = ("environment", "acting", "update", "evaluation forward", "evaluation metrics", "logging", "other")


class ExclusiveTimer:
    """CPU seconds per part, each call counted once: time inside a wrapped call nested in another wrapped call
    goes to the inner call's part, not to both."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._stack: list[list[Any]] = []  # [part, start, seconds of nested timed calls]

    def wrap(self, owner: Any, name: str, part: str) -> None:
        """Replace ``owner.name`` (an instance attribute, so only this object is timed) by a timed call."""
        inner: Callable[..., Any] = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            self._stack.append([part, time.process_time(), 0.0])
            try:
                return inner(*args, **kwargs)
            finally:
                part_, start, nested = self._stack.pop()
                elapsed = time.process_time() - start
                self.seconds[part_] += elapsed - nested
                if self._stack:
                    self._stack[-1][2] += elapsed

        setattr(owner, name, timed)


def instrument(timer: ExclusiveTimer) -> Callable[[Any, Any], None]:
    def on_model(model: Any, callback: Any) -> None:
        timer.wrap(model.env, "step", "environment")
        if isinstance(model, OnPolicyAlgorithm):
            timer.wrap(model.policy, "forward", "acting")
        else:
            timer.wrap(model, "_sample_action", "acting")
        timer.wrap(model, "train", "update")
        timer.wrap(callback, "_probs", "evaluation forward")
        timer.wrap(callback, "_evaluate", "evaluation metrics")
        timer.wrap(callback, "_log_tensorboard_extras", "logging")
        timer.wrap(model.logger, "dump", "logging")

    return on_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("experiment", nargs="?", default="music")
    parser.add_argument("--agents", nargs="+", default=None, help="some of the experiment's agents (default: all)")
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default: the experiment's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be an integer >= 1, got {args.steps}")
    if args.seed < 0:
        parser.error(f"--seed must be an integer >= 0, got {args.seed}")
    experiment = load_experiment(args.experiment)
    agents = args.agents or list(experiment.agents)
    unknown = [agent for agent in agents if agent not in experiment.agents]
    if unknown:
        parser.error(f"--agents {unknown}: {experiment.name} has {list(experiment.agents)}")
    limit_threads()
    DistributionFigure(2, 2).render(DownsampledHistory(2), np.array([0.5, 0.5]), 1)  # matplotlib's one-time start-up
    with tempfile.TemporaryDirectory() as folder:
        plan = plan_experiment(experiment, args.seed + 1, Path(folder), steps=args.steps, report=lambda _: None)
        if plan.missing_data is not None:
            print(f"error: {plan.missing_data}", file=sys.stderr)
            return 2
        steps = plan.specs[agents[0], args.seed].timesteps
        print(f"{experiment.name}: one run per agent (seed {args.seed}, {steps} steps, an evaluation every "
              f"{experiment.eval_freq} steps), as the study trains it; CPU seconds, one torch thread")  # fmt: skip
        print(f"{'agent':<10} {'total':>7} " + " ".join(f"{part:>20}" for part in PARTS))
        shares: dict[str, dict[str, float]] = {}
        for name in agents:
            timer = ExclusiveTimer()
            start = time.process_time()
            train(plan.specs[name, args.seed], on_model=instrument(timer))
            total = time.process_time() - start
            timer.seconds["other"] = total - sum(timer.seconds[part] for part in PARTS if part != "other")
            shares[name] = {part: timer.seconds[part] for part in PARTS}
            cells = " ".join(f"{timer.seconds[part]:>9.1f} s {timer.seconds[part] / total:>6.1%} " for part in PARTS)
            print(f"{name:<10} {total:>7.1f} {cells}", flush=True)
        total = sum(sum(values.values()) for values in shares.values())
        cells = " ".join(
            f"{sum(v[part] for v in shares.values()):>9.1f} s {sum(v[part] for v in shares.values()) / total:>6.1%} "
            for part in PARTS
        )
        print(f"{'all':<10} {total:>7.1f} {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
