"""A study's TensorBoard: each agent's mean over its seeds as a run of its own, with the 95 % t-interval bands, an
HParams row, the Custom Scalars charts that draw them, and the study's overview picture.

Layout, beside the seed runs of :mod:`sb3_entropy.tensorboard`::

    ROOT/<experiment>/mean/<agent>        the agent's mean over seeds (and 95 % t-interval bounds)
    ROOT/<experiment>/mean                the study's overview picture (image study/overview)
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter

from sb3_entropy.callback import CUSTOM_SCALARS_LAYOUT, exact_tag_pattern
from sb3_entropy.metrics import METRICS, SUMMARY, metric
from sb3_entropy.study.analysis import agent_label, t_band
from sb3_entropy.tensorboard import (
    HPARAM_METRICS,
    MEAN_RUN,
    ORDER_FILE,
    agent_positions,
    aggregate_folder,
    custom_scalars_colors,
    custom_scalars_summary,
    hparam_value,
    interval_tag,
    layout_summary,
    means_folder,
    read_order_file,
    write_run_position,
    write_session_end,
    write_session_start,
)

__all__ = [
    "LEVEL",
    "MEANS_CATEGORY",
    "aggregate_layout",
    "retitle_bands",
    "run_layout",
    "write_aggregate_run",
    "write_mean_runs",
    "write_overview_image",
]


LEVEL = 0.95
MEANS_CATEGORY = "Agents' means over seeds (one line per agent)"


def _means_charts(tags: Sequence[str]) -> dict[str, list[Any]]:
    """One chart per tag of every agent's mean, titled by the metric's label."""
    return {
        f"{metric(tag).label}, mean over seeds": ["Multiline", [exact_tag_pattern(f"{MEAN_RUN}/{tag}")]] for tag in tags
    }


def _margin_category(experiment: str) -> str:
    return f"{experiment}: each agent's mean over seeds with its {LEVEL:.0%} t-interval (one band per agent)"


def aggregate_layout(
    experiment: str, tags: Sequence[str], banded: Sequence[str], colors: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The Custom Scalars charts of an experiment's mean runs: one margin chart per final value of a run (the metrics
    of :data:`~sb3_entropy.metrics.SUMMARY`) holding the band of every agent in ``banded`` (those with two seeds or
    more) on one y-axis, titled with each agent's colour on that page (``colors``), then multiline charts of every
    agent's mean (one line per mean run). Every mean run writes this same layout, which TensorBoard merges into one
    (it drops charts that are equal)."""
    layout: dict[str, Any] = {}
    if banded:
        layout[_margin_category(experiment)] = {
            _band_title(m.tag, banded, colors or {}): ["Margin", [_band(experiment, a, m.tag) for a in banded]]
            for m in SUMMARY
            if m.tag in tags
        }
    return layout | {MEANS_CATEGORY: _means_charts(tags)}


def _band_title(tag: str, banded: Sequence[str], colors: Mapping[str, str]) -> str:
    """A margin chart's title: the metric, and the colour the Custom Scalars page gives each agent's band."""
    named = ", ".join(f"{agent_label(agent)} {colors[agent]}" for agent in banded if agent in colors)
    return metric(tag).label + (f" ({named})" if named else "")


def retitle_bands(root: str | os.PathLike[str]) -> None:
    """Name each band's colour again in the margin charts of every experiment of ``root``. The Custom Scalars page
    colours a run by its place among the root's runs, so mean runs added by a later experiment can move an earlier
    experiment's runs to other colours; each mean run's layout is kept in its order file, rewritten here."""
    colors = custom_scalars_colors(root)
    for order_file in Path(root).rglob(ORDER_FILE):
        position, layout = read_order_file(order_file)
        if layout is None:
            continue
        before = layout.SerializeToString()
        experiment = order_file.parent.relative_to(root).parts[0]
        for chart in (chart for category in layout.category for chart in category.chart if chart.HasField("margin")):
            values = [series.value for series in chart.margin.series]  # interval/<experiment>/<agent>/<tag>
            agents = [value.split("/", 3)[2] for value in values]
            named = {agent: colors.get(f"{experiment}/{MEAN_RUN}/{agent}") for agent in agents}
            chart.title = _band_title(values[0].split("/", 3)[3], agents, {a: c for a, c in named.items() if c})
        if layout.SerializeToString() != before:
            write_run_position(order_file.parent, position, layout_summary(layout))


