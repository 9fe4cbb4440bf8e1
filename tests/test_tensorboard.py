"""The TensorBoard dashboards of a study, read as a user's browser reads them: through a real TensorBoard server
on 127.0.0.1 and its HTTP data routes. Also SB3's logging cadence and the action-distribution picture."""

from __future__ import annotations

import math
import re
import shutil
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import ACTION_TAGS, ENTROPY_TAGS, EXPOSURE_TAGS, REWARD_TAGS, call_script
from scipy import stats
from stable_baselines3 import A2C, DQN
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.util import tensor_util
from torch.utils.tensorboard import SummaryWriter

from personalization_gym import BehaviorEnv
from sb3_entropy.callback import EntropyCallback
from sb3_entropy.figures import DistributionFigure, DownsampledHistory, action_colors
from sb3_entropy.study import load_experiment
from sb3_entropy.study.analysis import agent_label
from sb3_entropy.study.runs import RunSpec, build_model, run_hparams, train
from sb3_entropy.tensorboard import (
    CUSTOM_SCALARS_COLOR_NAMES,
    ORDER_FILE,
    HParamsCallback,
    dashboard_url,
    evaluation_log_interval,
    interval_tag,
    run_folder,
    tensorboard_logger,
)

TASK_KWARGS = {"n_actions": 6, "state_dim": 4, "n_eval": 200}
STUDY = """
task: Personalization/Behavior-v0
task_kwargs: {n_actions: 6, state_dim: 4, n_eval: 200}
net_arch: [16]
steps: 128
eval_freq: 32
agents:
  a2c: {learning_rate: 1.0e-3}
  dqn: {learning_rate: 1.0e-3}
  ppo_marginal: {algo: ppo, regularizer: marginal, ent_coef: 0.05}
"""
AGENTS = ("a2c", "dqn", "ppo_marginal")
SEEDS = (0, 1, 2)
# a run's final values: the report's columns, the HParams metrics and the bands of the means
FINAL_TAGS = (
    "eval/expected_reward", "eval/score", "entropy/marginal", "entropy/per_state", "actions/effective_number",
    *EXPOSURE_TAGS,
)  # fmt: skip
CALLBACK_TAGS = (*ENTROPY_TAGS, *ACTION_TAGS, *EXPOSURE_TAGS, *REWARD_TAGS, "eval/score")
SESSION_STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


