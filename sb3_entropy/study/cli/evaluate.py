"""Judge saved agents: the diversity report card of SB3 and sb3-contrib models on a task's evaluation set.

    personalization-gym evaluate logs/ppo/Personalization-Music-v0_1 dqn.zip --task Personalization/Music-v0
    personalization-gym evaluate logs/ppo/Personalization-Music-v0_1 logs/a2c/Personalization-Music-v0_1 --out judged
    personalization-gym evaluate model.zip --task Personalization/Ratings-v0 --env-kwargs ratings=u.data rank=10

Each MODEL is a model.save() zip or an rl-baselines3-zoo run folder (logs/ALGO/ENV_N): its final model, its task
and the task's arguments (args.yml), and, when it trained with normalize: true, the normalization statistics
(vecnormalize.pkl), applied to the states as in training. The algorithm is read from the zip.
Every model is evaluated as EntropyCallback evaluates it, on the task's evaluation set: the same task arguments,
--seed and --temperature give the numbers the callback logged at the end of training.
Prints a table per task: each model's final values (reward, score, marginal entropy H(p), per-state entropy,
effective number of items, and the exposure metrics), then the random policy's and the oracle's. Writes
OUT/report_card.csv (every metric and baseline, a row per model), OUT/report_card.md and OUT/p_MODEL.png (each
model's p(a)).
"""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path
from typing import Any

import personalization_gym
from personalization_gym.registration import make_task
from sb3_entropy.atomic import atomic_path, output_folder, write_text_atomically
from sb3_entropy.baselines import evaluation_baselines
from sb3_entropy.figures import save_marginal_figure
from sb3_entropy.metrics import SUMMARY
from sb3_entropy.probs import Q_POLICIES
from sb3_entropy.report_card import ReportCard, report_card
from sb3_entropy.saved_models import SavedModel, load_saved_model
from sb3_entropy.study.analysis import baseline_values, tie_note
from sb3_entropy.study.cli.parsing import Distinct, command_parser, in_flags, parse_hp

__all__ = ["main"]


def _parser(prog: str | None) -> argparse.ArgumentParser:
    """evaluate's command line."""
    parser = command_parser(__doc__, prog)
    parser.add_argument("models", nargs="+", action=Distinct, metavar="MODEL",
                        help="a model.save() zip or an rl-zoo3 run folder (logs/ALGO/ENV_N)")  # fmt: skip
    parser.add_argument("--task", default=None,
                        help="the task to evaluate on (default: the one an rl-zoo3 folder names)")  # fmt: skip
    parser.add_argument(
        "--env-kwargs", nargs="+", action=Distinct, default=[], metavar="KEY=VALUE",
        help="the task's arguments, besides those an rl-zoo3 folder gives (values read as YAML)",
    )  # fmt: skip
    parser.add_argument("--data-dir", default=None, help="data root for tasks that need data")
    parser.add_argument("--seed", type=int, default=0, help="the sampled actions' seed, as the callback's (default 0)")
    parser.add_argument("--temperature", type=float, default=0.1, help="Q-learning policies: softmax(Q / temperature)")
    parser.add_argument("--q-policy", default="softmax", choices=Q_POLICIES, help="how Q-values are read as a policy")
    parser.add_argument("--out", default="report_card", help="output folder (default report_card)")
    return parser


