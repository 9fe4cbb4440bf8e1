"""Benchmark MovieLens-v0 at catalogue scale (issue 45's goals), on MovieLens-shaped files it writes itself.

    python benchmarks/bench_catalogue.py                          # ML-1M, 10M, 25M and 32M: about 20 minutes
    python benchmarks/bench_catalogue.py --shapes ml-1m --steps 500

MovieLens may not be redistributed and cannot be downloaded here, so each shape is a file with GroupLens's folder,
file name and format and the dataset's numbers of users, movies and ratings: a planted rank-8 preference structure,
power-law movie popularity, each user's activity log-normal, half stars (whole stars for ML-1M), sparse movie ids
and the rows in random order. Files are written once into --work-dir and kept.

For each shape, in a process of its own (so that its peak memory is its own):
1. read: ``read_ratings`` of the file, seconds;
2. build: ``gym.make("Personalization/MovieLens-v0", dataset=...)``: the file read, checked, the held-out check
   fit and the final fit, seconds and the process's peak resident memory (goal for ML-32M: 300 s, 8 GB; for
   ML-1M: 20 s);
3. one EntropyCallback evaluation of a PPO policy at the default evaluation set (at most 10,000 held-out users
   by every movie), seconds and the peak resident memory it adds (goal for ML-32M: 10 s, 1 GB), beside the
   policy's bare forward pass over the same states in the same chunks (the part a network of other size changes);
4. --steps steps of PPO (the paper's settings: n_steps 32, batch 32, one epoch, net [256, 256]) with the callback
   at its default cadence, seconds.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SHAPES = {  # GroupLens's folder: users, movies, ratings, file, half stars
    "ml-1m": (6_040, 3_706, 1_000_209, "ratings.dat", False),
    "ml-10M100K": (69_878, 10_677, 10_000_054, "ratings.dat", True),
    "ml-25m": (162_541, 59_047, 25_000_095, "ratings.csv", True),
    "ml-32m": (200_948, 87_585, 32_000_204, "ratings.csv", True),
}
PAPER_PPO = {"n_steps": 32, "batch_size": 32, "n_epochs": 1, "policy_kwargs": {"net_arch": [256, 256]}}
ROWS_PER_WRITE = 1_000_000


def planted_ratings(shape: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(user ids, movie ids, stars)`` of ``shape``'s size: distinct pairs, in random order."""
    n_users, n_movies, n_ratings, _, half = SHAPES[shape]
    rng = np.random.default_rng(seed)
    activity = rng.lognormal(0, 1.2, n_users)
    popularity = 1.0 / np.arange(1, n_movies + 1) ** 0.85
    popularity = popularity[rng.permutation(n_movies)]
    pairs = np.empty(0, dtype=np.int64)
    while len(pairs) < n_ratings:  # draw pairs until enough are distinct
        draw = int(1.15 * (n_ratings - len(pairs))) + 1000
        users = rng.choice(n_users, size=draw, p=activity / activity.sum())
        movies = rng.choice(n_movies, size=draw, p=popularity / popularity.sum())
        pairs = np.unique(np.concatenate([pairs, users.astype(np.int64) * n_movies + movies]))
    pairs = rng.choice(pairs, size=n_ratings, replace=False)
    users, movies = pairs // n_movies, pairs % n_movies
    taste, appeal = rng.standard_normal((n_users, 8)), rng.standard_normal((n_movies, 8))
    score = np.einsum("kr,kr->k", taste[users], appeal[movies]) / np.sqrt(8)
    step = 0.5 if half else 1.0
    stars = np.clip(np.round((3.5 + 0.9 * score + 0.3 * rng.standard_normal(n_ratings)) / step) * step, step, 5.0)
    movie_ids = np.sort(rng.choice(np.arange(1, 3 * n_movies + 1), size=n_movies, replace=False))
    return users + 1, movie_ids[movies], stars


def write_shape(shape: str, work_dir: Path) -> Path:
    """``<work_dir>/<shape>/<file>`` in the dataset's format, written once (a partial file is never left)."""
    file_name, half = SHAPES[shape][3], SHAPES[shape][4]
    path = work_dir / shape / file_name
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    users, movies, stars = planted_ratings(shape)
    timestamps = np.random.default_rng(1).integers(789_652_009, 1_697_000_000, size=len(stars))
    separator = "," if file_name == "ratings.csv" else "::"
    partial = path.with_suffix(".partial")
    with partial.open("w", encoding="utf-8") as out:
        if file_name == "ratings.csv":
            out.write("userId,movieId,rating,timestamp\n")
        for start in range(0, len(stars), ROWS_PER_WRITE):
            block = slice(start, start + ROWS_PER_WRITE)
            values = stars[block].tolist() if half else stars[block].astype(np.int64).tolist()
            rows = zip(users[block].tolist(), movies[block].tolist(), values, timestamps[block].tolist(), strict=True)
            out.write("".join(f"{u}{separator}{m}{separator}{r}{separator}{t}\n" for u, m, r, t in rows))
    partial.rename(path)
    return path


