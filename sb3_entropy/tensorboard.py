"""TensorBoard runs that compare agents at a glance.

Layout, under one TensorBoard root (``tensorboard --logdir ROOT``)::

    ROOT/<experiment>/<agent>/seed<N>     one training run (EntropyCallback's scalars, SB3's own, HParams)
    ROOT/<experiment>/mean/<agent>        the agent's mean over seeds (and 95 % t-interval bounds)

so the run filter selects an experiment, an agent or the means by their names, and every legend reads the agent.
A run trained again replaces its folder (:func:`tensorboard_logger`), so a resumed study still has one complete
run per agent and seed. :class:`HParamsCallback` fills the HParams dashboard; :func:`write_aggregate_run` writes
the mean runs and the Custom Scalars charts that go with them; :func:`evaluation_log_interval` makes SB3 dump its
own scalars at the evaluation cadence rather than once per episode.
"""

from __future__ import annotations

import math
import os
import shutil
import struct
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from google.protobuf import struct_pb2
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat, configure
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as custom_scalars_metadata
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata
from torch.utils.tensorboard import SummaryWriter

from personalization_gym.checks import check_integer, is_bool, is_number
from sb3_entropy.metrics import EXPECTED_REWARD, GINI, MARGINAL_ENTROPY, SCORE, SUMMARY, metric

__all__ = [
    "CUSTOM_SCALARS_COLOR_NAMES",
    "HPARAM_METRICS",
    "HPARAM_NAMES",
    "MEAN_RUN",
    "ORDER_FILE",
    "TENSORBOARD_COLOR_NAMES",
    "TENSORBOARD_PALETTE",
    "HParamsCallback",
    "agent_color",
    "agent_positions",
    "aggregate_folder",
    "color_name",
    "custom_scalars_colors",
    "custom_scalars_summary",
    "dashboard_url",
    "evaluation_log_interval",
    "hparam_value",
    "interval_tag",
    "layout_summary",
    "means_folder",
    "read_order_file",
    "run_folder",
    "run_position",
    "tensorboard_logger",
    "write_run_position",
    "write_session_end",
    "write_session_start",
]

MEAN_RUN = "mean"  # ROOT/<experiment>/mean/<agent>: the folder of the aggregate runs

# The HParams dashboard: every run's settings (hyperparameters) and its final values (metrics: the last value of
# each tag, logged by EntropyCallback at the end of training), with the names a reader sees. Three settings: the
# table's first column (the run, such as music/mean/a2c) names the experiment, the agent and the seed, and the
# dashboard shows at most five settings before the metrics, so that with three the reward, the score and H(p) are in
# sight on a 1,600-pixel screen.
HPARAM_NAMES = {"algo": "algorithm", "regularizer": "entropy regulariser", "coefficient": "coefficient (ent_coef)"}
# Every run writes the same description of these (TensorBoard reads one run's), each run's values filling its row;
# a run without a setting (DQN has no coefficient) leaves that cell empty.
HPARAM_TYPES = {"coefficient": api_pb2.DATA_TYPE_FLOAT64}
# The metrics' columns: a run's final values, from the metrics table (short names, so that the table fits a screen;
# each column's description is the metric's).
HPARAM_METRICS = {m.tag: m.column for m in SUMMARY}


# Time Series colours runs by this group: an agent's seeds and its mean share one colour ("music/a2c/seed3" and
# "music/mean/a2c" are both "a2c").
AGENT_COLOR_GROUP = r"([^/]+)(?:/seed\d+)?$"
# Its colours: TensorBoard's default palette, one colour per group in the order of its runs list, which is by the
# wall time of each run's first event (then by name). Each mean run's first event file (ORDER_FILE) is dated its
# agent's position in the experiment (1 s, 2 s, ... after 1970), so the agents take these colours in the order of
# the experiment file; the study's own figures use the same (agent_color).
TENSORBOARD_PALETTE = ("#425066", "#12b5cb", "#e52592", "#f9ab00", "#9334e6", "#7cb342", "#e8710a")
TENSORBOARD_COLOR_NAMES = ("slate", "cyan", "pink", "yellow", "purple", "light green", "orange")  # TensorBoard's
ORDER_FILE = "events.out.tfevents.0000000000.order"  # sorts before every event file SB3 or torch writes
# The Custom Scalars page colours each run, not each group, by its place in the same runs list, from another
# palette (TensorBoard's colour-blind one): its charts name their colours in their titles (page_colors).
CUSTOM_SCALARS_COLOR_NAMES = ("orange", "blue", "red", "cyan", "magenta", "teal", "grey")


def agent_color(position: int) -> str:
    """The colour of the agent at ``position`` (0, 1, ...) in its experiment: in TensorBoard and in every figure."""
    return TENSORBOARD_PALETTE[check_integer("position", position, 0) % len(TENSORBOARD_PALETTE)]