def _band(experiment: str, agent: str, tag: str) -> list[str]:
    value = interval_tag(experiment, agent, tag)
    return [value, f"{value}/lower", f"{value}/upper"]


def run_layout(experiment: str) -> dict[str, Any]:
    """The Custom Scalars layout of a run that will have mean runs beside it: the categories of the means first (the
    bands, then the lines)
    (their charts come with the mean runs; TensorBoard merges every run's layout in the order of the run names,
    and a seed run's name comes first), then EntropyCallback's own charts of every run."""
    layout: dict[str, Any] = {_margin_category(experiment): {}, MEANS_CATEGORY: _means_charts([m.tag for m in METRICS])}
    return layout | CUSTOM_SCALARS_LAYOUT


def write_aggregate_run(
    root: str | os.PathLike[str],
    experiment: str,
    agent: str,
    histories: Sequence[Sequence[Mapping[str, Any]]],
    baselines: Mapping[str, float] | None = None,
    hparams: Mapping[str, Any] | None = None,
    banded: Sequence[str] | None = None,
    position: int = 0,
    colors: Mapping[str, str] | None = None,
) -> Path:
    """Write ``root/<experiment>/mean/<agent>``: at every evaluation step all seeds reached, the mean over the seeds'
    ``histories`` (EntropyCallback.history of each seed) of every scalar, under the seed runs' own tags (so the
    Scalars and Time Series pages draw the mean runs beside the seeds, and a run filter ``mean`` leaves one line
    per agent) and as ``mean/<tag>``; with two seeds or more also the Student-t 95 % interval, as
    ``interval/<experiment>/<agent>/<tag>`` with ``/lower`` and ``/upper``.

    ``baselines`` (``random`` and ``oracle`` expected rewards of the evaluation set) add the score,
    ``eval/score``, as EntropyCallback logs it. ``hparams`` make the run a row of the HParams table.
    ``banded``: every agent of the experiment whose band the margin
    charts draw (default: this one, if it has two seeds). ``position``: the agent's place in its experiment, which
    gives it its colour in TensorBoard (:func:`~sb3_entropy.tensorboard.write_run_position`); ``colors``: each
    banded agent's colour on the Custom Scalars page, named in the margin charts' titles. The folder is replaced.
    """
    if not histories or any(not history for history in histories):
        raise ValueError(f"{experiment}/{agent}: every seed needs an evaluation history to average")
    steps, table = _seeds_by_step(histories, baselines)
    tags = list(table)
    bounds = len(histories) >= 2
    banded = list(banded) if banded is not None else ([agent] if bounds else [])
    folder = aggregate_folder(root, experiment, agent)
    if folder.is_dir():
        shutil.rmtree(folder)
    write_run_position(folder, position, custom_scalars_summary(aggregate_layout(experiment, tags, banded, colors)))
    writer = SummaryWriter(str(folder))
    try:
        writer.add_text("about", f"mean over {len(histories)} seeds of {experiment}/{agent}" + (
            f", with the {LEVEL:.0%} Student-t interval over seeds" if bounds else " (one seed: no interval)"
        ), 0)  # fmt: skip
        if hparams is not None:
            values = {str(k): hparam_value(k, v) for k, v in hparams.items()}
            write_session_start(writer.file_writer, values, HPARAM_METRICS)
        for tag in tags:
            mean, lower, upper = t_band(table[tag], LEVEL)
            for column, step in enumerate(steps):
                writer.add_scalar(tag, mean[column], step)
                writer.add_scalar(f"{MEAN_RUN}/{tag}", mean[column], step)
                if bounds:
                    writer.add_scalar(interval_tag(experiment, agent, tag), mean[column], step)
                    writer.add_scalar(interval_tag(experiment, agent, tag) + "/lower", lower[column], step)
                    writer.add_scalar(interval_tag(experiment, agent, tag) + "/upper", upper[column], step)
        if hparams is not None:
            write_session_end(writer.file_writer)
    finally:
        writer.close()
    return folder


