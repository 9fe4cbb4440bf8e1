"""Benchmark EntropyCallback's cost on Music-v0 (issue 5's goals).

    PERSONALIZATION_GYM_DATA=../shared/data python benchmarks/bench_entropy.py
    python benchmarks/bench_entropy.py --data-dir ../shared/data --steps 20000 --repeats 3

1. One evaluation (probabilities of 10,000 states, every metric, TensorBoard logging) against a bare policy
   forward pass over the same states; goal: <= 1.5x.
2. PPO with the paper's settings (n_steps=32, batch_size=32, n_epochs=1, net [256, 256]) trained for --steps
   steps without the callback, with it at the default cadence (every 2,000 steps, the image every 10th
   evaluation), and at the paper's cadence (every 100 steps); goal at the default cadence: <= 5 % overhead.
   Run times on this machine vary by +-10 % from run to run, more than the overhead itself, so the time
   spent inside the callback's methods is measured too and reported as a share of the run without it.
Times are medians over --repeats runs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import gymnasium as gym
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.logger import configure

import personalization_gym
from sb3_entropy import EntropyCallback

PAPER_PPO = {"n_steps": 32, "batch_size": 32, "n_epochs": 1, "policy_kwargs": {"net_arch": [256, 256]}}


def make_env(data_dir: str | None) -> gym.Env:
    return gym.make("Personalization/Music-v0", **personalization_gym.data_kwargs("Personalization/Music-v0", data_dir))


def time_evaluation(env: gym.Env, repeats: int) -> tuple[float, float, float]:
    """Seconds for a bare forward pass and one EntropyCallback evaluation (with and without the image)."""
    model = PPO("MlpPolicy", env, seed=0, device="cpu", **PAPER_PPO)
    with tempfile.TemporaryDirectory() as log_dir:
        model.set_logger(configure(log_dir, ["tensorboard"]))
        callback = EntropyCallback(eval_env=env, log_figures=True, figure_every=1)
        callback.init_callback(model)
        # as in training: the run's length fixes the picture's frame, drawn once (this first evaluation)
        callback.on_training_start({"total_timesteps": 20_000}, {})
        obs = torch.as_tensor(env.unwrapped.eval_set().obs.copy())
        forward, evaluation = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            with torch.no_grad():
                model.policy.get_distribution(obs).distribution.probs.numpy()
            forward.append(time.perf_counter() - start)
            start = time.perf_counter()
            callback._evaluate()
            evaluation.append(time.perf_counter() - start)
        callback.figure_every = 10**9  # the same evaluation without the image
        without_image = []
        for _ in range(repeats):
            start = time.perf_counter()
            callback._evaluate()
            without_image.append(time.perf_counter() - start)
    return statistics.median(forward), statistics.median(evaluation), statistics.median(without_image)


class TimedEntropyCallback(EntropyCallback):
    """EntropyCallback that adds up the time spent in its own methods."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seconds = 0.0

    def on_step(self) -> bool:
        start = time.perf_counter()
        result = super().on_step()
        self.seconds += time.perf_counter() - start
        return result

    def on_rollout_start(self) -> None:
        start = time.perf_counter()
        super().on_rollout_start()
        self.seconds += time.perf_counter() - start

    def on_rollout_end(self) -> None:
        start = time.perf_counter()
        super().on_rollout_end()
        self.seconds += time.perf_counter() - start

    def on_training_start(self, locals_, globals_) -> None:
        start = time.perf_counter()
        super().on_training_start(locals_, globals_)
        self.seconds += time.perf_counter() - start

    def on_training_end(self) -> None:
        start = time.perf_counter()
        super().on_training_end()
        self.seconds += time.perf_counter() - start


def time_training(env: gym.Env, steps: int, eval_freq: int | None, seed: int) -> tuple[float, float]:
    """Seconds of the whole run and seconds spent inside the callback."""
    model = PPO("MlpPolicy", env, seed=seed, device="cpu", **PAPER_PPO)
    callback = None if eval_freq is None else TimedEntropyCallback(eval_env=env, eval_freq=eval_freq)
    start = time.perf_counter()
    model.learn(steps, callback=callback)
    return time.perf_counter() - start, 0.0 if callback is None else callback.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--steps", type=int, default=20_000, help="PPO training steps per run")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    env = make_env(args.data_dir)
    print(f"torch threads: {torch.get_num_threads()}")

    forward, evaluation, without_image = time_evaluation(env, max(args.repeats, 5))
    print(f"bare forward pass, 10,000 states       {forward * 1e3:8.1f} ms")
    ratio, ratio_no_image = evaluation / forward, without_image / forward
    print(f"one evaluation (with the image)        {evaluation * 1e3:8.1f} ms   {ratio:5.2f}x")
    print(f"one evaluation (without the image)     {without_image * 1e3:8.1f} ms   {ratio_no_image:5.2f}x (goal 1.5x)")

    runs = {"no callback": None, "every 2,000 steps (default)": 2000, "every 100 steps (paper)": 100}
    totals: dict[str, list[float]] = {name: [] for name in runs}
    inside: dict[str, list[float]] = {name: [] for name in runs}
    for repeat in range(args.repeats):  # interleaved, so that slow phases of the machine hit every setting
        for name, eval_freq in runs.items():
            total, in_callback = time_training(env, args.steps, eval_freq, seed=repeat)
            totals[name].append(total)
            inside[name].append(in_callback)
    base = statistics.median(totals["no callback"])
    print(f"PPO, {args.steps} steps, paper settings (overhead: from run times; inside: time in the callback / base):")
    for name in runs:
        median = statistics.median(totals[name])
        extra = ""
        if name != "no callback":
            extra = f"overhead {median / base - 1:+6.1%}   inside {statistics.median(inside[name]) / base:6.1%}"
        print(f"  {name:<30} {median:7.1f} s  {args.steps / median:7.0f} steps/s   {extra}")


if __name__ == "__main__":
    main()
