"""Regularised agent variants in experiment files and train.py, the frontier study's outputs, and the intervals."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import yaml
from conftest import EXPOSURE_TAGS, call_script
from scipy import stats
from stable_baselines3 import PPO
from test_report import made_result

from personalization_gym import MusicEnv
from sb3_entropy.policies import MarginalEntropyPolicy
from sb3_entropy.study import Agent, load_experiment, mean_interval, run_experiment, welch_interval
from sb3_entropy.study.analysis import Interval
from sb3_entropy.study.experiments import EXPERIMENTS_DIR

VARIANTS_EXPERIMENT = """
task: Personalization/Behavior-v0
task_kwargs: {n_actions: 6, state_dim: 4, n_eval: 200}
net_arch: [16]
steps: 320
eval_freq: 160
agents:
  ppo: {learning_rate: 1.0e-3}
  ppo_zero: {algo: ppo, regularizer: marginal, ent_coef: 0.0, learning_rate: 1.0e-3}
  ppo_marginal: {algo: ppo, regularizer: marginal, ent_coef: 1.0, learning_rate: 1.0e-3}
  ppo_mix: {algo: ppo, regularizer: l2, per_state_weight: 0.5, ent_coef: 0.3, learning_rate: 1.0e-3}
"""


def test_agent_variants_in_an_experiment_file(tmp_path: Path) -> None:
    path = tmp_path / "variants.yml"
    path.write_text(VARIANTS_EXPERIMENT)
    experiment = load_experiment(str(path))
    assert experiment.agents["ppo_mix"] == Agent("ppo", {"ent_coef": 0.3, "learning_rate": 1e-3}, "l2", 0.5)
    assert experiment.agents["ppo"].regularizer is None and experiment.agents["ppo_marginal"].coefficient == 1.0
    result = run_experiment(experiment, seeds=1, out_dir=tmp_path, report=lambda _: None)
    assert not result.failures
    final = {name: result.histories[(name, 0)][-1] for name in experiment.agents}
    # coefficient 0 through the whole pipeline: the stock agent's run, to the last digit
    for mine, stock in zip(result.histories[("ppo_zero", 0)], result.histories[("ppo", 0)], strict=True):
        np.testing.assert_array_equal(mine["p"], stock["p"])
    assert final["ppo_marginal"]["entropy/marginal"] != final["ppo"]["entropy/marginal"]
    rows = {row["agent"]: row for row in result.rows}
    assert (rows["ppo_mix"]["regularizer"], rows["ppo_mix"]["per_state_weight"], rows["ppo_mix"]["ent_coef"]) == (
        "l2",
        0.5,
        0.3,
    )


@pytest.mark.parametrize(
    ("agents", "message"),
    [
        ("  dqn_marginal: {algo: dqn, regularizer: marginal}", "agents.dqn_marginal: a regularizer applies to ['a2c', 'ppo'] (actor-critic agents with an entropy term), not dqn"),
        ("  ppo_x: {algo: ppo, regularizer: entropy}", "agents.ppo_x: unknown regularizer 'entropy'; valid: ['per_state', 'marginal', 'l2', 'mutual_info']"),
        ("  ppo_x: {algo: sac}", "agents.ppo_x: unknown algo 'sac'; valid: ['a2c', 'ppo', 'trpo', 'dqn', 'qrdqn']"),
        ("  ppo_x: {algo: ppo, regularizer: marginal, ent_cof: 0.1}", "agents.ppo_x: unknown hyperparameter(s) ['ent_cof'] for ppo"),
        ("  ppo x: {algo: ppo}", "agent name 'ppo x' must be letters, digits, '_', '-' or '.'"),
    ],
)  # fmt: skip
def test_bad_agent_variants_are_clear_errors(tmp_path: Path, agents: str, message: str) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(VARIANTS_EXPERIMENT.split("agents:")[0] + "agents:\n  ppo: {}\n" + agents + "\n")
    with pytest.raises(ValueError) as error:
        load_experiment(str(path))
    assert message in str(error.value)


FRONTIER = "frontier:\n  reference: dqn\n  agents: [ppo]\n  regularizers: {marginal: [0.1, 1.0]}\n"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("reference: dqn", "reference: qrdqn", "frontier: reference 'qrdqn' is not one of the agents ['ppo', 'dqn']"),
        ("agents: [ppo]", "agents: [dqn]", "frontier: cannot regularise 'dqn'; valid: unregularised agents ['ppo']"),
        ("{marginal: [0.1, 1.0]}", "{marginal: [1.0, 0.1]}", "regularizers.marginal must be an increasing list of coefficients > 0"),
        ("{marginal: [0.1, 1.0]}", "{marginal: [0, 1.0]}", "(0 is the unregularised agent itself), got [0, 1.0]"),
        ("{marginal: [0.1, 1.0]}", "{entropy: [0.1]}", "frontier: regularizers: unknown key(s) ['entropy']; valid: ['per_state', 'marginal', 'l2', 'mutual_info']"),
        ("  reference: dqn\n", "", "frontier: missing key(s) ['reference']"),
        ("  ppo: {}", "  ppo: {ent_coef: 0.01}", "agent ppo sets ent_coef=0.01, but it is the frontier's point at coefficient 0"),
    ],
)  # fmt: skip
def test_bad_frontier_sections_are_clear_errors(tmp_path: Path, old: str, new: str, message: str) -> None:
    path = tmp_path / "bad.yml"
    base = VARIANTS_EXPERIMENT.split("agents:")[0] + "agents:\n  ppo: {}\n  dqn: {}\n"
    path.write_text((base + FRONTIER).replace(old, new))
    with pytest.raises(ValueError) as error:
        load_experiment(str(path))
    assert message in str(error.value)
    clash = base + "  ppo_marginal_0.1: {algo: ppo}\n" + FRONTIER
    path.write_text(clash)
    with pytest.raises(ValueError, match=r"agents \['ppo_marginal_0.1'\] clash with the names of the frontier"):
        load_experiment(str(path))


def test_packaged_frontiers_have_the_papers_settings() -> None:
    for name, music_or_behavior in (("frontier_music", "music"), ("frontier_behavior", "behavior")):
        frontier, paper = load_experiment(name), load_experiment(music_or_behavior)
        assert (frontier.task, frontier.net_arch, frontier.steps) == (paper.task, paper.net_arch, paper.steps)
        # the paper's three agents as in the paper experiment (which adds TRPO and QR-DQN)
        assert {name: frontier.agents[name] for name in ("a2c", "ppo", "dqn")} == {
            name: paper.agents[name] for name in ("a2c", "ppo", "dqn")
        }
        assert frontier.frontier.reference == "dqn" and frontier.frontier.agents == ["a2c", "ppo"]
        assert set(frontier.frontier.regularizers) == {"per_state", "marginal", "l2", "mutual_info"}
        variant = frontier.agents["ppo_marginal_0.2"]
        assert variant == Agent("ppo", {"learning_rate": 1e-3, "ent_coef": 0.2}, "marginal")
        assert len(frontier.agents) == 3 + 2 * sum(len(c) for c in frontier.frontier.regularizers.values())


def test_train_script_trains_a_regularised_variant(tmp_path: Path) -> None:
    result = call_script(
        "train.py", "Personalization/Behavior-v0", "--algo", "ppo", "--timesteps", "64", "--net-arch", "16",
        "--n-eval", "100", "--regularizer", "mutual_info", "--ent-coef", "0.3", "--per-state-weight", "0.25",
        "--save-dir", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    model = PPO.load(tmp_path / "ppo_seed0.zip")
    assert type(model.policy) is MarginalEntropyPolicy and model.ent_coef == 0.3
    assert (model.policy.regularizer, model.policy.per_state_weight) == ("mutual_info", 0.25)
    header = result.stdout.split("(oracle - random)\n")[1].splitlines()[0]
    assert header.split() == [
        "agent",
        "seed",
        "reward",
        "(expected)",
        "score",
        "marginal",
        "entropy",
        "H(p)",
        "per-state",
        "entropy",
        "effective",
        "actions",
        "Gini",
        "long-tail",
        "share",
        "distinct",
        "greedy",
        "items",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algo", "ppo", "dqn", "--regularizer", "marginal"], "a regularizer applies to ['a2c', 'ppo'] (actor-critic agents with an entropy term), not dqn"),
        (["--regularizer", "entropy"], "argument --regularizer: invalid choice: 'entropy' (choose from"),
        (["--per-state-weight", "0.5"], "--per-state-weight mixes a per-state term into --regularizer: give one"),
        (["--regularizer", "per_state", "--per-state-weight", "0.5"], "with regularizer='per_state' scale the term with ent_coef instead"),
    ],
)  # fmt: skip
def test_train_script_rejects_bad_regularizer_options(args: list[str], message: str) -> None:
    result = call_script("train.py", "Personalization/Behavior-v0", *args)
    assert result.returncode == 2
    assert message in result.stderr


# --------------------------------------------------------------------------------------------------
# The frontier study, quick


def student_t_interval_of_two(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95 % t-interval of 2 values: with 1 degree of freedom t is Cauchy, t_0.975 = tan(0.475 pi)."""
    mean = (values[0] + values[1]) / 2
    half = math.tan(0.475 * math.pi) * abs(values[0] - values[1]) / 2  # s / sqrt(2) = |a - b| / 2
    return mean, mean - half, mean + half