def scalars(folder: Path, tag: str) -> tuple[list[int], np.ndarray]:
    """(steps, values) of ``tag`` in the event files of ``folder``, read without TensorBoard's server."""
    events = EventAccumulator(str(folder))
    events.Reload()
    points = events.Scalars(tag)
    return [point.step for point in points], np.array([point.value for point in points], dtype=np.float64)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny study of three agents and three seeds through reproduce.py: its output folder."""
    folder = tmp_path_factory.mktemp("study")
    (folder / "tiny.yml").write_text(STUDY)
    result = call_script(
        "reproduce.py", str(folder / "tiny.yml"), "--seeds", str(len(SEEDS)), "--workers", "1", "--out", str(folder / "out")
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return folder / "out"


def test_the_dashboards_group_runs_by_agent_with_means_and_hparams(study: Path, tensorboard_server) -> None:
    root = study / "tb"
    server = tensorboard_server(root)
    runs = [f"tiny/{agent}/seed{seed}" for agent in AGENTS for seed in SEEDS]
    means = [f"tiny/mean/{agent}" for agent in AGENTS]
    server.wait_for(lambda s: sorted(s.get("/data/plugin/scalars/tags")) == sorted(runs + means))
    # no SB3 "_1" suffix; tiny/mean holds the study's overview picture
    assert sorted(server.get("/data/runs")) == sorted([*runs, *means, "tiny/mean"])
    images = server.get("/data/plugin/images/tags")
    assert images["tiny/mean"] == {"study/overview": images["tiny/mean"]["study/overview"]}
    (picture,) = server.get("/data/plugin/images/images", run="tiny/mean", tag="study/overview")
    assert picture["step"] == 128
    png = (study / "tiny" / "overview.png").read_bytes()
    with urllib.request.urlopen(f"{server.base}/data/plugin/images/individualImage?{picture['query']}") as answer:
        served = answer.read()
    assert served == png  # the figure the study wrote, byte for byte

    # every seed run logs every callback scalar, eval/score included, as (reward - random) / (oracle - random)
    tags = server.get("/data/plugin/scalars/tags")
    expected = BehaviorEnv(**TASK_KWARGS).eval_set().expected
    random, oracle = expected.mean(), expected.max(axis=1).mean()
    for run in runs:
        assert set(CALLBACK_TAGS) <= set(tags[run])
        reward = server.get("/data/plugin/scalars/scalars", run=run, tag="eval/expected_reward")
        score = server.get("/data/plugin/scalars/scalars", run=run, tag="eval/score")
        assert [point[1] for point in score] == [point[1] for point in reward] == [0, 32, 64, 96, 128]
        for (_, _, value), (_, _, reward_value) in zip(score, reward, strict=True):
            assert value == pytest.approx((reward_value - random) / (oracle - random), rel=1e-5, abs=1e-6)

    # a mean run's scalar at each step is the mean over the seeds' event files; its bounds are the Student-t
    # interval of the same values (TensorBoard stores 32-bit floats: equal to their precision)
    t = stats.t.ppf(0.975, len(SEEDS) - 1)
    for agent in AGENTS:
        for tag in CALLBACK_TAGS:
            steps_and_values = [scalars(root / "tiny" / agent / f"seed{seed}", tag) for seed in SEEDS]
            assert all(steps == [0, 32, 64, 96, 128] for steps, _ in steps_and_values)
            values = np.array([v for _, v in steps_and_values])
            mean = values.mean(axis=0)
            half = t * values.std(axis=0, ddof=1) / math.sqrt(len(SEEDS))
            served = {
                name: server.get("/data/plugin/scalars/scalars", run=f"tiny/mean/{agent}", tag=name)
                for name in (tag, f"mean/{tag}", interval_tag("tiny", agent, tag), *(
                    f"{interval_tag('tiny', agent, tag)}/{bound}" for bound in ("lower", "upper")))
            }  # fmt: skip
            for name, reference in zip(served, (mean, mean, mean, mean - half, mean + half), strict=True):
                assert [point[1] for point in served[name]] == [0, 32, 64, 96, 128], name
                got = np.array([point[2] for point in served[name]])
                np.testing.assert_allclose(got, reference, rtol=1e-5, atol=1e-5, err_msg=f"{agent} {name}")

    # Custom Scalars: one margin chart per quantity with every agent's band first, then the means, one line per mean
    # run
    layout = server.get("/data/plugin/custom_scalars/layout")
    titles = [category["title"] for category in layout["category"]]
    assert titles[0] == "tiny: each agent's mean over seeds with its 95% t-interval (one band per agent)"
    assert titles[1] == "Agents' means over seeds (one line per agent)"
    assert titles[2:] == ["Policy entropy", "Exposure", "Reward"]  # every run's own charts
    charts = {category["title"]: category["chart"] for category in layout["category"]}
    means_chart = next(c for c in charts[titles[1]] if c["title"].startswith("marginal entropy H(p) [nats]"))
    (pattern,) = means_chart["multiline"]["tag"]
    for run in runs + means:  # the pattern the chart fetches, per run, as the dashboard asks for it
        answer = server.get("/data/plugin/custom_scalars/scalars", run=run, tag=pattern)
        assert list(answer["tag_to_events"]) == (["mean/entropy/marginal"] if run in means else []), run
    assert len(charts[titles[1]]) == len(CALLBACK_TAGS)  # one chart per scalar, none lost to a shared title
    margin = charts[titles[0]]
    # TensorBoard lists the mean runs first, in the experiment's order: Time Series gives them its palette's first
    # colours in that order (agent_color), and Custom Scalars its own palette by place in the list, which each band
    # chart's title names
    listed = server.get("/data/runs")
    assert listed[: len(AGENTS)] == [f"tiny/mean/{agent}" for agent in AGENTS]
    page = {agent: CUSTOM_SCALARS_COLOR_NAMES[listed.index(f"tiny/mean/{agent}") % 7] for agent in AGENTS}
    named = f" (A2C {page['a2c']}, DQN {page['dqn']}, PPO_MARGINAL {page['ppo_marginal']})"
    assert named == " (A2C orange, DQN blue, PPO_MARGINAL red)"
    # a band chart for each of a run's final values, titled as its own chart
    assert [chart["title"] for chart in margin] == [title + named for title in (
        "expected reward", "score (reward - random) / (oracle - random)", "marginal entropy H(p) [nats]",
        "mean per-state entropy H(pi(.|s)) [nats]", "effective number of actions exp H(p)", "Gini coefficient of p(a)",
        "long-tail share of p(a) (outside the most-exposed 20 % of items)",
        "aggregate diversity (distinct greedy recommendations)",
    )]  # fmt: skip
    for chart, tag in zip(margin, FINAL_TAGS, strict=True):
        bands = chart["margin"]["series"]
        assert bands == [
            {"value": value, "lower": f"{value}/lower", "upper": f"{value}/upper"}
            for value in (interval_tag("tiny", agent, tag) for agent in AGENTS)
        ]
        # the dashboard asks each run for a series' three tags as one regular expression, then draws a run that has
        # all three: only that agent's mean run has them
        for agent, series in zip(AGENTS, bands, strict=True):
            wanted = [series["value"], series["lower"], series["upper"]]
            pattern = "|".join(f"({re.escape(tag)})" for tag in wanted)
            for run in runs + means:
                answer = server.get("/data/plugin/custom_scalars/scalars", run=run, tag=pattern)
                has = [tag in answer["tag_to_events"] for tag in wanted]
                assert has == [run == f"tiny/mean/{agent}"] * 3, run

    # HParams: each seed run and each mean run is a session with its settings, and its final values as metrics; an
    # agent without an entropy term shows no coefficient
    experiment = server.post("/data/plugin/hparams/experiment", {"experimentName": ""})
    # three settings (the run's name gives the experiment, agent and seed): with at most five shown before the
    # metrics, the reward, the score and H(p) are in sight on a 1,600-pixel screen
    assert [info["name"] for info in experiment["hparamInfos"]] == ["algo", "coefficient", "regularizer"]
    assert [info["name"]["tag"] for info in experiment["metricInfos"]] == list(FINAL_TAGS)
    # short column names, so that the table fits a screen; what each is, in its description
    assert [info["displayName"] for info in experiment["metricInfos"]] == [
        "reward (expected)", "score", "marginal entropy H(p)", "per-state entropy", "effective actions", "Gini",
        "long-tail share", "distinct greedy items",
    ]  # fmt: skip
    assert all(len(info["description"]) > 30 for info in experiment["metricInfos"])
    groups = server.post(
        "/data/plugin/hparams/session_groups",
        {"experimentName": "", "allowedStatuses": SESSION_STATUSES, "colParams": [], "startIndex": 0, "sliceSize": 100},
    )
    sessions = {group["name"]: group for group in groups["sessionGroups"]}
    assert sorted(sessions) == sorted(runs + means)
    settings = {
        "a2c": {"algo": "a2c", "regularizer": "none"},  # SB3's default ent_coef 0: no term, no coefficient
        "dqn": {"algo": "dqn", "regularizer": "none"},
        "ppo_marginal": {"algo": "ppo", "regularizer": "marginal", "coefficient": 0.05},
    }
    for agent in AGENTS:
        for run in [f"tiny/{agent}/seed{seed}" for seed in SEEDS] + [f"tiny/mean/{agent}"]:
            session = sessions[run]
            assert session["hparams"] == settings[agent]
            assert session["sessions"][0]["status"] == "STATUS_SUCCESS"
            metrics = {value["name"]["tag"]: value for value in session["metricValues"]}
            assert set(metrics) == set(FINAL_TAGS)
            for tag, value in metrics.items():
                steps, values = scalars(root / run, tag)
                assert (value["trainingStep"], value["value"]) == (steps[-1], values[-1])  # the final value


def test_a_resumed_study_replaces_a_rerun_run_and_rewrites_the_means(study: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(study, out)
    tb = out / "tb" / "tiny"
    old_mean = {path.name for path in (tb / "mean" / "dqn").iterdir() if path.name != ORDER_FILE}
    (out / "tiny" / "runs" / "dqn_seed1.json").unlink()  # as if the study was interrupted before this run ended
    result = call_script("reproduce.py", str(study.parent / "tiny.yml"), "--seeds", "3", "--out", str(out), "--resume")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("resumed from an earlier run") == len(AGENTS) * len(SEEDS) - 1
    assert len(list((tb / "dqn" / "seed1").iterdir())) == 1  # one event file: the run trained again
    for seed in SEEDS:
        steps, values = scalars(tb / "dqn" / f"seed{seed}", "entropy/marginal")
        assert steps == [0, 32, 64, 96, 128]  # one complete curve, no partial one beside it
    new_mean = {path.name for path in (tb / "mean" / "dqn").iterdir() if path.name != ORDER_FILE}
    assert len(new_mean) == 1 and new_mean != old_mean  # written again, once (beside its order file)
    values = np.array([scalars(tb / "dqn" / f"seed{seed}", "exposure/gini")[1] for seed in SEEDS])
    np.testing.assert_allclose(scalars(tb / "mean" / "dqn", "mean/exposure/gini")[1], values.mean(axis=0), rtol=1e-5)


# --------------------------------------------------------------------------------------------------
# SB3's own logging at the evaluation cadence


def _event_points(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar written to the event file of ``folder``, repeats at one step included (EventAccumulator keeps
    one point per step)."""
    (path,) = folder.iterdir()
    points: dict[str, list[tuple[int, float]]] = {}
    for event in EventFileLoader(str(path)).Load():
        for value in event.summary.value:
            if value.HasField("simple_value"):
                points.setdefault(value.tag, []).append((event.step, value.simple_value))
            elif value.metadata.plugin_data.plugin_name == "scalars":  # SB3 writes scalars as tensors
                points.setdefault(value.tag, []).append((event.step, float(tensor_util.make_ndarray(value.tensor))))
    return points


