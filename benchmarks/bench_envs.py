"""Benchmark every task: single-env reset+step time and batched sample(10_000) time.

    python benchmarks/bench_envs.py                    # all tasks whose data is on this machine (docs/data.md)
    python benchmarks/bench_envs.py --steps 20000 --repeats 7

Prints the median over repeats of
- reset+step in microseconds, on the bare env and through gym.make's wrappers (what SB3 sees),
- reset(seed=...)+step in microseconds (a seeded reset starts a new block of contexts),
- sample(10_000) in milliseconds,
- microseconds per context through a vector env of 32: the native one ``gym.make_vec`` builds, and Gymnasium's
  SyncVectorEnv over 32 single tasks (same-step autoreset in both, so every step answers 32 contexts).
Goals (issue 2): reset+step <= 30 us; sample(10_000) <= 20 ms.
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np

import personalization_gym

VECTOR = 32  # sub-environments of the vector envs timed


def time_episodes(env: gym.Env, steps: int, seeded: bool) -> float:
    """Microseconds per reset+step, with a seed at every reset or only at the first."""
    env.reset(seed=0)
    env.step(0)
    start = time.perf_counter()
    for i in range(steps):
        env.reset(seed=i if seeded else None)
        env.step(1)
    return (time.perf_counter() - start) / steps * 1e6


def time_vector(envs: gym.vector.VectorEnv, contexts: int) -> float:
    """Microseconds per context answered, over steps of ``envs.num_envs`` contexts each."""
    actions = np.ones(envs.num_envs, dtype=np.int64)
    envs.reset(seed=0)
    envs.step(actions)
    steps = max(1, contexts // envs.num_envs)
    start = time.perf_counter()
    for _ in range(steps):
        envs.step(actions)
    return (time.perf_counter() - start) / (steps * envs.num_envs) * 1e6


def time_sample(task: personalization_gym.BanditEnv, n: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    task.sample(n, rng)
    return (time.perf_counter() - start) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ready = [t for t in personalization_gym.TASK_IDS if t not in personalization_gym.OWN_DATA_TASK_IDS]
    parser.add_argument("env_ids", nargs="*", default=ready, metavar="ENV_ID", help="default: every ready task")
    parser.add_argument("--steps", type=int, default=20_000, help="reset+step pairs per repeat")
    parser.add_argument("--repeats", type=int, default=5, help="repeats; the median is printed")
    parser.add_argument("--sample-size", type=int, default=10_000)
    parser.add_argument("--data-dir", default=None, help="data root for tasks that need data")
    args = parser.parse_args()

    print(f"median of {args.repeats} repeats; {args.steps} episodes per repeat")
    header = ("task", "reset+step us", "via gym.make us", "seeded reset us", f"sample({args.sample_size}) ms",
              f"make_vec({VECTOR}) us", f"sync({VECTOR}) us")  # fmt: skip
    print(f"{header[0]:<32} {header[1]:>14} {header[2]:>16} {header[3]:>16} {header[4]:>18} {header[5]:>16} "
          f"{header[6]:>12}")  # fmt: skip
    for env_id in args.env_ids:
        try:  # a benchmark never downloads: data must be on the machine
            wrapped = gym.make(env_id, **personalization_gym.data_kwargs(env_id, args.data_dir, download=False))
        except personalization_gym.DataNotFoundError:
            print(f"{env_id:<32} skipped: data not on this machine (--data-dir or ${personalization_gym.DATA_ENV_VAR})")
            continue
        bare = wrapped.unwrapped
        bare_us = statistics.median(time_episodes(bare, args.steps, False) for _ in range(args.repeats))
        wrapped_us = statistics.median(time_episodes(wrapped, args.steps, False) for _ in range(args.repeats))
        seeded_us = statistics.median(time_episodes(bare, args.steps // 10, True) for _ in range(args.repeats))
        sample_ms = statistics.median(time_sample(bare, args.sample_size, seed) for seed in range(args.repeats))
        kwargs = personalization_gym.data_kwargs(env_id, args.data_dir, download=False)
        native = gym.make_vec(env_id, num_envs=VECTOR, **kwargs)
        sync = gym.make_vec(env_id, num_envs=VECTOR, vectorization_mode="sync", **kwargs,
                            vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP})  # fmt: skip
        native_us = statistics.median(time_vector(native, args.steps) for _ in range(args.repeats))
        sync_us = statistics.median(time_vector(sync, args.steps) for _ in range(args.repeats))
        print(f"{env_id:<32} {bare_us:>14.2f} {wrapped_us:>16.2f} {seeded_us:>16.1f} {sample_ms:>18.2f} "
              f"{native_us:>16.2f} {sync_us:>12.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