def resident_mb(field: str) -> float | None:
    """VmRSS (now) or VmHWM (the peak) of this process, in MB; None where /proc does not say."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak() -> bool:
    """Start VmHWM again from the present resident memory (Linux's clear_refs); False where it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def forward_seconds(model: Any, states: Any) -> float:
    """Seconds for the policy's probabilities of every evaluation state, chunk by chunk as the callback plans them,
    by SB3's own distribution (nothing kept, no metric)."""
    import torch

    start = time.perf_counter()
    with torch.no_grad():
        for chunk in states.chunks:
            obs, _ = model.policy.obs_to_tensor(states.obs[chunk.rows].copy())
            probs = model.policy.get_distribution(obs).distribution.probs
    del probs
    return time.perf_counter() - start


def measure(shape: str, work_dir: Path, steps: int) -> dict:
    """One shape's figures, in this process (run in one of its own)."""
    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import configure

    import personalization_gym  # noqa: F401  (registers the tasks)
    from personalization_gym.rating_files import read_ratings
    from sb3_entropy import EntropyCallback

    path = write_shape(shape, work_dir)
    start = time.perf_counter()
    read_ratings(path)
    read_s = time.perf_counter() - start
    reset_peak()
    start = time.perf_counter()
    env = gym.make("Personalization/MovieLens-v0", dataset=shape, data_dir=work_dir)
    build_s = time.perf_counter() - start
    build_peak_mb = resident_mb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    task = env.unwrapped

    model = PPO("MlpPolicy", env, seed=0, device="cpu", **PAPER_PPO)
    with tempfile.TemporaryDirectory() as log_dir:
        model.set_logger(configure(log_dir, ["tensorboard"]))
        callback = EntropyCallback(eval_env=env)
        callback.init_callback(model)
        callback.on_training_start({"total_timesteps": steps}, {})  # the first evaluation: plans the chunks
        forward_s = forward_seconds(model, callback.states)
        before = resident_mb("VmRSS")
        measured_peak = reset_peak()
        start = time.perf_counter()
        callback._evaluate()
        eval_s = time.perf_counter() - start
        eval_mb = resident_mb("VmHWM") - before if measured_peak and before is not None else None

        model = PPO("MlpPolicy", env, seed=0, device="cpu", **PAPER_PPO)
        model.set_logger(configure(log_dir, ["tensorboard"]))
        start = time.perf_counter()
        model.learn(steps, callback=EntropyCallback(eval_env=env))
        train_s = time.perf_counter() - start
    return {
        "shape": shape, "users": task.n_users, "movies": task.n_actions, "ratings": task.fit_report.n_ratings
        + task.fit_report.n_held_out, "file_mb": path.stat().st_size / 2**20, "read_s": read_s, "build_s": build_s,
        "build_peak_gb": build_peak_mb / 1024, "n_eval": task.n_eval, "forward_s": forward_s, "eval_s": eval_s,
        "eval_mb": eval_mb,
        "steps": steps, "train_s": train_s, "held_out_rmse": task.fit_report.held_out_rmse,
    }  # fmt: skip


def table(rows: list[dict]) -> str:
    header = ("| shape | users | movies | ratings | file MB | read s | build s | build peak GB | n_eval | "
              "forward s | evaluation s | evaluation MB | PPO steps | PPO s | held-out RMSE |")  # fmt: skip
    lines = [header, "|" + "|".join(["---"] + ["---:"] * (header.count("|") - 2)) + "|"]
    for r in rows:
        eval_mb = "n/a" if r["eval_mb"] is None else f"{r['eval_mb']:,.0f}"
        lines.append(
            f"| {r['shape']} | {r['users']:,} | {r['movies']:,} | {r['ratings']:,} | {r['file_mb']:,.0f} | "
            f"{r['read_s']:.1f} | {r['build_s']:.1f} | {r['build_peak_gb']:.2f} | {r['n_eval']:,} | "
            f"{r['forward_s']:.2f} | {r['eval_s']:.2f} | {eval_mb} | {r['steps']:,} | {r['train_s']:.1f} | "
            f"{r['held_out_rmse']:.4f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    parser.add_argument("--steps", type=int, default=2000, help="PPO steps with the callback (default 2000)")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "personalization-gym-catalogues",
                        help="where the MovieLens-shaped files are written, once (default: %(default)s)")  # fmt: skip
    parser.add_argument("--child", choices=list(SHAPES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    if args.child:
        print(json.dumps(measure(args.child, args.work_dir, args.steps)))
        return
    rows = []
    for shape in args.shapes:
        command = [sys.executable, __file__, "--child", shape, "--steps", str(args.steps)]
        command += ["--work-dir", str(args.work_dir)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{shape}: the measurement failed:\n{done.stderr}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{shape}: built in {rows[-1]['build_s']:.1f} s", file=sys.stderr, flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