@pytest.mark.parametrize("algo", ["dqn", "a2c"])
def test_sb3_dumps_at_the_evaluation_cadence_with_the_values_it_had(algo: str, tmp_path: Path) -> None:
    spec = RunSpec("Personalization/Behavior-v0", algo, seed=3, timesteps=640, net_arch=[16], env_kwargs=TASK_KWARGS,
                   eval_freq=128, log_figures=False)  # fmt: skip
    # SB3 dumping as often as its defaults make it (DQN: every 4 episodes, 8 dumps per step of 32 one-step users;
    # PPO's every rollout), against the evaluation cadence: every value dumped at a step is one it dumped there before
    default = {"dqn": 4, "a2c": 1}[algo]
    outcomes = {}
    for name, interval in (("default", default), ("evaluation", None)):
        model, env = build_model(spec)
        model.set_logger(tensorboard_logger(tmp_path / name))
        callback = EntropyCallback(eval_env=env, eval_freq=spec.eval_freq, seed=spec.seed, log_figures=False)
        interval = interval or evaluation_log_interval(model, spec.eval_freq)
        model.learn(spec.timesteps, callback=callback, log_interval=interval)
        outcomes[name] = (_event_points(tmp_path / name), callback.history, model)
    before, after = outcomes["default"][0], outcomes["evaluation"][0]
    sb3_tags = [tag for tag in before if tag.split("/")[0] in ("rollout", "train", "time")]
    assert sb3_tags and set(sb3_tags) <= set(after)
    n_evaluations = len(outcomes["evaluation"][1])
    for tag in sb3_tags:
        if tag.startswith("time/"):  # clock readings differ between any two runs
            continue
        # at most one dump per evaluation (one by SB3, one by the callback's evaluation), every value as before
        assert len(after[tag]) <= 2 * n_evaluations, tag
        assert set(after[tag]) <= set(before[tag]), tag
    # SB3's own dumps (each writes rollout/ep_rew_mean): DQN's default, one per 4 of the 32 one-step episodes of a step
    dumps = {name: len(points["rollout/ep_rew_mean"]) for name, points in (("before", before), ("after", after))}
    assert dumps["after"] <= n_evaluations
    assert dumps["before"] == {"dqn": 640 // 4, "a2c": 640 // 32}[algo]
    # logging changes no result: the same evaluations, the same parameters
    assert [row["entropy/marginal"] for row in outcomes["default"][1]] == [
        row["entropy/marginal"] for row in outcomes["evaluation"][1]
    ]
    parameters = [outcome[2].policy.parameters() for outcome in outcomes.values()]
    for first, second in zip(*parameters, strict=True):
        assert np.array_equal(first.detach().numpy(), second.detach().numpy())


def test_evaluation_log_interval() -> None:
    env_kwargs = TASK_KWARGS
    a2c, _ = build_model(RunSpec("Personalization/Behavior-v0", "a2c", 0, 1, net_arch=[8], env_kwargs=env_kwargs))
    dqn, _ = build_model(RunSpec("Personalization/Behavior-v0", "dqn", 0, 1, net_arch=[8], env_kwargs=env_kwargs))
    assert isinstance(a2c, A2C) and (a2c.n_steps, a2c.n_envs) == (1, 32)
    assert evaluation_log_interval(a2c, 100) == 4  # rollouts of 32 steps: one dump per 128 steps, never more often
    assert evaluation_log_interval(a2c, 32) == 1
    assert isinstance(dqn, DQN) and evaluation_log_interval(dqn, 100) == 100  # one-step episodes
    for bad in (0, -5, 2.5, True, "100"):
        with pytest.raises(ValueError, match="eval_freq must be an integer >= 1"):
            evaluation_log_interval(dqn, bad)


def test_train_writes_the_layout_and_replaces_a_run_trained_again(tmp_path: Path) -> None:
    spec = RunSpec("Personalization/Behavior-v0", "a2c", seed=1, timesteps=64, net_arch=[8], env_kwargs=TASK_KWARGS,
                   eval_freq=32, tensorboard_log=str(tmp_path), experiment="exp", agent="small")  # fmt: skip
    train(spec)
    _, callback = train(spec)
    folder = tmp_path / "exp" / "small" / "seed1"
    assert folder == run_folder(tmp_path, "exp", "small", 1)
    assert len(list(folder.iterdir())) == 1
    assert scalars(folder, "entropy/marginal")[0] == [0, 32, 64]
    events = EventAccumulator(str(folder))
    events.Reload()
    assert [image.step for image in events.Images("actions/distribution")] == [0, 32, 64]
    assert callback._figure is not None
    # without TensorBoard the picture, which only TensorBoard shows, is never drawn
    _, callback = train(RunSpec(**{**spec.__dict__, "tensorboard_log": None}))
    assert callback._figure is None and len(callback.history) == 3


def test_names_that_cannot_be_tensorboard_folders_are_refused(tmp_path: Path) -> None:
    for bad in ("", "a/b", "..", "a\\b"):
        with pytest.raises(ValueError, match="names a TensorBoard folder"):
            run_folder(tmp_path, bad, "a2c", 0)
        with pytest.raises(ValueError, match="names a TensorBoard folder"):
            run_folder(tmp_path, "exp", bad, 0)
    with pytest.raises(ValueError, match="'mean' is the folder of the mean runs"):
        run_folder(tmp_path, "exp", "mean", 0)
    experiment = tmp_path / "clash.yml"
    experiment.write_text(STUDY.replace("  a2c: {learning_rate: 1.0e-3}", "  mean: {algo: a2c}"))
    with pytest.raises(ValueError, match=r"agents: agent name 'mean' is the TensorBoard folder of the means"):
        load_experiment(str(experiment))


def test_hparams_callback_refuses_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="hparams must be a non-empty mapping"):
        HParamsCallback({})
    with pytest.raises(ValueError, match="hyperparameter lr must be a string, a finite number or a boolean"):
        HParamsCallback({"lr": float("nan")})
    with pytest.raises(ValueError, match="metrics must name at least one"):
        HParamsCallback({"agent": "a2c"}, metrics={})
    model, _ = build_model(RunSpec("Personalization/Behavior-v0", "a2c", 0, 1, net_arch=[8], env_kwargs=TASK_KWARGS))
    with pytest.raises(ValueError, match="the model logs no TensorBoard run"):
        model.learn(32, callback=HParamsCallback({"agent": "a2c"}))


