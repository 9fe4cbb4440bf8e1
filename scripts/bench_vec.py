"""Batched against literal training: the music experiment's three agents, side by side (issue 7's goal: >= 8x).

    PERSONALIZATION_GYM_DATA=../shared/data python scripts/bench_vec.py
    python scripts/bench_vec.py --data-dir ../shared/data --steps 20000 --callback-every 100

Each agent trains --steps steps with the paper's settings (net [256, 256], lr 1e-3), once as the reference code
does (one env, 32 steps per update batch) and once batched (32 envs, one step per update batch: the same
updates), torch on one thread. With --callback-every N, EntropyCallback evaluates every N steps in both runs
(the paper's cadence is 100). The time spent in gradient updates (the same in both setups) is measured too.
"""

from __future__ import annotations

import argparse
import time

import torch

import personalization_gym
from sb3_entropy.training import RunSpec, train


class UpdateTimer:
    """Wraps a model's train() to add up the time of the gradient updates."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, model) -> None:
        original = model.train

        def timed(*args, **kwargs):
            start = time.perf_counter()
            original(*args, **kwargs)
            self.seconds += time.perf_counter() - start

        model.train = timed


def run(algo: str, batched: bool, args: argparse.Namespace) -> tuple[float, float]:
    env_kwargs = personalization_gym.data_kwargs("Personalization/Music-v0", args.data_dir)
    spec = RunSpec("Personalization/Music-v0", algo, 0, args.steps, [256, 256], {"learning_rate": 1e-3}, env_kwargs,
                   eval_freq=args.callback_every or args.steps, log_figures=False, batched=batched)  # fmt: skip
    timer = UpdateTimer()
    start = time.perf_counter()
    train(spec, on_model=timer.wrap)
    return time.perf_counter() - start, timer.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--callback-every", type=int, default=None, help="evaluate every N steps (default: at the end)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cadence = f"callback every {args.callback_every} steps" if args.callback_every else "callback at start and end only"
    print(f"music, {args.steps} steps per run, {cadence}")
    print(
        f"{'agent':<6} {'literal s':>10} {'steps/s':>8} {'batched s':>10} {'steps/s':>8} {'ratio':>6} {'updates s':>10}"
    )
    for algo in ("a2c", "ppo", "dqn"):
        literal, _ = run(algo, False, args)
        batched, updates = run(algo, True, args)
        print(f"{algo:<6} {literal:>10.1f} {args.steps / literal:>8.0f} {batched:>10.1f} {args.steps / batched:>8.0f} "
              f"{literal / batched:>5.1f}x {updates:>10.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
