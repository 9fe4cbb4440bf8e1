"""Batched against literal training: the music experiment's three agents, side by side (issue 7's goal: >= 8x).

    PERSONALIZATION_GYM_DATA=../shared/data python benchmarks/bench_vec.py
    python benchmarks/bench_vec.py --data-dir ../shared/data --steps 20000 --callback-every 100 --repeats 3

Each agent trains --steps steps with the paper's settings (net [256, 256], lr 1e-3), once as the reference code
does (one env, 32 steps per update batch) and once batched (32 envs, one step per update batch: the same
updates), torch on one thread unless --threads. With --callback-every N, EntropyCallback evaluates every N
steps in both runs (the paper's cadence is 100). Every figure is the median of --repeats interleaved runs,
after one short warm-up run of each setup (so that one-time costs such as torch's lazy imports are not
counted).

The work both setups do alike is timed too ("shared s"): the gradient updates (``model.train()``: the same
--steps / 32 updates of batch 32 in both) and the callback's evaluations. "ceiling" = literal time / shared time is
the speed-up batching would give if collecting the batched steps cost nothing: the most that any change on
the collection side can reach.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import personalization_gym
from sb3_entropy.study.runs import RunSpec, train

AGENTS = ("a2c", "ppo", "dqn")


class SharedWorkTimer:
    """Adds up the time of the work both setups do alike: gradient updates and the callback's evaluations."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def _timed(self, method):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            result = method(*args, **kwargs)
            self.seconds += time.perf_counter() - start
            return result

        return timed

    def wrap(self, model, callback) -> None:
        model.train = self._timed(model.train)
        callback._evaluate = self._timed(callback._evaluate)


def run(algo: str, batched: bool, steps: int, args: argparse.Namespace) -> tuple[float, float]:
    """(wall-clock seconds of the whole run, seconds of the shared work)."""
    env_kwargs = personalization_gym.data_kwargs("Personalization/Music-v0", args.data_dir)
    spec = RunSpec("Personalization/Music-v0", algo, 0, steps, [256, 256], {"learning_rate": 1e-3}, env_kwargs,
                   eval_freq=args.callback_every or steps, log_figures=False, batched=batched)  # fmt: skip
    timer = SharedWorkTimer()
    start = time.perf_counter()
    train(spec, on_model=timer.wrap)
    return time.perf_counter() - start, timer.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--callback-every", type=int, default=None, help="evaluate every N steps (default: at the end)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per setup; the median is printed (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as in a study's runs)")
    args = parser.parse_args()
    if args.steps < 32 or args.repeats < 1 or args.threads < 1:
        parser.error(
            f"--steps must be >= 32, --repeats and --threads >= 1, got {args.steps}, {args.repeats}, {args.threads}"
        )
    torch.set_num_threads(args.threads)
    cadence = f"callback every {args.callback_every} steps" if args.callback_every else "callback at start and end only"
    print(f"music, {args.steps} steps per run, {cadence}, median of {args.repeats}, torch threads {args.threads}")
    print(f"{'agent':<6} {'literal s':>10} {'steps/s':>8} {'batched s':>10} {'steps/s':>8} {'ratio':>6} "
          f"{'shared s':>9} {'ceiling':>8}")  # fmt: skip
    for algo in AGENTS:
        for batched in (False, True):
            run(algo, batched, 64, args)  # warm-up: imports, allocator, first-call costs
        times: dict[bool, list[float]] = {False: [], True: []}
        shared: list[float] = []
        for _ in range(args.repeats):
            for batched in (False, True):
                seconds, shared_seconds = run(algo, batched, args.steps, args)
                times[batched].append(seconds)
                shared.append(shared_seconds)
        literal, batched_time = statistics.median(times[False]), statistics.median(times[True])
        shared_time = statistics.median(shared)
        print(f"{algo:<6} {literal:>10.1f} {args.steps / literal:>8.0f} {batched_time:>10.1f} "
              f"{args.steps / batched_time:>8.0f} {literal / batched_time:>5.1f}x {shared_time:>9.1f} "
              f"{literal / shared_time:>7.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