# --------------------------------------------------------------------------------------------------
# The action-distribution picture


def test_the_distribution_picture_is_labelled_and_shows_the_bars() -> None:
    history = DownsampledHistory(capacity=4)
    history.append(0, np.array([0.25, 0.25, 0.25, 0.25]))
    history.append(100, np.array([0.0, 1.0, 0.0, 0.0]))
    current = np.array([0.0, 0.5, 0.25, 0.25])
    colors = action_colors(4)
    for total_steps in (None, 400):  # a time axis that follows the bars; one fixed for the whole run
        figure = DistributionFigure(4, total_steps)
        image = figure.render(history, current, step=100)
        assert image.shape == (400, 960, 3) and image.dtype == np.uint8

        def pixel(axes, x: float, y: float, picture: np.ndarray = image) -> np.ndarray:
            """The picture's pixel at data coordinates (x, y) of ``axes`` (matplotlib's y axis points up)."""
            column, row = axes.transData.transform((x, y))
            return picture[round(400 - row), round(column)]

        # the second evaluation (step 100) recommends item 1 to everyone: one block of its colour, bottom to top
        for y in (0.1, 0.5, 0.9):
            assert (pixel(figure.over_training, 100, y) == colors[1]).all()
        # the first evaluation stacks four equal shares: four colours, a quarter each
        assert {tuple(pixel(figure.over_training, 20, y)) for y in (0.125, 0.375, 0.625, 0.875)} == {
            tuple(c) for c in colors
        }
        assert figure.over_training.get_xlim() == ((0, 400) if total_steps else (-50, 150))
        # now, over the largest p(a) (0.5): item 1 to the top, items 2 and 3 to half, item 0 nothing
        assert (pixel(figure.now, 1, 0.95) == colors[1]).all() and (pixel(figure.now, 2, 0.45) == colors[2]).all()
        assert (pixel(figure.now, 2, 0.55) == 255).all() and (pixel(figure.now, 0, 0.1) == 255).all()
        titles = (figure.over_training.get_title(), figure.now_title.get_text())
        assert "each colour one item" in titles[0] and figure.over_training.get_xlabel() == "timesteps"
        entropy = -(current[1:] * np.log(current[1:])).sum()
        assert "at step 100" in titles[1] and "(largest 0.500)" in titles[1]
        assert f"H(p) = {entropy:.3f} nats" in titles[1]
        assert figure.now.get_xlabel() == "item (action 0 to 3)"
        # the right title is drawn, above the right panel
        title_box = figure.now_title.get_window_extent(figure.canvas.get_renderer())
        panel_box = figure.now.get_window_extent(figure.canvas.get_renderer())
        assert panel_box.y1 < title_box.y0 < title_box.y1 < 400
        rows = slice(round(400 - title_box.y1), round(400 - title_box.y0))
        assert (image[rows, round(title_box.x0) : round(title_box.x1)] < 128).any()  # dark text pixels
        history.append(200, np.array([1.0, 0.0, 0.0, 0.0]))
        again = figure.render(history, np.array([1.0, 0.0, 0.0, 0.0]), step=200)  # the same figure, drawn again
        assert (pixel(figure.now, 0, 0.5, again) == colors[0]).all() and "at step 200" in figure.now_title.get_text()
        # drawing only the bars on the fixed frame gives the very pixels of drawing the whole figure
        figure.canvas.draw()
        assert np.array_equal(np.asarray(figure.canvas.buffer_rgba())[..., :3], again)
        history = DownsampledHistory(capacity=4)
        history.append(0, np.array([0.25, 0.25, 0.25, 0.25]))
        history.append(100, np.array([0.0, 1.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match=r"current must be p\(a\) over 4 actions"):
        figure.render(history, np.ones(5) / 5)


def test_run_hparams_name_the_entropy_term_each_algorithm_has() -> None:
    """A2C and PPO have SB3's per-state entropy term (coefficient ent_coef), unless ent_coef is SB3's default 0;
    TRPO carries an ent_coef attribute but no such term, and DQN has none: none of those shows a coefficient."""
    for algo, hyperparameters, expected in (
        ("a2c", {"ent_coef": 0.02}, ("per_state", 0.02)),
        ("ppo", {"ent_coef": 1e-9}, ("per_state", 1e-9)),
        ("ppo", {}, ("none", None)),
        ("a2c", {"ent_coef": 0.0}, ("none", None)),
        ("trpo", {}, ("none", None)),
        ("dqn", {}, ("none", None)),
    ):
        spec = RunSpec("Personalization/Behavior-v0", algo, 4, 1, net_arch=[8], env_kwargs=TASK_KWARGS,
                       hyperparameters=hyperparameters, experiment="exp")  # fmt: skip
        model, _ = build_model(spec)
        coefficient = {} if expected[1] is None else {"coefficient": expected[1]}  # none without a term
        assert run_hparams(spec, model) == {"algo": algo, "regularizer": expected[0], **coefficient}


def test_the_dashboard_link_shows_the_means_in_one_colour_per_agent() -> None:
    url = urllib.parse.urlsplit(dashboard_url(port=6123))
    assert (url.scheme, url.netloc, url.fragment) == ("http", "localhost:6123", "timeseries")
    query = dict(urllib.parse.parse_qsl(url.query))
    assert set(query) == {"runColorGroup", "runFilter", "tagFilter"}
    runs = ["music/a2c/seed0", "music/a2c/seed12", "music/mean/a2c", "music/qrdqn/seed3", "music/mean/qrdqn"]
    shown = [run for run in runs if re.search(query["runFilter"], run)]
    assert shown == ["music/mean/a2c", "music/mean/qrdqn"]
    group = re.compile(query["runColorGroup"].removeprefix("regex:"))
    assert [group.search(run).group(1) for run in runs] == ["a2c", "a2c", "a2c", "qrdqn", "qrdqn"]
    tags = [*CALLBACK_TAGS, "study/overview", "actions/distribution", "train/loss", "eval/expected_reward_x"]
    assert sorted(tag for tag in tags if re.search(query["tagFilter"], tag)) == [
        "entropy/marginal", "eval/expected_reward", "eval/score", "exposure/gini", "study/overview"
    ]  # fmt: skip
    assert "runFilter" not in dashboard_url(means_only=False)


def test_an_agent_keeps_one_colour_across_the_experiments_of_a_root(tmp_path: Path, tensorboard_server) -> None:
    """Two experiments listing their agents in other orders, written to one root: each agent keeps the place the
    first experiment gave it (new ones take the next), TensorBoard's Time Series groups take its palette in that
    order, and the Custom Scalars titles name the colours that page gives each mean run."""
    from sb3_entropy.study.dashboard import write_mean_runs
    from sb3_entropy.tensorboard import AGENT_COLOR_GROUP, agent_positions

    def histories(agents: list[str]) -> dict:
        rows = [{"timesteps": step, "entropy/marginal": 1.0 + step / 100, "p": np.ones(3) / 3} for step in (0, 10)]
        return {(agent, seed): rows for agent in agents for seed in (0, 1)}

    first, second = ["ppo", "a2c", "dqn"], ["dqn", "qrdqn", "a2c"]
    assert agent_positions(tmp_path, first) == {"ppo": 0, "a2c": 1, "dqn": 2}
    write_mean_runs(tmp_path, "one", histories(first))
    positions = agent_positions(tmp_path, second)
    assert positions == {"dqn": 2, "qrdqn": 3, "a2c": 1}
    write_mean_runs(tmp_path, "two", histories(second), positions=positions)
    seed_run = SummaryWriter(str(tmp_path / "two" / "a2c" / "seed0"))  # a training run: started now
    seed_run.add_scalar("entropy/marginal", 1.0, 0)
    seed_run.close()

    server = tensorboard_server(tmp_path)
    server.wait_for(lambda s: len(s.get("/data/runs")) == 7)  # 6 mean runs and the seed run
    listed = server.get("/data/runs")
    groups = list(dict.fromkeys(re.search(AGENT_COLOR_GROUP, run).group(1) for run in listed))
    assert groups[:4] == ["ppo", "a2c", "dqn", "qrdqn"]  # the Time Series colour order: agent_color(position)
    layout = server.get("/data/plugin/custom_scalars/layout")
    titles = {category["title"]: category["chart"] for category in layout["category"]}
    for experiment, agents in (("one", first), ("two", second)):
        # the first experiment's titles too: the second's mean runs moved its runs on the page (one/mean/dqn from
        # third to fourth), and writing the second named their new colours again
        (chart,) = titles[f"{experiment}: each agent's mean over seeds with its 95% t-interval (one band per agent)"]
        page = {agent: CUSTOM_SCALARS_COLOR_NAMES[listed.index(f"{experiment}/mean/{agent}") % 7] for agent in agents}
        named = ", ".join(f"{agent_label(agent)} {page[agent]}" for agent in agents)
        assert chart["title"] == f"marginal entropy H(p) [nats] ({named})"
    assert listed.index("one/mean/dqn") == 3  # the case the test is about: a run that moved