def _seeds_by_step(
    histories: Sequence[Sequence[Mapping[str, Any]]], baselines: Mapping[str, float] | None
) -> tuple[list[int], dict[str, np.ndarray]]:
    """The evaluation steps every seed reached, and for each scalar tag a ``(seeds, steps)`` table of its values
    (with the derived metrics, the score, computed from the stored ones when ``baselines`` are given)."""
    steps = sorted(set.intersection(*({int(row["timesteps"]) for row in history} for history in histories)))
    tags = [
        tag
        for tag, value in histories[0][0].items()
        if tag not in ("timesteps", "p") and isinstance(value, (int, float, np.integer, np.floating))
    ]
    table = {tag: np.empty((len(histories), len(steps))) for tag in tags}
    for seed, history in enumerate(histories):
        by_step = {int(row["timesteps"]): row for row in history}
        for tag in tags:
            table[tag][seed] = [by_step[step][tag] for step in steps]
    if baselines is not None:
        rewards = any(metric(tag).rewards for tag in tags)
        table |= {m.tag: m.derive(table, baselines) for m in METRICS if not m.stored and (rewards or not m.rewards)}
    return steps, table


def write_overview_image(root: str | os.PathLike[str], experiment: str, png: str | os.PathLike[str], step: int) -> Path:
    """The experiment's overview figure (a PNG file) as the image ``study/overview`` of the run
    ``root/<experiment>/mean``, the picture of the whole study in the Images and Time Series pages. Earlier
    event files of that run are replaced (the mean runs' own folders below it are left alone)."""
    folder = means_folder(root, experiment)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("events.out.tfevents.*"):
        old.unlink()
    data = Path(png).read_bytes()
    width, height = struct.unpack(">II", data[16:24])  # the PNG header's IHDR chunk
    image = Summary.Image(height=height, width=width, colorspace=4, encoded_image_string=data)
    writer = SummaryWriter(str(folder))
    try:
        writer.file_writer.add_summary(Summary(value=[Summary.Value(tag="study/overview", image=image)]), int(step))
    finally:
        writer.close()
    return folder


def write_mean_runs(
    root: Path,
    experiment: str,
    histories: dict[tuple[str, int], list[dict[str, Any]]],
    baselines: dict[str, float] | None = None,
    hparams: dict[str, dict[str, Any]] | None = None,
    positions: Mapping[str, int] | None = None,
) -> list[Path]:
    """One TensorBoard run per agent, ``root/<experiment>/mean/<agent>``: its mean over the seeds that finished,
    with 95 % t-interval bounds (:func:`write_aggregate_run`), and an HParams row from
    ``hparams[agent]`` when given. The margin charts draw the band of every agent with two seeds or more.
    ``positions``: each agent's place in the root's colour order (:func:`~sb3_entropy.tensorboard.agent_positions`,
    from the order of ``histories`` by default)."""
    by_agent: dict[str, list[list[dict[str, Any]]]] = {}
    for (agent, _), history in histories.items():
        by_agent.setdefault(agent, []).append(history)
    positions = positions if positions is not None else agent_positions(root, list(by_agent))
    banded = [agent for agent, seeds in by_agent.items() if len(seeds) >= 2]
    written = []
    for agent, seeds in by_agent.items():
        run_hparams = (hparams or {}).get(agent)
        written.append(write_aggregate_run(root, experiment, agent, seeds, baselines or None, run_hparams, banded,
                                           positions[agent]))  # fmt: skip
    retitle_bands(root)  # this experiment's titles, and any other experiment's whose runs moved
    return written
