"""The metrics table is the one home of a metric: a metric added as one row (and its computation) of
sb3_entropy.metrics.METRICS shows in every view without another edit, and every view reads the table."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import PROJECT_ROOT, tiny_experiment
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.hparams import plugin_data_pb2

from sb3_entropy.metrics import METRICS, STORED, SUMMARY, metric

# One row and its computation: the share of exposure in the short head, the long tail's complement.
NEW_ROW = """
HEAD_SHARE = Metric(
    "exposure/head_share", "short-head share of p(a)", "the share of exposure that goes to the most-exposed 20 % of items",
    "more concentrated exposure", _share, column="head share", chart=(EXPOSURE_CHARTS, "short-head share of p(a)"),
    compute=lambda t: 1.0 - long_tail_share(t.p),
)
"""


def with_new_row(root: Path) -> Path:
    """A copy of the project's packages whose metrics table has one row more, after the aggregate diversity."""
    for package in ("personalization_gym", "sb3_entropy"):
        shutil.copytree(PROJECT_ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    path = root / "sb3_entropy" / "metrics.py"
    text = path.read_text()
    table = "# In the order of results.csv's columns"
    assert text.count(table) == 1 and text.count("GINI, LONG_TAIL_SHARE, AGGREGATE_DIVERSITY,") == 1
    text = text.replace(table, NEW_ROW.strip() + "\n\n" + table)
    text = text.replace(
        "GINI, LONG_TAIL_SHARE, AGGREGATE_DIVERSITY,", "GINI, LONG_TAIL_SHARE, AGGREGATE_DIVERSITY, HEAD_SHARE,"
    )
    path.write_text(text)
    return root


def run(root: Path, *args: str) -> subprocess.CompletedProcess:
    """The personalization-gym command of the copy, in a fresh interpreter, from ``root``."""
    code = "import sys, sb3_entropy; assert sb3_entropy.__file__.startswith(sys.argv[1]); sys.argv[1:2] = []; "
    code += "import runpy; runpy.run_module('sb3_entropy', run_name='__main__')"
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", code, str(root), *args], capture_output=True, text=True, cwd=root,
                          env=env, timeout=600)  # fmt: skip