def agent_positions(root: str | os.PathLike[str], agents: Sequence[str]) -> dict[str, int]:
    """Each agent's place in the colour order of the TensorBoard ``root``: the place its mean runs already hold
    there (the first experiment written to a root sets it, so an agent keeps one colour in every experiment), else
    the next free place, in the order of ``agents``."""
    held: dict[str, int] = {}
    for path in Path(root).rglob(ORDER_FILE):
        held[path.parent.name] = min(held.get(path.parent.name, math.inf), run_position(path))
    places = sorted(set(held.values()))
    positions = {agent: places.index(held[agent]) for agent in agents if agent in held}  # without the gaps
    free = len(places)
    for agent in agents:
        if agent not in positions:
            positions[agent], free = free, free + 1
    return positions


def custom_scalars_colors(root: str | os.PathLike[str], positions: Mapping[str, int] | None = None) -> dict[str, str]:
    """The Custom Scalars page's colour of each run of ``positions`` (run name -> position, the runs about to get
    their order file; default: every run of ``root`` that has one), among the runs of ``root`` that already have
    one: TensorBoard lists these runs first, by position and then by name (every other run started later)."""
    dated = {path.parent.relative_to(root).as_posix(): run_position(path) for path in Path(root).rglob(ORDER_FILE)}
    dated |= dict(positions or {})
    listed = sorted(dated, key=lambda run: (dated[run], run))
    names = CUSTOM_SCALARS_COLOR_NAMES
    return {run: names[listed.index(run) % len(names)] for run in (dated if positions is None else positions)}


def _order_events(order_file: Path) -> list[Any]:
    """The events of an order file: the file version, then the run's Custom Scalars layout if it has one."""
    from tensorboard.compat.proto.event_pb2 import Event

    data, events, start = order_file.read_bytes(), [], 0
    while start < len(data):  # TFRecords: a length, its CRC, the event, its CRC
        (length,) = struct.unpack("<Q", data[start : start + 8])
        events.append(Event.FromString(data[start + 12 : start + 12 + length]))
        start += 16 + length
    return events


def run_position(order_file: Path) -> int:
    """The position a run's order file gives it (:func:`write_run_position`)."""
    return read_order_file(order_file)[0]


def read_order_file(order_file: Path) -> tuple[int, layout_pb2.Layout | None]:
    """A run's order file (:func:`write_run_position`), read once: its position, and the Custom Scalars layout it
    holds, or None."""
    first, *rest = _order_events(order_file)
    layout = layout_pb2.Layout.FromString(rest[0].summary.value[0].tensor.string_val[0]) if rest else None
    return int(first.wall_time) - 1, layout


def color_name(color: str) -> str:
    """What TensorBoard calls a colour of its palette (``#425066`` -> ``slate``)."""
    return TENSORBOARD_COLOR_NAMES[TENSORBOARD_PALETTE.index(color)]


def write_run_position(folder: str | os.PathLike[str], position: int, layout: Summary | None = None) -> Path:
    """Date ``folder``'s first event ``position + 1`` seconds after 1970, so that TensorBoard lists the run before
    every run trained since, in the order of ``position``: the file version, in ``ORDER_FILE``, and the run's Custom
    Scalars ``layout`` when given (kept there so that its titles can be written again without the run's data)."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.summary.writer.record_writer import RecordWriter

    path = Path(folder) / ORDER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    wall_time = float(check_integer("position", position, 0) + 1)
    events = [Event(wall_time=wall_time, file_version="brain.Event:2")]
    if layout is not None:
        events.append(Event(wall_time=wall_time, step=0, summary=layout))
    partial = path.with_name(".order.partial")  # whole or not at all, under a name TensorBoard never reads
    with open(partial, "wb") as stream:
        writer = RecordWriter(stream)
        for event in events:
            writer.write(event.SerializeToString())
    os.replace(partial, path)
    return path


# The tags the dashboard link opens on: the paper's metric, reward and score, the recommender field's Gini, and the
# study's overview picture (clear the tag filter for every tag).
DASHBOARD_TAGS = (MARGINAL_ENTROPY.tag, EXPECTED_REWARD.tag, SCORE.tag, GINI.tag, "study/overview")


def dashboard_url(port: int = 6006, host: str = "localhost", means_only: bool = True) -> str:
    """The Time Series page of a TensorBoard server with one colour per agent, the tags of :data:`DASHBOARD_TAGS`
    and, with ``means_only``, only the mean runs (run filter ``/mean``): one line per agent in every chart."""
    query = {
        "runColorGroup": f"regex:{AGENT_COLOR_GROUP}",
        "tagFilter": f"^({'|'.join(DASHBOARD_TAGS)})$",
    } | ({"runFilter": f"/{MEAN_RUN}"} if means_only else {})
    return f"http://{host}:{port}/?{urllib.parse.urlencode(query)}#timeseries"


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"{kind} names a TensorBoard folder: a non-empty name without '/' or '\\', got {name!r}")
    return name


def run_folder(root: str | os.PathLike[str], experiment: str, agent: str, seed: int) -> Path:
    """``root/<experiment>/<agent>/seed<seed>``: one run's TensorBoard folder."""
    if agent == MEAN_RUN:
        raise ValueError(f"agent name {MEAN_RUN!r} is the folder of the mean runs over seeds: give the agent another")
    return Path(root) / _check_name("experiment", experiment) / _check_name("agent", agent) / f"seed{int(seed)}"


