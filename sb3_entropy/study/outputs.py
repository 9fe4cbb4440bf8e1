"""What a study writes for each experiment: results.csv, environment.json, its figures and, for a frontier,
frontier.csv."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from sb3_entropy.atomic import atomic_path, write_text_atomically
from sb3_entropy.study.frontier import FINAL_KEYS, frontier_points, reaching
from sb3_entropy.study.mean_runs import write_overview_image
from sb3_entropy.study.plots import curves_figure, distribution_figure, frontier_figure, overview_figure
from sb3_entropy.study.results import write_results_csv
from sb3_entropy.study.runner import ExperimentResult

__all__ = ["FRONTIER_COLUMNS", "write_outputs"]

FRONTIER_COLUMNS = (
    "agent", "base", "regularizer", "coefficient", "seeds",
    *(f"{name}_{part}" for name in FINAL_KEYS for part in ("mean", "low", "high")),
)  # fmt: skip


def write_outputs(result: ExperimentResult, out_dir: Path) -> Path:
    """``results.csv``, ``environment.json`` (where each run trained) and the PNG figures of one experiment in
    ``out_dir/<name>/``.

    ``overview.png`` is the finding in one picture (entropy curves and every agent's p(a) over training), also
    written to the study's TensorBoard root as the image ``study/overview`` of the run ``<name>/mean``;
    ``reward.png`` and ``entropy.png`` the learning curves; ``distribution_<agent>.png`` p(a) over training.

    Curves and action distributions are drawn for the agents the experiment file lists; a frontier's variants
    are drawn in ``frontier.png`` (with ``frontier.csv``, one row per point), and the action distributions of
    the variants that first reach the reference's marginal entropy.
    """
    folder = out_dir / result.experiment.name
    folder.mkdir(parents=True, exist_ok=True)
    write_results_csv(result, folder / "results.csv")
    if not result.histories:
        return folder
    _write_environments(result, folder / "environment.json")
    frontier = result.experiment.frontier
    variants = frontier.variants() if frontier is not None else {}
    listed = [name for name in result.experiment.agents if name not in variants]
    drawn = set(listed)
    curves_figure(result, "eval/expected_reward", "expected reward", folder / "reward.png", listed)
    curves_figure(result, "entropy/marginal", "marginal entropy H(p) [nats]", folder / "entropy.png", listed)
    if frontier is None:
        overview_figure(result, folder / "overview.png", listed)
        last_step = max(history[-1]["timesteps"] for history in result.histories.values())
        write_overview_image(out_dir / "tb", result.experiment.name, folder / "overview.png", last_step)
    if frontier is not None:
        points = frontier_points(result)
        frontier_figure(result, points, result.baselines, folder / "frontier.png")
        _write_frontier_csv(points, folder / "frontier.csv")
        drawn |= {reach.point.agent for reach in reaching(result, points) if reach.point is not None}
    for agent in sorted({name for name, _ in result.histories} & drawn):
        distribution_figure(result, agent, folder / f"distribution_{agent}.png")
    return folder


def _write_environments(result: ExperimentResult, path: Path) -> None:
    """``environment.json``: each environment the runs trained in, with the runs that trained there."""
    groups: list[dict[str, Any]] = []
    for (agent, seed), environment in sorted(result.environments.items()):
        group = next((g for g in groups if g["environment"] == environment), None)
        if group is None:
            group = {"environment": environment, "runs": []}
            groups.append(group)
        group["runs"].append(f"{agent}_seed{seed}")
    write_text_atomically(path, json.dumps({"environments": groups}, indent=1) + "\n")


def _write_frontier_csv(points: list, path: Path) -> None:
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(FRONTIER_COLUMNS)
        for point in points:
            values = [getattr(point, name) for name in FINAL_KEYS]
            writer.writerow([
                point.agent, point.base, point.regularizer or "", f"{point.coefficient:g}", point.reward.n,
                *(repr(number) for value in values for number in (value.estimate, value.low, value.high)),
            ])  # fmt: skip