@pytest.mark.slow
def test_a_metric_added_as_one_row_shows_in_every_view(tmp_path: Path) -> None:
    root = with_new_row(tmp_path / "copy")
    (root / "tiny.yml").write_text(tiny_experiment())
    study = run(root, "reproduce", "tiny.yml", "--seeds", "2", "--workers", "1", "--out", "out")
    assert study.returncode == 0, study.stderr

    # results.csv: a column after the aggregate diversity, each value the long tail's complement
    with open(root / "out" / "tiny" / "results.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    header = list(rows[0])
    assert header.index("exposure/head_share") == header.index("exposure/aggregate_diversity") + 1
    for row in rows:
        assert float(row["exposure/head_share"]) == pytest.approx(1 - float(row["exposure/long_tail_share"]), abs=1e-12)

    # the report: a column of final values, between the distinct greedy items and the paper's values
    report = (root / "out" / "report.md").read_text()
    assert "| distinct greedy items | head share | paper reward | paper entropy |" in report

    # TensorBoard: each seed run logs it and charts it; the mean runs band it; HParams shows it as a final value
    seed_run = root / "out" / "tb" / "tiny" / "a2c" / "seed0"
    events = EventAccumulator(str(seed_run), size_guidance={"tensors": 0})
    events.Reload()
    assert "exposure/head_share" in events.Tags()["scalars"]
    tags = [tag for _, tags in charts(seed_run) for tag in tags]
    assert "^exposure/head_share$" in tags and "^mean/exposure/head_share$" in tags
    mean_run = root / "out" / "tb" / "tiny" / "mean" / "a2c"
    assert ("short-head share of p(a) (A2C orange, DQN blue)", ["interval/tiny/a2c/exposure/head_share"]) in [
        (title, series[:1]) for title, series in charts(mean_run, margins=True)
    ]  # titled with each agent's colour on the Custom Scalars page
    assert ("exposure/head_share", "head share") in hparam_metrics(seed_run)

    # train's printout: a column of its own
    train = run(root, "train", "Personalization/Behavior-v0", "--algo", "a2c", "--timesteps", "64", "--n-eval", "100")
    assert train.returncode == 0, train.stderr
    assert "distinct greedy items head share" in " ".join(train.stdout.split())


def charts(run_folder: Path, margins: bool = False) -> list[tuple[str, list[str]]]:
    """The Custom Scalars charts a run's event file lays out: (title, tags), or for margin charts (title, the value
    tag of each series)."""
    events = EventAccumulator(str(run_folder), size_guidance={"tensors": 0})
    events.Reload()
    found = []
    for event in events.Tensors("custom_scalars__config__"):
        layout = layout_pb2.Layout.FromString(event.tensor_proto.string_val[0])
        for category in layout.category:
            for chart in category.chart:
                if margins and chart.HasField("margin"):
                    found.append((chart.title, [series.value for series in chart.margin.series]))
                elif not margins and chart.HasField("multiline"):
                    found.append((chart.title, list(chart.multiline.tag)))
    return found


def hparam_metrics(run_folder: Path) -> list[tuple[str, str]]:
    """(tag, display name) of each metric of the HParams experiment a run's event file describes."""
    from tensorboard.backend.event_processing import event_file_loader

    found = []
    for path in sorted(run_folder.glob("events.out.tfevents.*")):
        for event in event_file_loader.EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag == "_hparams_/experiment":
                    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                    found += [(info.name.tag, info.display_name) for info in data.experiment.metric_infos]
    return found


def test_every_view_reads_the_table() -> None:
    """The selections the views use are the table's rows, in its order: nothing listed by hand beside it."""
    from sb3_entropy.callback import CUSTOM_SCALARS_CHARTS
    from sb3_entropy.study.analysis import RESULT_COLUMNS
    from sb3_entropy.study.runs import METRIC_KEYS
    from sb3_entropy.tensorboard import HPARAM_METRICS

    assert RESULT_COLUMNS[8:] == tuple(m.tag for m in METRICS if m.stored)
    assert list(HPARAM_METRICS.items()) == [(m.tag, m.column) for m in SUMMARY]
    charted = [tag for category in CUSTOM_SCALARS_CHARTS.values() for tags in category.values() for tag in tags]
    assert charted == [m.tag for m in METRICS if m.chart is not None]  # each category's rows stand together
    assert set(METRIC_KEYS) == {m.tag for m in STORED if not m.rewards}
    # the final values: how well the policy does, then how diverse it is
    assert [m.tag for m in SUMMARY] == [
        "eval/expected_reward", "eval/score", "entropy/marginal", "entropy/per_state", "actions/effective_number",
        "exposure/gini", "exposure/long_tail_share", "exposure/aggregate_diversity",
    ]  # fmt: skip


@pytest.mark.parametrize("m", METRICS, ids=lambda m: m.tag)
def test_each_row_is_complete_and_its_bounds_hold_on_random_policies(m) -> None:
    assert metric(m.tag) is m and m.label and len(m.description) > 30 and m.higher
    assert (m.compute is None) != (m.derive is None)  # stored, or derived: one computation
    rng = np.random.default_rng(0)
    from sb3_entropy.metrics import all_metrics

    for k in (2, 7, 50):
        probs = rng.dirichlet(np.full(k, 0.3), size=40)
        expected = rng.random((40, k))
        values = all_metrics(probs, expected, rng)
        baselines = {"random": expected.mean(), "oracle": expected.max(axis=1).mean()}
        low, high = m.bounds(k, baselines)
        assert low - 1e-12 <= values[m.tag] <= high + 1e-12


def test_an_unknown_tag_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown metric 'entropy/margnal'; valid: \['entropy/marginal', "):
        metric("entropy/margnal")


def test_the_docs_list_the_metrics_table_as_it_is() -> None:
    """docs/callback.md's table of metrics is the metrics table's rows, in order, with their own words."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    expected = ["| tag | what it is | a higher value means | report column |", "|---|---|---|---|"]
    expected += [f"| `{m.tag}` | {cell(m.description)} | {cell(m.higher)} | {cell(m.column or '-')} |" for m in METRICS]
    text = (PROJECT_ROOT / "docs" / "callback.md").read_text()
    start = text.index(expected[0])
    written = text[start:].split("\n\n")[0].splitlines()
    assert written == expected, (
        "docs/callback.md's table of metrics differs from METRICS; it should read:\n" + "\n".join(expected)
    )