def small_frontier_music(folder: Path) -> Path:
    """The packaged frontier_music with one or two coefficients per regularizer, a small network and a quick
    section of 640 steps: 26 runs of every kind the packaged grid has, instead of its 86 of 2,000 steps. A2C and
    PPO learn at 1e-2 so that, here, the reaching table has all three kinds of row: an unregularised agent already
    as diverse as DQN, a smallest coefficient, and "not reached"."""
    settings = yaml.safe_load((EXPERIMENTS_DIR / "frontier_music.yml").read_text())
    settings["net_arch"] = [32]
    for agent in ("a2c", "ppo"):
        settings["agents"][agent]["learning_rate"] = 1.0e-2
    settings["frontier"]["regularizers"] = {
        "per_state": [0.1],
        "marginal": [0.1, 1.0],
        "l2": [1.0],
        "mutual_info": [0.3],
    }
    settings["quick"] = {"steps": 640, "eval_freq": 320, "n_eval": 1000}
    path = folder / "frontier_music.yml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


def test_the_quick_frontier_outputs_equal_a_recomputation_from_results_csv(data_root: Path, tmp_path: Path) -> None:
    path = small_frontier_music(tmp_path)
    result = call_script("reproduce.py", str(path), "--quick", "--seeds", "2", "--workers", "1", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "frontier_music"
    with open(folder / "results.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    last = max(int(row["timesteps"]) for row in rows)
    final: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        if int(row["timesteps"]) == last:
            for key in ("eval/expected_reward", "entropy/marginal", "entropy/per_state", "actions/effective_number",
                        *EXPOSURE_TAGS):  # fmt: skip
                final.setdefault(row["agent"], {}).setdefault(key, []).append(float(row[key]))
    experiment = load_experiment(str(path))
    assert (
        set(final) == set(experiment.agents)
        and len(experiment.agents) == 3 + 2 * 5
        and all(len(v["entropy/marginal"]) == 2 for v in final.values())
    )

    with open(folder / "frontier.csv", newline="") as stream:
        points = {row["agent"]: row for row in csv.DictReader(stream)}
    assert set(points) == set(experiment.agents)
    report = (tmp_path / "report.md").read_text()
    expected = MusicEnv(n_eval=experiment.quick["n_eval"]).eval_set().expected
    random, oracle = expected.mean(), expected.max(axis=1).mean()  # the baselines, computed independently
    frontier_table = report.split("### Reaching DQN's marginal entropy")[0]  # the reaching table's rows start alike
    table = {
        tuple(line.split(" | ")[:3]): line
        for line in frontier_table.splitlines()
        if line.startswith("| ") and "[" in line
    }
    for agent, values in final.items():
        spec = experiment.agents[agent]
        row_key = (f"| {spec.algo.upper()}", spec.regularizer or "-", f"{spec.coefficient:g}")
        cells = []
        # every interval is cut to what its quantity can be (50 tracks; no reward above the oracle's, no score above 1)
        for key, bounds in (
            ("eval/expected_reward", (-np.inf, oracle)),
            ("eval/score", (-np.inf, 1.0)),
            ("entropy/marginal", (0, np.log(50))),
            ("entropy/per_state", (0, np.log(50))),
            ("actions/effective_number", (1, 50)),
            ("exposure/gini", (0, 49 / 50)),
            ("exposure/long_tail_share", (0, 1)),
            ("exposure/aggregate_diversity", (1, 50)),
        ):
            seeds = np.array(values["eval/expected_reward" if key == "eval/score" else key])
            if key == "eval/score":  # each seed's (reward - random) / (oracle - random)
                seeds = (seeds - random) / (oracle - random)
            mean, low, high = student_t_interval_of_two(seeds)
            low, high = max(low, bounds[0]), min(high, bounds[1])
            written = [float(points[agent][f"{key}_{part}"]) for part in ("mean", "low", "high")]
            np.testing.assert_allclose(written, [mean, low, high], rtol=1e-9, atol=1e-12)
            cells.append(f"{mean:.3f} [{low:.3f}, {high:.3f}]")
        assert table[row_key] == f"{' | '.join(row_key)} | " + " | ".join(cells) + " |"

    # the reaching table: the first coefficient, per agent and regularizer, whose mean H(p) is DQN's or more
    reference = np.mean(final["dqn"]["entropy/marginal"])
    reach_lines = report.split("### Reaching DQN's marginal entropy")[1]
    for base in ("a2c", "ppo"):
        for regularizer, coefficients in experiment.frontier.regularizers.items():
            names = [base] + [f"{base}_{regularizer}_{c:g}" for c in coefficients]
            first = next((n for n in names if np.mean(final[n]["entropy/marginal"]) >= reference), None)
            if first == base:
                assert f"| {base.upper()} | any | 0 (unregularized) |" in reach_lines
            elif first is None:
                assert f"| {base.upper()} | {regularizer} | not reached" in reach_lines
            else:
                line = next(x for x in reach_lines.splitlines() if x.startswith(f"| {base.upper()} | {regularizer} | "))
                welch = stats.ttest_ind(
                    final[first]["eval/expected_reward"], final["dqn"]["eval/expected_reward"], equal_var=False
                )
                low, high = welch.confidence_interval(0.95)
                difference = np.mean(final[first]["eval/expected_reward"]) - np.mean(
                    final["dqn"]["eval/expected_reward"]
                )
                assert line.split(" | ")[2] == f"{experiment.agents[first].coefficient:g}"
                assert line.split(" | ")[6] == f"{difference:+.3f} [{low:+.3f}, {high:+.3f}]"
    assert "Quick run: the agents are far from converged, so no verdict is drawn" in report
    assert "random policy scores" in report and "the oracle (the best action for every user)" in report
    assert f"| random policy | - | - | {random:.3f} | 0.000 | 3.912 | 3.912 | 50.000 |" in report
    # Music-v0's rewards are -1/0/+1, so most users have several best tracks: the oracle splits evenly among them
    oracle_p, tied = np.zeros(expected.shape[1]), 0
    for user in expected:
        best = np.flatnonzero(user == user.max())
        oracle_p[best] += 1 / len(best) / len(expected)
        tied += len(best) > 1
    assert (
        f"| oracle | - | - | {oracle:.3f} | 1.000 | {stats.entropy(oracle_p):.3f} | - | "
        f"{np.exp(stats.entropy(oracle_p)):.3f} |" in report
    )
    assert f"tie for best. {100 * tied / len(expected):.1f} % of users have such ties, and an oracle that" in report

    image = matplotlib.image.imread(folder / "frontier.png")
    assert image.shape[0] > 800 and image.shape[1] > 1000
    for name in ("reward.png", "entropy.png", "distribution_a2c.png", "distribution_ppo.png", "distribution_dqn.png"):
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------------------------------
# Intervals


@pytest.mark.parametrize("n", [3, 5])
def test_the_intervals_cover_the_truth_95_percent_of_the_time(n: int) -> None:
    rng = np.random.default_rng(n)
    trials = 4000
    samples = rng.normal(loc=1.0, scale=2.0, size=(trials, n))
    others = rng.normal(loc=0.5, scale=0.5, size=(trials, n))
    mean_hits = sum(interval.low <= 1.0 <= interval.high for interval in map(mean_interval, samples))
    welch_hits = sum(
        interval.low <= 0.5 <= interval.high
        for interval in (welch_interval(a, b) for a, b in zip(samples, others, strict=True))
    )
    assert abs(mean_hits / trials - 0.95) < 0.015, mean_hits / trials
    assert abs(welch_hits / trials - 0.95) < 0.015, welch_hits / trials


def test_intervals_of_one_seed_and_of_constant_values() -> None:
    single = mean_interval(np.array([0.7]))
    assert single.estimate == 0.7 and math.isnan(single.low) and str(single) == "0.700"
    constant = welch_interval(np.array([2.0, 2.0, 2.0]), np.array([1.5, 1.5, 1.5]))
    assert (constant.estimate, constant.low, constant.high) == (0.5, 0.5, 0.5)
    assert welch_interval(np.array([1.0, 2.0, 4.0]), np.array([0.0, 1.0])).signed.startswith("+1.833 [")


FRONTIER_STUDY = (
    "task: Personalization/Behavior-v0\nnet_arch: [16]\nsteps: 1000\neval_freq: 500\n"
    "agents:\n  dqn: {learning_rate: 1.0e-3}\n  ppo: {learning_rate: 1.0e-3}\n"
    "frontier:\n  reference: dqn\n  agents: [ppo]\n  regularizers: {l2: [0.5], marginal: [0.1, 1.0]}\n"
)


def frontier_result(tmp_path: Path, finals: dict[str, list[tuple[float, float]]]):
    """A frontier study whose agents ended at the given (reward, marginal entropy) per seed."""
    result = made_result(tmp_path, finals)  # the rows of these agents, in a study of other agents
    path = tmp_path / "frontier.yml"
    path.write_text(FRONTIER_STUDY)
    result.experiment = load_experiment(str(path))
    return result


def two_seeds(reward: float, entropy: float) -> list[tuple[float, float]]:
    return [(reward, entropy - 0.1), (reward + 0.01, entropy + 0.1)]


def test_the_frontier_points_curves_and_reaches_field_by_field(tmp_path: Path) -> None:
    """Every point, curve and reach of a frontier, against values written out: a variant at exactly the reference's
    mean H(p) reaches it (>=); a curve that does not reach is reported and the next curve still judged."""
    from sb3_entropy.study.analysis import curves, frontier_points, reaching

    finals = {"dqn": two_seeds(0.8, 3.0), "ppo": two_seeds(0.8, 1.0), "ppo_l2_0.5": two_seeds(0.75, 2.0),
              "ppo_marginal_0.1": two_seeds(0.7, 3.0), "ppo_marginal_1": two_seeds(0.6, 3.5)}  # fmt: skip
    result = frontier_result(tmp_path, finals)
    points = frontier_points(result)
    assert [(p.agent, p.base, p.regularizer, p.coefficient) for p in points] == [
        ("dqn", "dqn", None, 0.0), ("ppo", "ppo", None, 0.0), ("ppo_l2_0.5", "ppo", "l2", 0.5),
        ("ppo_marginal_0.1", "ppo", "marginal", 0.1), ("ppo_marginal_1", "ppo", "marginal", 1.0),
    ]  # fmt: skip
    assert {key: [p.agent for p in curve] for key, curve in curves(points).items()} == {
        ("ppo", "l2"): ["ppo", "ppo_l2_0.5"], ("ppo", "marginal"): ["ppo", "ppo_marginal_0.1", "ppo_marginal_1"]
    }  # fmt: skip
    l2, marginal = reaching(result, points)
    assert (l2.base, l2.regularizer, l2.point, l2.highest.agent) == ("ppo", "l2", None, "ppo_l2_0.5")
    assert (l2.entropy_vs_reference, l2.reward_vs_reference, l2.reward_vs_unregularised) == (None, None, None)
    assert (marginal.base, marginal.regularizer, marginal.point.agent) == ("ppo", "marginal", "ppo_marginal_0.1")
    assert marginal.highest.agent == "ppo_marginal_1"

    def welch(agent: str, other: str, column: int) -> Interval:
        return welch_interval(np.array([row[column] for row in finals[agent]]),
                              np.array([row[column] for row in finals[other]]))  # fmt: skip

    assert marginal.entropy_vs_reference == welch("ppo_marginal_0.1", "dqn", 1)
    assert marginal.reward_vs_reference == welch("ppo_marginal_0.1", "dqn", 0)
    assert marginal.reward_vs_unregularised == welch("ppo_marginal_0.1", "ppo", 0)


def test_unfinished_agents_are_no_points_and_no_reference_means_no_reach(tmp_path: Path) -> None:
    """An agent without a finished run is no point; a curve whose unregularised agent did not finish starts at its
    first variant and compares no reward with it; without the reference nothing is reached."""
    from sb3_entropy.study.analysis import curves, frontier_points, reaching

    partial = frontier_result(tmp_path, {"dqn": two_seeds(0.8, 3.0), "ppo_marginal_1": two_seeds(0.6, 3.5)})
    points = frontier_points(partial)
    assert [p.agent for p in points] == ["dqn", "ppo_marginal_1"]
    assert {key: [p.agent for p in curve] for key, curve in curves(points).items()} == {
        ("ppo", "marginal"): ["ppo_marginal_1"]
    }
    (reach,) = reaching(partial, points)
    assert reach.point.agent == "ppo_marginal_1" and reach.reward_vs_unregularised is None
    no_reference = frontier_result(tmp_path, {"ppo": two_seeds(0.8, 1.0), "ppo_marginal_1": two_seeds(0.6, 2.0)})
    assert reaching(no_reference, frontier_points(no_reference)) == []
    with pytest.raises(ValueError) as error:
        frontier_points(made_result(tmp_path, {}))
    assert str(error.value) == "experiment five has no frontier section"
