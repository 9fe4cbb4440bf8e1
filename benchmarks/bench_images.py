"""Benchmark an image task's memory and build time (issue 3's budget: MNIST adds <= 150 MB, rebuild < 3 s).

    python benchmarks/bench_images.py                                   # MNIST-v0, data from $PERSONALIZATION_GYM_DATA
    python benchmarks/bench_images.py Personalization/FashionMNIST-v0 --data-dir ../shared/data

Every measurement runs in a fresh Python process, so that one does not warm the next:
- memory the task adds: resident set size (RSS) after building the task and after its eval_set(), minus the RSS
  before, in a process that has already imported torch (as every SB3 user has), and the cost of that import;
- build time: in a fresh process (files maybe in the OS cache), again in another fresh process (files surely
  in the OS cache), and a second instance in the same process (shares the first one's arrays).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
def rss_mb():
    with open("/proc/self/statm") as stream:
        return int(stream.read().split()[1]) * 4096 / 2**20
kwargs = json.loads(sys.argv[2])
before_torch = rss_mb()
import torch, torchvision  # noqa: F401  (what any SB3 user has loaded)
import gymnasium as gym
import personalization_gym  # noqa: F401
before = rss_mb()
start = time.perf_counter()
env = gym.make(sys.argv[1], **kwargs)
build_s = time.perf_counter() - start
built = rss_mb()
env.unwrapped.eval_set()
with_eval = rss_mb()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
start = time.perf_counter()
gym.make(sys.argv[1], **kwargs)
second_in_process_s = time.perf_counter() - start
print(json.dumps({"torch_mb": before - before_torch, "build_s": build_s, "task_mb": built - before,
                  "task_and_eval_mb": with_eval - before, "peak_mb": peak - before,
                  "second_in_process_s": second_in_process_s}))
"""


def measure(env_id: str, kwargs: dict) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, env_id, json.dumps(kwargs)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"{env_id} could not be built:\n{result.stderr.strip().splitlines()[-1]}")
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("env_id", nargs="?", default="Personalization/MNIST-v0")
    parser.add_argument("--data-dir", default=None, help="data root (default: $PERSONALIZATION_GYM_DATA, cache)")
    args = parser.parse_args()
    kwargs = {"download": False} | ({"data_dir": args.data_dir} if args.data_dir else {})

    first, second = measure(args.env_id, kwargs), measure(args.env_id, kwargs)
    print(f"{args.env_id}")
    print(f"  memory added by the task                 {second['task_mb']:8.1f} MB")
    print(f"  ... and by its eval_set()                {second['task_and_eval_mb']:8.1f} MB   (budget for MNIST: 150)")
    print(f"  peak while building, above the start     {second['peak_mb']:8.1f} MB")
    print(f"  (importing torch + torchvision, for scale {second['torch_mb']:7.1f} MB)")
    print(f"  build, fresh process                     {first['build_s']:8.2f} s")
    print(f"  build again, another fresh process       {second['build_s']:8.2f} s    (budget: 3)")
    print(f"  second instance in the same process      {second['second_in_process_s'] * 1e3:8.2f} ms   (shared arrays)")


if __name__ == "__main__":
    main()