def _task_of(saved: SavedModel, args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The task a model is evaluated on and its arguments: --task and --env-kwargs, and what an rl-zoo3 folder says;
    the same setting given differently by both is an error naming both."""
    where = f"{saved.path.parent / saved.path.stem / 'args.yml'}"
    if args.task is not None and saved.task is not None and args.task != saved.task:
        raise ValueError(f"--task {args.task} and {where}'s env {saved.task} name two tasks: give --task only for a "
                         "model that does not say its task")  # fmt: skip
    task = args.task or saved.task
    if task is None:
        raise ValueError(f"{saved.path}: a model.save() zip does not say which task it trained on: give --task")
    given = parse_hp(args.env_kwargs, "--env-kwargs")
    for key in sorted(set(given) & set(saved.task_kwargs)):
        if given[key] != saved.task_kwargs[key]:
            raise ValueError(f"--env-kwargs {key}={given[key]!r} and {where}'s env_kwargs {key}="
                             f"{saved.task_kwargs[key]!r} both set {key}: give one")  # fmt: skip
    download = personalization_gym.data_kwargs(task, args.data_dir, None)
    return task, download | saved.task_kwargs | given


def _evaluate(
    args: argparse.Namespace, models: list[SavedModel]
) -> list[tuple[SavedModel, ReportCard, dict[str, float]]]:
    """Each model's report card, and the baselines of its task's evaluation set (each task built once)."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    tasks: dict[str, Any] = {}
    judged = []
    for saved in models:
        task_id, task_kwargs = _task_of(saved, args)
        key = f"{task_id} {sorted(task_kwargs.items())!r}"
        if key not in tasks:
            tasks[key] = make_task(task_id, **task_kwargs)
        task = tasks[key]
        statistics = None
        if saved.vec_normalize is not None:
            statistics = VecNormalize.load(str(saved.vec_normalize), DummyVecEnv([lambda task=task: task]))
            statistics.training = False
        try:
            card = report_card(saved.model, task, vec_normalize=statistics, temperature=args.temperature,
                               q_policy=args.q_policy, seed=args.seed)  # fmt: skip
        except (ValueError, TypeError) as error:
            raise ValueError(f"{saved.path}: {error}") from None
        baselines = evaluation_baselines(card.states.expected_chunks(), args.temperature)
        judged.append((saved, card, baselines))
    return judged


def _check_names(models: list[SavedModel]) -> None:
    """Two models of one name would write one figure and be told apart by nothing in the table."""
    seen: dict[str, Path] = {}
    for saved in models:
        name = _file_name(saved.name)
        if name in seen:
            raise ValueError(f"{seen[name]} and {saved.path} are both named {saved.name}: rename one zip, or evaluate "
                             "them apart (another --out)")  # fmt: skip
        seen[name] = saved.path


def _rows(judged: list[tuple[SavedModel, ReportCard, dict[str, float]]]) -> list[dict[str, Any]]:
    """Each card as a CSV row, the model named as the table names it (not by its class), with its algorithm and file."""
    rows = []
    for saved, card, _ in judged:
        who = {"model": saved.name, "algo": saved.algo, "path": str(saved.path)}
        rows.append(who | {key: value for key, value in card.row().items() if key != "model"})
    return rows


def _table(judged: list[tuple[SavedModel, ReportCard, dict[str, float]]]) -> list[str]:
    """The table on screen and in report_card.md: per task, each model, then the random policy and the oracle."""
    lines = []
    widths = [max(len(m.column), 7) for m in SUMMARY]
    for task in dict.fromkeys(card.task for _, card, _ in judged):
        of_task = [(saved, card, baselines) for saved, card, baselines in judged if card.task == task]
        _, first, baselines = of_task[0]
        name_width = max(13, *(len(saved.name) for saved, _, _ in of_task))
        lines.append(f"{task}: {first.n_states:,} evaluation users, {first.n_actions:,} items; score = (reward - "
                     "random) / (oracle - random)")  # fmt: skip
        lines.append(f"| {'model':<{name_width}} | {'algo':<12} | "
                     + " | ".join(f"{m.column:>{w}}" for m, w in zip(SUMMARY, widths, strict=True)) + " |")  # fmt: skip
        lines.append("|" + "|".join("-" * (w + 2) for w in (name_width, 12, *widths)) + "|")

        def cells(values: dict[str, float], widths: list[int] = widths) -> str:
            return " | ".join(f"{m.format(values[m.tag]) if values.get(m.tag) is not None else '-':>{w}}"
                              for m, w in zip(SUMMARY, widths, strict=True))  # fmt: skip

        for saved, card, _ in of_task:
            algo = saved.algo + (" (norm.)" if card.normalized else "")
            lines.append(f"| {saved.name:<{name_width}} | {algo:<12} | {cells(card.metrics)} |")
        for name, values in baseline_values(baselines, first.n_actions, exact_q=False).items():
            lines.append(f"| {name:<{name_width}} | {'-':<12} | {cells(values)} |")
        lines.extend([tie_note(baselines), ""] if tie_note(baselines) else [""])
    return lines


def _write(out: Path, judged: list[tuple[SavedModel, ReportCard, dict[str, float]]], table: list[str]) -> None:
    rows = _rows(judged)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with atomic_path(out / "report_card.csv") as path, open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    write_text_atomically(out / "report_card.md", "\n".join(table) + "\n")
    for saved, card, _ in judged:
        title = f"{saved.name} ({saved.algo}) on {card.task}: p(a) over {card.n_states:,} users"
        save_marginal_figure(card.p, title, out / f"p_{_file_name(saved.name)}.png")


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = _parser(prog)
    args = parser.parse_args(argv)
    try:
        out = output_folder("--out", args.out)
        models = [load_saved_model(path) for path in args.models]
        _check_names(models)
        judged = _evaluate(args, models)
    except (ValueError, TypeError, OSError, ImportError) as error:
        parser.error(in_flags(error))
    table = _table(judged)
    print("\n".join(table))
    _write(out, judged, table)
    print(f"Wrote {out / 'report_card.csv'}, {out / 'report_card.md'} and each model's p(a), {out}/p_MODEL.png")
    return 0
