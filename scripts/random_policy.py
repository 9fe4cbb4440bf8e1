"""Make every personalization task, run a uniformly random policy and print reward statistics.

    python scripts/random_policy.py                       # every task, downloading data where needed
    python scripts/random_policy.py --offline             # only tasks whose data is already on this machine
    python scripts/random_policy.py Personalization/Behavior-v0 --episodes 5000 --seed 1

The table compares the random policy's reward with the best possible (oracle) reward, on the training
stream (through the Gymnasium API) and on each task's fixed evaluation set.
"""

from __future__ import annotations

import argparse
import sys

import gymnasium as gym
import numpy as np

import personalization_gym

# Every task that needs no arguments: the tasks made from a user's own data are left out.
READY_TASK_IDS = tuple(t for t in personalization_gym.TASK_IDS if t not in personalization_gym.OWN_DATA_TASK_IDS)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "env_ids",
        nargs="*",
        default=list(READY_TASK_IDS),
        metavar="ENV_ID",
        help=f"task ids (default: all of {', '.join(READY_TASK_IDS)})",
    )
    parser.add_argument("--episodes", type=int, default=2000, help="episodes (= steps) per task (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the context stream and the policy")
    parser.add_argument("--n-eval", type=int, default=None, help="evaluation-set size (default: each task's own)")
    parser.add_argument("--data-dir", default=None, help="data root holding dataset folders (e.g. spotify/)")
    parser.add_argument(
        "--offline",
        action="store_true",
        help="never download: tasks whose data is not on this machine are reported and skipped",
    )
    args = parser.parse_args(argv)
    unknown = [env_id for env_id in args.env_ids if env_id not in READY_TASK_IDS]
    if unknown:
        parser.error(
            f"unknown task id(s) {unknown}; valid: {list(READY_TASK_IDS)} (the tasks made from your own data, "
            f"{list(personalization_gym.OWN_DATA_TASK_IDS)}, need it: use gym.make or train.py --env-kwargs)"
        )
    if args.episodes < 1 or (args.n_eval is not None and args.n_eval < 1):
        parser.error("--episodes and --n-eval must be >= 1")
    return args


def run_task(env_id: str, args: argparse.Namespace) -> str:
    data = personalization_gym.data_kwargs(env_id, args.data_dir, download=False if args.offline else None)
    env = gym.make(env_id, **({} if args.n_eval is None else {"n_eval": args.n_eval}), **data)
    task = env.unwrapped
    env.action_space.seed(args.seed)
    env.reset(seed=args.seed)
    rewards, optimal = np.empty(args.episodes), np.empty(args.episodes)
    for episode in range(args.episodes):
        if episode:
            env.reset()
        _, rewards[episode], terminated, _, info = env.step(env.action_space.sample())
        assert terminated, "every personalization episode is one step long"
        optimal[episode] = info["optimal_reward"]

    eval_set = task.eval_set()
    random_actions = np.random.default_rng(args.seed).integers(task.n_actions, size=len(eval_set))
    eval_random = task.evaluate(random_actions)
    eval_oracle = task.evaluate(eval_set.expected.argmax(axis=1))
    stderr = rewards.std(ddof=1) / np.sqrt(args.episodes) if args.episodes > 1 else float("nan")
    return (
        f"{env_id:<32} {task.n_actions:>7} {rewards.mean():>+9.4f} {stderr:>8.4f} {optimal.mean():>+9.4f} "
        f"{eval_random:>+11.4f} {eval_oracle:>+11.4f}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sets = "each task's own evaluation set" if args.n_eval is None else f"evaluation sets of {args.n_eval}"
    print(f"random policy, {args.episodes} episodes per task, seed {args.seed}, {sets}")
    print(
        f"{'task':<32} {'actions':>7} {'reward':>9} {'stderr':>8} {'oracle':>9} {'eval random':>11} {'eval oracle':>11}"
    )
    failed = skipped = 0
    for env_id in args.env_ids:
        try:
            print(run_task(env_id, args), flush=True)
        except personalization_gym.DataNotFoundError as error:
            if args.offline:
                skipped += 1
                print(f"{env_id:<32} skipped, no local data: {error}")
            else:
                failed += 1
                print(f"{env_id:<32} FAILED: {error}")
    if skipped:
        print(f"{skipped} task(s) skipped for want of local data (see docs/data.md).")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