def means_folder(root: str | os.PathLike[str], experiment: str) -> Path:
    """``root/<experiment>/mean``: the folder of an experiment's mean runs, itself the run of its overview picture."""
    return Path(root) / _check_name("experiment", experiment) / MEAN_RUN


def aggregate_folder(root: str | os.PathLike[str], experiment: str, agent: str) -> Path:
    """``root/<experiment>/mean/<agent>``: the TensorBoard folder of an agent's mean over seeds."""
    return means_folder(root, experiment) / _check_name("agent", agent)


def tensorboard_logger(folder: str | os.PathLike[str], formats: Sequence[str] = ("tensorboard",)) -> Logger:
    """An SB3 logger writing to exactly ``folder`` (no ``_1`` suffix), which is emptied first: a run trained again
    replaces its earlier curves instead of adding a second, partial run. ``model.set_logger`` it before ``learn``."""
    folder = Path(folder)
    if folder.is_dir():
        shutil.rmtree(folder)
    return configure(str(folder), list(formats))


def evaluation_log_interval(model: BaseAlgorithm, eval_freq: int) -> int:
    """``learn(log_interval=...)`` that makes SB3 dump its own scalars about once per ``eval_freq`` steps.

    SB3 counts ``log_interval`` in rollouts for on-policy algorithms (each ``n_steps * n_envs`` steps) and in
    episodes for off-policy ones, where every personalization task's episode is one step. Its defaults (A2C 100
    rollouts, PPO 1, DQN 4 episodes) dump up to 8 times per step of 32 parallel one-step users. Fewer dumps change
    no value: each dumped scalar is what SB3 computes at that step.
    """
    eval_freq = check_integer("eval_freq", eval_freq, 1)
    if isinstance(model, OnPolicyAlgorithm):
        return max(1, math.ceil(eval_freq / (model.n_steps * model.n_envs)))
    return eval_freq


# ------------------------------------------------------------------------------------------------------------
def _hparams_summary(tag: str, **content: Any) -> Summary:
    data = plugin_data_pb2.HParamsPluginData(version=hparams_metadata.PLUGIN_DATA_VERSION, **content)
    plugin = SummaryMetadata.PluginData(plugin_name=hparams_metadata.PLUGIN_NAME, content=data.SerializeToString())
    return Summary(value=[Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=plugin))])


def hparam_value(name: str, value: Any) -> struct_pb2.Value:
    if is_bool(value):
        return struct_pb2.Value(bool_value=bool(value))
    if is_number(value) and math.isfinite(value):
        return struct_pb2.Value(number_value=float(value))
    if isinstance(value, str):
        return struct_pb2.Value(string_value=value)
    raise ValueError(f"hyperparameter {name} must be a string, a finite number or a boolean, got {value!r}")


def _data_type(value: struct_pb2.Value) -> int:
    kind = value.WhichOneof("kind")
    return {"bool_value": api_pb2.DATA_TYPE_BOOL, "number_value": api_pb2.DATA_TYPE_FLOAT64}.get(
        kind, api_pb2.DATA_TYPE_STRING
    )


