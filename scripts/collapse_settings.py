"""Which settings show the collapse: the same agents with SB3's default settings and in the paper's setup.

    python scripts/collapse_settings.py                              # PPO, A2C and DQN on Music-v0, 3 seeds
    python scripts/collapse_settings.py --algo ppo --seeds 5 --steps 20000

"SB3 defaults" is ``PPO("MlpPolicy", gym.make(env_id))`` and the like: one user per step and every
hyperparameter SB3's own (PPO: 2,048 steps per rollout, 10 epochs; A2C: 5 steps; DQN: a 50,000-step buffer,
learning from step 100 every 4 steps). "Paper setup" is ``sb3_entropy.paper_agent(algo, env_id, ...)``: 32 users
per update, batched, with the experiment file's network and learning rate (music.yml: [256, 256] and 1e-3).
Prints each setting's final marginal entropy H(p), mean per-state entropy and expected reward, as mean
[95 % Student-t interval over seeds], with the random policy's and the oracle's reward.
"""

from __future__ import annotations

import argparse
import math
import sys

import gymnasium as gym

from personalization_gym.registration import make_task
from sb3_entropy import EntropyCallback, paper_agent
from sb3_entropy.agents import algorithm_class
from sb3_entropy.baselines import evaluation_baselines
from sb3_entropy.study import mean_interval
from sb3_entropy.study.cli.parsing import Distinct
from sb3_entropy.study.runs import limit_threads


def final_values(model, steps: int) -> dict[str, float]:
    callback = EntropyCallback(eval_freq=steps, log_figures=False)
    model.learn(steps, callback=callback)
    last = callback.history[-1]
    return {"H(p)": last["entropy/marginal"], "per-state": last["entropy/per_state"],
            "reward": last["eval/expected_reward"]}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("env_id", nargs="?", default="Personalization/Music-v0")
    parser.add_argument(
        "--algo",
        nargs="+",
        action=Distinct,
        default=["ppo", "a2c", "dqn"],
        choices=["a2c", "ppo", "trpo", "dqn", "qrdqn"],
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--net-arch", default="256,256", help="the paper setup's hidden layers (default 256,256)")
    parser.add_argument("--lr", type=float, default=1e-3, help="the paper setup's learning rate (default 1e-3)")
    args = parser.parse_args(argv)
    if args.seeds < 2 or args.steps < 1:
        parser.error("--seeds must be >= 2 (an interval needs two) and --steps >= 1")
    limit_threads()
    net_arch = [int(size) for size in args.net_arch.split(",")]
    task = make_task(args.env_id)  # the evaluation set every run is scored on, and its K
    baselines = evaluation_baselines(task.eval_set().expected)
    print(f"{args.env_id}, {args.steps:,} steps, {args.seeds} seeds; H(p) at most log K; mean [95 % t-interval]")
    print(f"random policy {baselines['random']:.3f}, oracle {baselines['oracle']:.3f} "
          f"(its H(p) {baselines['oracle_entropy']:.3f} nats)")  # fmt: skip
    log_k = math.log(task.n_actions)
    print("| agent | settings | marginal entropy H(p) | per-state entropy | expected reward |")
    print("|---|---|---|---|---|")
    for algo in args.algo:
        for setting in ("SB3 defaults", "paper setup"):
            runs = []
            for seed in range(args.seeds):
                if setting == "SB3 defaults":
                    model = algorithm_class(algo)("MlpPolicy", gym.make(args.env_id), seed=seed, device="cpu")
                else:
                    model = paper_agent(algo, args.env_id, seed=seed, net_arch=net_arch, learning_rate=args.lr)
                runs.append(final_values(model, args.steps))
            cells = [mean_interval([run[key] for run in runs]) for key in ("H(p)", "per-state", "reward")]
            cells = [
                cells[0].within(0.0, log_k),
                cells[1].within(0.0, log_k),
                cells[2].within(upper=baselines["oracle"]),
            ]
            print(f"| {algo.upper()} | {setting} | {cells[0]} | {cells[1]} | {cells[2]} |", flush=True)
    print(f"(log K = {log_k:.3f}; intervals cut to the values they can take)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
