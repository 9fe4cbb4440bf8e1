"""Why policy gradients collapse and Q-learning does not, shown with the simplest models.

    python scripts/policy_gradient_vs_q_learning.py       # sb3_entropy/configs/policy_gradient_vs_q_learning.yml
    python scripts/policy_gradient_vs_q_learning.py --seeds 2 --updates 200 --out /tmp/pg_vs_q

Trains linear and [256, 256] networks on Music-v0 with plain SGD, each with a policy gradient and with
Q-learning from the same initial weights, and records after every few updates the share of the update's
change of the outputs that landed on actions nobody in the batch took, the marginal entropy H(p) and the
expected reward on the evaluation users (sb3_entropy.study.update_rule). Writes the figure, OUT/NAME.png, and
OUT/NAME.csv (a row per run and logged update), NAME being this script's, and prints a table: mean and 95 %
Student-t interval over seeds, with the random policy's and the oracle's reward.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from importlib import resources
from pathlib import Path

import gymnasium as gym
import torch
import yaml

import personalization_gym  # noqa: F401  (registers the tasks)
from sb3_entropy.baselines import evaluation_baselines
from sb3_entropy.study.experiments import load_yaml
from sb3_entropy.study.update_rule import (
    RULE_LABELS,
    RULES,
    run_update_rule,
    summary_rows,
    update_rule_figure,
)

NAME = "policy_gradient_vs_q_learning"  # the script's, its settings' and its outputs' name
CSV_COLUMNS = ("network", "rule", "lr", "seed", "updates", "untaken_share", "marginal_entropy", "expected_reward")
SETTINGS = ("task", "task_kwargs", "updates", "batch_size", "log_every", "temperature", "seeds", "networks")


def load_settings(path: str | None) -> dict:
    text = (
        Path(path).read_text() if path else resources.files("sb3_entropy").joinpath(f"configs/{NAME}.yml").read_text()
    )
    settings = load_yaml(text)  # a key written twice is an error
    unknown, missing = set(settings) - set(SETTINGS), set(SETTINGS) - set(settings)
    if unknown or missing:
        raise ValueError(
            f"settings file: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}; valid: {SETTINGS}"
        )
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=None, help=f"YAML settings (default: sb3_entropy/configs/{NAME}.yml)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per network and rule (default: the file's)")
    parser.add_argument("--updates", type=int, default=None, help="SGD updates per run (default: the file's)")
    parser.add_argument("--out", default=f"results/{NAME}", help=f"output folder (default results/{NAME})")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except (OSError, ValueError, yaml.YAMLError) as error:
        parser.error(str(error))
    for name in ("seeds", "updates"):
        value = getattr(args, name)
        if value is not None:
            if value < 1:
                parser.error(f"--{name} must be >= 1, got {value}")
            settings[name] = value

    torch.set_num_threads(1)  # small batches: one thread is fastest, and runs stay reproducible
    task = gym.make(settings["task"], **settings["task_kwargs"]).unwrapped
    baselines = evaluation_baselines(task.eval_set().expected)
    networks = {name: spec["hidden"] for name, spec in settings["networks"].items()}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    runs = []
    for spec in settings["networks"].values():
        for rule in RULES:
            for seed in range(settings["seeds"]):
                runs.append(run_update_rule(
                    task, rule, spec["hidden"], float(spec["lr"]), settings["updates"], seed,
                    batch_size=settings["batch_size"], log_every=settings["log_every"],
                    temperature=settings["temperature"],
                ))  # fmt: skip
    seconds = time.perf_counter() - start

    with open(out / f"{NAME}.csv", "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(
            ["network", "rule", "lr", "seed", "updates", "untaken_share", "marginal_entropy", "expected_reward"]
        )
        names = {tuple(hidden): name for name, hidden in networks.items()}
        for run in runs:
            for row in zip(run.updates, run.untaken_share, run.marginal_entropy, run.expected_reward, strict=True):
                writer.writerow([names[tuple(run.hidden)], run.rule, run.lr, run.seed, *map(repr, row)])
    title = f"{settings['task']}, plain SGD, batches of {settings['batch_size']}"
    log_k = math.log(task.action_space.n)
    update_rule_figure(runs, networks, {**baselines, "log_k": log_k}, title, out / f"{NAME}.png")

    print(
        f"{title}, {settings['updates']} updates, {settings['seeds']} seeds: mean [95 % Student-t interval] over "
        f"seeds. Random policy {baselines['random']:.3f}, oracle {baselines['oracle']:.3f}; "
        f"log K = {math.log(task.action_space.n):.3f} nats.\n"
    )
    print("| network | rule | lr | change on untaken actions (%) | final H(p) (nats) | final reward |")
    print("|---|---|---|---|---|---|")
    for row in summary_rows(runs, networks):
        share = row["untaken_share"]
        print(
            f"| {row['network']} | {RULE_LABELS[row['rule']]} | {row['lr']:g} | "
            f"{100 * share.estimate:.1f} [{100 * share.low:.1f}, {100 * share.high:.1f}] | "
            f"{row['marginal_entropy']} | {row['expected_reward']} |"
        )
    print(f"\nwritten to {out}/ ({NAME}.png, {NAME}.csv) in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