class HParamsCallback(BaseCallback):
    """Make a run one row of TensorBoard's HParams dashboard: its ``hparams`` (name -> string, number or bool)
    as hyperparameters, and the last value of each tag in ``metrics`` (tag -> display name; default: EntropyCallback's
    final reward, score, H(p), per-state entropy and exposure metrics) as metrics.

    Every run writes the same experiment description (the names and kinds of the hyperparameters and metrics),
    so runs of several experiments under one root share one table. Needs a TensorBoard logger
    (``tensorboard_log=...`` or ``model.set_logger``). Attach it after EntropyCallback.
    """

    def __init__(self, hparams: Mapping[str, Any], metrics: Mapping[str, str] | None = None, verbose: int = 0) -> None:
        super().__init__(verbose=verbose)
        if not isinstance(hparams, Mapping) or not hparams:
            raise ValueError(f"hparams must be a non-empty mapping of name -> value, got {hparams!r}")
        self.hparams = {str(name): hparam_value(name, value) for name, value in hparams.items()}
        self.metrics = dict(HPARAM_METRICS if metrics is None else metrics)
        if not self.metrics:
            raise ValueError("metrics must name at least one scalar tag, the HParams dashboard's metric")

    def _writer(self) -> SummaryWriter:
        formats = self.logger.output_formats
        writer = next((f.writer for f in formats if isinstance(f, TensorBoardOutputFormat)), None)
        if writer is None:
            raise ValueError(
                "HParamsCallback writes to TensorBoard, but the model logs no TensorBoard run: pass "
                "tensorboard_log=... to the model or set a logger with the 'tensorboard' format"
            )
        return writer

    def _init_callback(self) -> None:
        self._writer()  # fail at the start of training, not at its end

    def _on_training_start(self) -> None:
        write_session_start(self._writer().file_writer, self.hparams, self.metrics)

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        write_session_end(self._writer().file_writer)


def write_session_start(file_writer: Any, hparams: Mapping[str, struct_pb2.Value], metrics: Mapping[str, str]) -> None:
    """An HParams session's start: the experiment's description (every name of :data:`HPARAM_NAMES`, then this
    run's others) and this run's values."""
    names = [*HPARAM_NAMES, *(name for name in hparams if name not in HPARAM_NAMES)]
    kinds = {name: _data_type(value) for name, value in hparams.items()} | HPARAM_TYPES
    experiment = api_pb2.Experiment(
        hparam_infos=[
            api_pb2.HParamInfo(
                name=name, display_name=HPARAM_NAMES.get(name, name), type=kinds.get(name, api_pb2.DATA_TYPE_STRING)
            )
            for name in names
        ],
        metric_infos=[
            api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag), display_name=name, description=_description(tag))
            for tag, name in metrics.items()
        ],
    )
    start = plugin_data_pb2.SessionStartInfo(hparams=hparams)
    file_writer.add_summary(_hparams_summary(hparams_metadata.EXPERIMENT_TAG, experiment=experiment))
    file_writer.add_summary(_hparams_summary(hparams_metadata.SESSION_START_INFO_TAG, session_start_info=start))
    file_writer.flush()


def _description(tag: str) -> str:
    """A metric's description from the metrics table; empty for a tag that is not one of its metrics."""
    try:
        return metric(tag).description
    except ValueError:
        return ""


def write_session_end(file_writer: Any) -> None:
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS)
    file_writer.add_summary(_hparams_summary(hparams_metadata.SESSION_END_INFO_TAG, session_end_info=end))
    file_writer.flush()


# ------------------------------------------------------------------------------------------------------------
def interval_tag(experiment: str, agent: str, tag: str) -> str:
    """The aggregate run's own copy of ``tag``'s mean, the value of its margin chart (``/lower``, ``/upper``: the
    bounds). Margin charts plot every run that has their tags, so these name the experiment and agent."""
    return f"interval/{experiment}/{agent}/{tag}"


def custom_scalars_summary(layout: Mapping[str, Mapping[str, Sequence[Any]]]) -> Summary:
    """A Custom Scalars layout as TensorBoard reads it, from ``{category: {chart title: [kind, content]}}``: kind
    ``"Multiline"`` with a list of tag patterns, or ``"Margin"`` with a list of ``[value, lower, upper]`` tag
    triples, one series each (torch's ``add_custom_scalars`` takes one series per margin chart)."""
    categories = []
    for title, charts in layout.items():
        protos = []
        for chart_title, (kind, content) in charts.items():
            if kind == "Margin":
                series = [layout_pb2.MarginChartContent.Series(value=v, lower=lo, upper=up) for v, lo, up in content]
                protos.append(layout_pb2.Chart(title=chart_title, margin=layout_pb2.MarginChartContent(series=series)))
            else:
                multiline = layout_pb2.MultilineChartContent(tag=list(content))
                protos.append(layout_pb2.Chart(title=chart_title, multiline=multiline))
        categories.append(layout_pb2.Category(title=title, chart=protos))
    return layout_summary(layout_pb2.Layout(category=categories))


def layout_summary(layout: layout_pb2.Layout) -> Summary:
    """A Custom Scalars layout proto as the summary TensorBoard reads it."""
    tensor = TensorProto(dtype="DT_STRING", string_val=[layout.SerializeToString()], tensor_shape=TensorShapeProto())
    plugin = SummaryMetadata.PluginData(plugin_name=custom_scalars_metadata.PLUGIN_NAME)
    metadata = SummaryMetadata(plugin_data=plugin)
    tag = custom_scalars_metadata.CONFIG_SUMMARY_TAG
    return Summary(value=[Summary.Value(tag=tag, tensor=tensor, metadata=metadata)])
