"""scripts/train.py and scripts/reproduce.py end to end, their bad inputs, and the paper's headline on Music-v0."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch
from conftest import ACTION_TAGS, ENTROPY_TAGS, EXPOSURE_TAGS, PROJECT_ROOT, REWARD_TAGS, call_script, run_script
from scipy import stats
from stable_baselines3 import A2C
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from personalization_gym import DATA_ENV_VAR, BehaviorEnv
from sb3_entropy.study import (
    Agent,
    available_experiments,
    execution,
    load_experiment,
    run_experiment,
    write_report,
)
from sb3_entropy.study.cli.parsing import parse_hp
from sb3_entropy.study.runs import RunSpec, build_model, train
from sb3_entropy.tensorboard import dashboard_url


def three(value: float) -> str:
    """Three decimals, as tables print them: no minus sign on a value that rounds to 0."""
    return f"{value:.3f}".replace("-0.000", "0.000")


TINY_EXPERIMENT = """
task: Personalization/Behavior-v0
task_kwargs: {n_actions: 6, state_dim: 4, n_eval: 200}
net_arch: [16]
steps: 96
eval_freq: 32
agents:
  a2c: {learning_rate: 1.0e-3}
  dqn: {learning_rate: 1.0e-3}
paper:
  a2c: {reward: 0.5, entropy: 1.0}
"""


def test_train_script_end_to_end(tmp_path: Path) -> None:
    hp_file = tmp_path / "hp.yml"
    hp_file.write_text("a2c: {gamma: 0.9}\ndqn: {target_update_interval: 50}\n")
    result = run_script(
        "train.py", "Personalization/Behavior-v0", "--algo", "a2c", "dqn", "--timesteps", "64", "--seeds", "0", "1",
        "--net-arch", "16,16", "--lr", "1e-3", "--hp", "max_grad_norm=0.4", "--hp-file", str(hp_file),
        "--eval-freq", "32", "--n-eval", "100", "--tensorboard-log", str(tmp_path / "tb"), "--save-dir", str(tmp_path / "models"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("Personalization/Behavior-v0, 64 steps")[1].splitlines()[2:]
    table, baselines = lines[:4], lines[4:]
    assert [line.split()[:2] for line in table] == [["a2c", "0"], ["a2c", "1"], ["dqn", "0"], ["dqn", "1"]]
    # the random policy's and the oracle's reward on the same evaluation set (the first 100 users), and the scores
    expected = BehaviorEnv(n_eval=100).eval_set().expected
    random, oracle = expected.mean(), expected.max(axis=1).mean()
    oracle_counts = np.bincount(expected.argmax(axis=1), minlength=100)  # Behavior-v0's rewards never tie
    oracle_entropy = stats.entropy(oracle_counts)  # scipy normalises the counts; natural log
    # the oracle's exposure, by hand: Gini as the mean absolute difference over pairs of items over twice the mean;
    # the long tail is every item outside the 20 most recommended of 100
    p = oracle_counts / 100
    oracle_gini = np.abs(p[:, None] - p[None, :]).sum() / (2 * 100 * p.sum())
    oracle_tail = np.sort(p)[::-1][20:].sum()
    assert [line.split() for line in baselines] == [
        ["random", "policy", "-", three(random), "0.000", f"{np.log(100):.3f}", f"{np.log(100):.3f}", "100.000",
         "0.000", "0.800", "-"],
        ["oracle", "-", three(oracle), "1.000", f"{oracle_entropy:.3f}", "-", f"{np.exp(oracle_entropy):.3f}",
         f"{oracle_gini:.3f}", f"{oracle_tail:.3f}", f"{np.count_nonzero(oracle_counts):.3f}"],
    ]  # fmt: skip
    for line in table:
        reward, score, entropy, per_state, effective, gini, tail, distinct = map(float, line.split()[2:])
        assert 0 <= gini <= 0.99 and 0 <= tail <= 0.8 + 1e-3 and distinct in range(1, 101)
        assert (
            -1 <= reward <= 1 and 0 < entropy <= np.log(100) and effective == pytest.approx(np.exp(entropy), rel=1e-3)
        )
        assert score == pytest.approx((reward - random) / (oracle - random), abs=2e-3)
        assert 0 <= per_state <= entropy + 1e-4  # the mean per-state entropy never exceeds the marginal's (concavity)
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [
        "a2c_seed0.zip", "a2c_seed1.zip", "dqn_seed0.zip", "dqn_seed1.zip"
    ]  # fmt: skip
    # TensorBoard: <root>/<experiment (the task's name)>/<agent>/seed<N>, and each agent's mean over the seeds
    tb = tmp_path / "tb" / "Behavior-v0"
    assert sorted(str(p.relative_to(tb)) for p in tb.glob("*/*")) == [
        "a2c/seed0", "a2c/seed1", "dqn/seed0", "dqn/seed1", "mean/a2c", "mean/dqn"
    ]  # fmt: skip
    model = A2C.load(tmp_path / "models" / "a2c_seed0.zip")
    assert model.gamma == 0.9 and model.max_grad_norm == 0.4 and model.learning_rate == 1e-3
    assert (model.n_steps, model.n_envs) == (1, 32)  # the paper's n_steps=32, collected as 1 step of 32 envs
    literal = call_script(
        "train.py", "Personalization/Behavior-v0", "--algo", "a2c", "--timesteps", "64", "--literal",
        "--net-arch", "16", "--save-dir", str(tmp_path / "literal"),
    )  # fmt: skip
    assert literal.returncode == 0, literal.stderr
    model = A2C.load(tmp_path / "literal" / "a2c_seed0.zip")
    assert (model.n_steps, model.n_envs) == (32, 1)


def test_reproduce_script_end_to_end(tmp_path: Path) -> None:
    experiment = tmp_path / "tiny.yml"
    experiment.write_text(TINY_EXPERIMENT)
    result = run_script("reproduce.py", str(experiment), "--seeds", "2", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "out" / "tiny"
    with open(folder / "results.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == [
        "experiment", "agent", "algo", "regularizer", "per_state_weight", "ent_coef", "seed", "timesteps",
        *ENTROPY_TAGS, *ACTION_TAGS, *EXPOSURE_TAGS, *REWARD_TAGS,
    ]  # fmt: skip
    assert {(row["algo"], row["regularizer"], row["ent_coef"]) for row in rows} == {
        ("a2c", "", "0.0"),
        ("dqn", "", "0.0"),
    }
    runs = {(row["agent"], row["seed"]) for row in rows}
    assert runs == {("a2c", "0"), ("a2c", "1"), ("dqn", "0"), ("dqn", "1")}
    assert [int(row["timesteps"]) for row in rows if row["agent"] == "a2c" and row["seed"] == "0"] == [0, 32, 64, 96]
    for name in ("overview.png", "reward.png", "entropy.png", "distribution_a2c.png", "distribution_dqn.png"):
        data = (folder / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        image = matplotlib.image.imread(folder / name)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    tb = tmp_path / "out" / "tb" / "tiny"
    assert sorted(str(p.relative_to(tb)) for p in tb.glob("*/*") if p.is_dir()) == [
        "a2c/seed0", "a2c/seed1", "dqn/seed0", "dqn/seed1", "mean/a2c", "mean/dqn"
    ]  # fmt: skip
    assert len(list((tb / "mean").glob("events.out.tfevents.*"))) == 1  # the overview picture's run
    # the printed summary ends with where the figures are and the command and link that open the dashboard
    assert result.stdout.rstrip().splitlines()[-2:] == [
        f"Figures: {tmp_path / 'out' / 'tiny' / 'overview.png'}.",
        f"The dashboard: tensorboard --logdir {tmp_path / 'out' / 'tb'}, then open {dashboard_url()} (each agent's "
        "mean over seeds, one colour per agent: A2C slate, DQN cyan; clear the run filter to see every seed)",
    ]

    # the report opens with the verdict, then the table; every number is recomputed from results.csv
    report = (tmp_path / "out" / "report.md").read_text()
    sections = [line for line in report.splitlines() if line.startswith("## ")]
    assert sections == ["## Verdict", "## tiny (Personalization/Behavior-v0)"]
    assert "earlier call" not in report  # a fresh study kept no runs from an earlier one

    def final(agent: str, key: str) -> np.ndarray:
        return np.array([float(row[key]) for row in rows if row["agent"] == agent and row["timesteps"] == "96"])

    # the baselines on the same evaluation set, computed independently
    expected = BehaviorEnv(n_actions=6, state_dim=4, n_eval=200).eval_set().expected
    random, oracle = expected.mean(), expected.max(axis=1).mean()
    # 6 items: the short head is the top ceil(1.2) = 2, so uniform exposure leaves 4/6 to the long tail
    assert (
        f"| random policy | - | {three(random)} | 0.000 | {np.log(6):.3f} | {np.log(6):.3f} | 6.000 | 0.000 | "
        f"{4 / 6:.3f} | - | - | - |" in report
    )
    oracle_counts = np.bincount(expected.argmax(axis=1), minlength=6)
    oracle_entropy = stats.entropy(oracle_counts)
    p = oracle_counts / oracle_counts.sum()
    oracle_gini = np.abs(p[:, None] - p[None, :]).sum() / (2 * 6 * p.sum())
    oracle_exposure = f"{oracle_gini:.3f} | {np.sort(p)[:4].sum():.3f} | {np.count_nonzero(oracle_counts):.3f}"
    assert (
        f"| oracle | - | {three(oracle)} | 1.000 | {oracle_entropy:.3f} | - | {np.exp(oracle_entropy):.3f} | "
        f"{oracle_exposure} | - | - |" in report
    )
    # no ties in Behavior-v0's rewards: the oracle's H(p) is unique
    assert "oracle: the best action for every user; its H(p) is the diversity across users that the task" in report
    verdict = report.split("## Verdict\n\n")[1].splitlines()[0]
    assert verdict.startswith("- **tiny** (Personalization/Behavior-v0, 2 seeds, 96 steps): entropy gap **")
    assert (
        "| agent | family | reward (expected) | score | marginal entropy H(p) | per-state entropy | effective actions | "
        "Gini | long-tail share | distinct greedy items | paper reward | paper entropy |" in report
    )
    for agent, family in (("a2c", "policy optimization"), ("dqn", "Q-learning")):
        reward, entropy = final(agent, "eval/expected_reward"), final(agent, "entropy/marginal")
        cells, lows = [], []
        # each t-interval cut to the possible values: a score of at most 1 (the oracle), H(p) in [0, log 6]
        for values, lowest, highest in (
            (reward, -np.inf, oracle),
            ((reward - random) / (oracle - random), -np.inf, 1.0),
            (entropy, 0.0, np.log(6)),
        ):
            half = stats.t.ppf(0.975, 1) * values.std(ddof=1) / np.sqrt(2)
            low, high = max(values.mean() - half, lowest), min(values.mean() + half, highest)
            cells.append(f"{values.mean():.3f} [{low:.3f}, {high:.3f}]")
            lows.append(low)
        flag = " (not above random)" if lows[0] <= random else ""  # 96 steps: neither is expected to have learned
        row = next(line for line in report.splitlines() if line.startswith(f"| {agent.upper()}{flag} | {family} |"))
        assert row.startswith(f"| {agent.upper()}{flag} | {family} | {cells[0]} | {cells[1]} | {cells[2]} | ")
        # the exposure columns, from results.csv, each interval cut to what the measure can be
        exposure = []
        for key, lowest, highest in (("exposure/gini", 0, 5 / 6), ("exposure/long_tail_share", 0, 1),
                                     ("exposure/aggregate_diversity", 1, 6)):  # fmt: skip
            values = final(agent, key)
            half = stats.t.ppf(0.975, 1) * values.std(ddof=1) / np.sqrt(2)
            low, high = max(values.mean() - half, lowest), min(values.mean() + half, highest)
            exposure.append(f"{values.mean():.3f} [{low:.3f}, {high:.3f}]")
        assert row.split(" | ")[7:10] == exposure
        score = (reward.mean() - random) / (oracle - random)
        assert (
            f"{agent.upper()}{flag} {reward.mean():.3f} reward (score {score:.2f}), {entropy.mean():.3f} nats"
            in verdict
        )
    assert "(paper 0.500, 1.000)" in verdict
    assert "mean [95 % Student-t interval over seeds, cut to the values it can take" in report
    assert f"Entropy gap: {verdict.split('Gap: ')[1]}" in report


def test_packaged_experiments_load_with_the_papers_settings() -> None:
    assert available_experiments() == [
        "ads", "behavior", "cifar10", "digits", "frontier_behavior", "frontier_movielens", "frontier_music", "mnist",
        "movielens", "music", "sample",
    ]  # fmt: skip
    digits, mnist = load_experiment("digits"), load_experiment("mnist")
    assert (digits.task, digits.steps, digits.eval_freq) == ("Personalization/Digits-v0", 50_000, 250)
    assert (digits.net_arch, digits.agents) == (mnist.net_arch, mnist.agents)  # mnist's settings, other data
    music = load_experiment("music")
    assert (music.task, music.net_arch, music.steps, music.eval_freq) == (
        "Personalization/Music-v0",
        [256, 256],
        20_000,
        100,
    )
    assert music.agents == {
        "a2c": Agent("a2c", {"learning_rate": 1e-3}),
        "dqn": Agent("dqn", {"learning_rate": 1e-3}),
        "ppo": Agent("ppo", {"learning_rate": 1e-3}),
        "trpo": Agent("trpo", {"learning_rate": 1e-3}),
        "qrdqn": Agent("qrdqn", {"learning_rate": 1e-3}),
    }
    assert music.paper["dqn"] == {"reward": 0.906, "entropy": 3.389}
    assert load_experiment("sample").agents.keys() == {"a2c", "dqn", "trpo", "qrdqn"}
    assert load_experiment("cifar10").agents["qrdqn"] == Agent("qrdqn", {"learning_rate": 5e-6})
    # one more algorithm per family in every paper experiment; short studies default to 5 seeds
    for name in ("ads", "behavior", "cifar10", "mnist", "music", "sample"):
        experiment = load_experiment(name)
        assert {"trpo", "qrdqn"} <= experiment.agents.keys(), name
        assert experiment.seeds == (5 if name in ("music", "mnist") else 3), name
    assert load_experiment("frontier_music").seeds == 3
    movielens, frontier = load_experiment("movielens"), load_experiment("frontier_movielens")
    assert (frontier.task, frontier.task_kwargs, frontier.net_arch, frontier.steps) == (
        movielens.task, movielens.task_kwargs, movielens.net_arch, movielens.steps,
    )  # fmt: skip


def test_seeds_in_an_experiment_file(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yml"
    path.write_text(TINY_EXPERIMENT + "seeds: 4\n")
    assert load_experiment(str(path)).seeds == 4
    for bad in ("1", "two", "true"):
        path.write_text(TINY_EXPERIMENT + f"seeds: {bad}\n")
        with pytest.raises(ValueError, match=r"seeds must be an integer >= 2 \(an interval needs two\), got"):
            load_experiment(str(path))


def test_missing_data_is_reported_and_fails_unless_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV_VAR, "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    args = ("mnist", "--quick", "--no-download", "--seeds", "1", "--out", str(tmp_path / "out"))
    failed = call_script("reproduce.py", *args)
    assert failed.returncode == 1
    assert "data missing for: mnist (exit status 1)" in failed.stdout
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## mnist (Personalization/MNIST-v0)\n\nNot run: its data is missing." in report
    skipped = call_script("reproduce.py", *args, "--skip-missing")
    assert skipped.returncode == 0 and "data missing for: mnist" in skipped.stdout


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        ("reproduce.py", ["music", "--out", ""], "--out is empty: give a folder"),
        ("reproduce.py", ["music", "--workers", "0"], "--workers must be an integer >= 1, got 0"),
        ("reproduce.py", ["music", "--hyperparams", "/no/such.yml"], "--hyperparams: experiment file /no/such.yml not found"),
        ("reproduce.py", ["music", "--out", str(PROJECT_ROOT / "README.md")], f"--out {PROJECT_ROOT / 'README.md'} is a file, not a folder"),
        ("reproduce.py", ["music", "--hyperparams", "tuned", "x.yml"], "--hyperparams takes either the word tuned (the packaged files) or tuned files, not both: got ['tuned', 'x.yml']"),
        ("reproduce.py", ["all", "music"], "all runs every experiment: give it alone, or name the experiments, got ['all', 'music']"),
        ("reproduce.py", ["music", "--agents", "a2c", "a2c"], "--agents names ['a2c'] more than once: give each once"),
        ("reproduce.py", ["music", "behavior", "music"], "experiments names ['music'] more than once: give each once"),
        ("reproduce.py", ["musik"], "unknown experiment 'musik'; valid: ['ads', 'behavior', 'cifar10', 'digits', 'frontier_behavior', 'frontier_movielens', 'frontier_music', 'mnist', 'movielens', 'music', 'sample']"),
        ("reproduce.py", ["sample", "--agents", "a2c", "ppo"], "--agents: experiment sample has no agent ['ppo']; valid: ['a2c', 'dqn', 'trpo', 'qrdqn']"),
        ("reproduce.py", ["frontier_music", "--agents", "dqn"], "--agents: frontier_music is a frontier study, whose agents form one grid"),
        ("reproduce.py", ["music", "--data-dir", "/no/such/folder"], "--data-dir /no/such/folder is not a folder: give a data root"),
        ("train.py", ["Personalization/Music-v0", "--data-dir", "/no/such/folder"], "data_dir /no/such/folder is not a folder (it does not exist)"),
        ("train.py", ["Personalization/Behavior-v0", "--algo", "sac"], "argument --algo: invalid choice: 'sac'"),
        ("train.py", ["Personalization/Behavior-v0", "--hp", "gamma"], "--hp takes key=value, got 'gamma'"),
        ("train.py", ["Personalization/Behavior-v0", "--hp", "gama=0.9"], "unknown hyperparameter(s) ['gama'] for ppo; valid: ["),
        ("train.py", ["Personalization/Nope-v0"], "unknown task 'Personalization/Nope-v0' (Environment `Nope` doesn't exist"),
        ("train.py", ["Personalization/Behavior-v0", "--net-arch", "64;64"], "net_arch takes comma-separated layer sizes"),
    ],
)  # fmt: skip
def test_bad_command_lines(script: str, args: list[str], message: str) -> None:
    result = call_script(script, *args, "--seeds", "1" if script == "reproduce.py" else "0")
    assert result.returncode == 2
    assert message in result.stderr


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (TINY_EXPERIMENT.replace("eval_freq:", "eval_frequency:"), "unknown key(s) ['eval_frequency']; valid: ['agents', 'eval_freq',"),
        (TINY_EXPERIMENT.replace("a2c: {learning_rate", "a2c: {learnig_rate"), "unknown hyperparameter(s) ['learnig_rate'] for a2c"),
        (TINY_EXPERIMENT.replace("  dqn: {", "  dqm: {"), "agents: unknown agent 'dqm': name an agent after its algorithm (['a2c', 'ppo', 'trpo', 'dqn', 'qrdqn']) or give its algorithm with algo:"),
        (TINY_EXPERIMENT.replace("steps: 96\n", ""), "missing key(s) ['steps']"),
        (TINY_EXPERIMENT.replace("Behavior-v0", "Behaviour-v0"), "unknown task 'Personalization/Behaviour-v0'"),
    ],
)  # fmt: skip
def test_experiment_files_with_typos(tmp_path: Path, yaml_text: str, message: str) -> None:
    path = tmp_path / "typo.yml"
    path.write_text(yaml_text)
    with pytest.raises(ValueError) as error:
        load_experiment(str(path))
    assert message in str(error.value)
    result = call_script("reproduce.py", str(path))
    assert result.returncode == 2 and message in result.stderr


def test_parse_hp_reads_yaml_values() -> None:
    assert parse_hp(["gamma=0.9", "n_steps=8", "net=[1, 2]", "flag=true"]) == {
        "gamma": 0.9,
        "n_steps": 8,
        "net": [1, 2],
        "flag": True,
    }
    with pytest.raises(ValueError) as error:
        parse_hp(["policy_kwargs={n_quantiles: 25, n_quantiles: 10}"])
    assert str(error.value) == (
        "--hp 'policy_kwargs={n_quantiles: 25, n_quantiles: 10}': cannot read the value: found the key 'n_quantiles' a "
        "second time (first on line 1); write each key once"
    )
    with pytest.raises(ValueError, match=r"^--hp 'x=\[1': cannot read the value: expected ',' or '\]', but got"):
        parse_hp(["x=[1"])


# --------------------------------------------------------------------------------------------------
# The paper's headline, at a budget CI can afford (about 20 s on 2 cores, batched): in the slow tier, so in CI.


@pytest.mark.slow
@pytest.mark.paper
def test_policy_optimization_ends_with_lower_entropy_than_dqn_on_music(data_root: Path, tmp_path: Path) -> None:
    experiment = load_experiment("music")
    experiment.eval_freq = experiment.steps  # evaluate at the start and the end only: the runs are unchanged
    # the paper's three agents, to keep CI short (TRPO and QR-DQN take 4-5 times as long)
    experiment.agents = {name: experiment.agents[name] for name in ("a2c", "ppo", "dqn")}
    result = run_experiment(experiment, seeds=3, out_dir=tmp_path, data_dir=str(data_root), report=lambda _: None)
    final = {key: history[-1] for key, history in result.histories.items()}
    assert {history[-1]["timesteps"] for history in result.histories.values()} == {20_000}
    for seed in range(3):
        dqn = final[("dqn", seed)]["entropy/marginal"]
        for agent in ("a2c", "ppo"):
            assert final[(agent, seed)]["entropy/marginal"] < dqn, (
                agent,
                seed,
                final[(agent, seed)]["entropy/marginal"],
                dqn,
            )
            assert final[(agent, seed)]["eval/expected_reward"] > 0.85  # at a reward comparable to DQN's
        assert final[("dqn", seed)]["eval/expected_reward"] > 0.85
    # and the report, which Quick start's main job opens with, says so from its intervals
    verdict = write_report([result], tmp_path / "report.md").read_text().split("## Verdict\n\n")[1].splitlines()[0]
    assert "3 seeds, 20,000 steps): entropy gap **reproduced**" in verdict, verdict


def test_train_function_rejects_bad_specs() -> None:
    with pytest.raises(ValueError, match="timesteps must be an integer >= 1, got 0"):
        train(RunSpec("Personalization/Behavior-v0", "a2c", 0, 0))
    with pytest.raises(ValueError, match=r"unknown algorithm 'sac'; valid: \['a2c', 'dqn', 'ppo', 'qrdqn', 'trpo'\]"):
        train(RunSpec("Personalization/Behavior-v0", "sac", 0, 10))


def test_a_run_without_tensorboard_leaves_nothing_in_the_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where SB3's default logger makes its SB3-... folder
    _, callback = train(RunSpec("Personalization/Behavior-v0", "dqn", 0, 64, [16], eval_freq=32))
    assert [entry["timesteps"] for entry in callback.history] == [0, 32, 64]  # trained and measured
    assert list(tmp_path.glob("SB3-*")) == []
    build_model(RunSpec("Personalization/Behavior-v0", "dqn", 0, 64, [16]))[0].learn(64)  # stock SB3, for contrast
    assert len(list(tmp_path.glob("SB3-*"))) == 1


@pytest.mark.parametrize("algo", ["a2c", "ppo", "trpo", "dqn", "qrdqn"])
def test_foreach_optimizer_steps_give_bit_identical_parameters(algo: str) -> None:
    spec = RunSpec("Personalization/Behavior-v0", algo, seed=3, timesteps=1, net_arch=[32, 32])
    parameters = {}
    for foreach in (False, True):  # torch's per-parameter loop (its CPU default), then what build_model sets
        model, _ = build_model(spec)
        assert [group["foreach"] for group in model.policy.optimizer.param_groups] == [True]
        model.policy.optimizer.param_groups[0]["foreach"] = foreach
        model.learn(320)  # 10 updates
        parameters[foreach] = model.policy.state_dict()
    assert parameters[False].keys() == parameters[True].keys()
    assert all(torch.equal(parameters[False][name], parameters[True][name]) for name in parameters[False])
    untrained = build_model(spec)[0].policy.state_dict()
    assert any(not torch.equal(parameters[True][name], value) for name, value in untrained.items())  # they learned
    # a foreach the user gives is kept (with the class: A2C and QR-DQN replace optimizer_kwargs given without one)
    spec.hyperparameters = {
        "policy_kwargs": {"optimizer_class": torch.optim.Adam, "optimizer_kwargs": {"foreach": False}}
    }
    assert build_model(spec)[0].policy.optimizer.param_groups[0]["foreach"] is False


# --------------------------------------------------------------------------------------------------
# Many runs at once: worker processes, fault isolation, resume, Ctrl-C


def read_results(folder: Path) -> list[dict[str, str]]:
    with open(folder / "results.csv", newline="") as stream:
        return list(csv.DictReader(stream))


def test_parallel_workers_give_the_same_results_as_one(tmp_path: Path) -> None:
    experiment = tmp_path / "tiny.yml"
    experiment.write_text(TINY_EXPERIMENT)
    for workers in ("1", "2"):
        result = call_script(
            "reproduce.py", str(experiment), "--seeds", "2", "--workers", workers, "--out", str(tmp_path / workers)
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("[") >= 4 and "[4/4] tiny" in result.stdout  # progress of the whole study
    assert read_results(tmp_path / "1" / "tiny") == read_results(tmp_path / "2" / "tiny")


def test_runs_in_the_callers_process_leave_its_torch_threads_alone(tmp_path: Path) -> None:
    experiment = tmp_path / "tiny.yml"
    experiment.write_text(TINY_EXPERIMENT)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)  # what a caller might have chosen; each run itself uses one thread
    try:
        result = run_experiment(load_experiment(str(experiment)), seeds=1, out_dir=tmp_path, report=lambda _: None)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
    assert {row["agent"] for row in result.rows} == {"a2c", "dqn"} and not result.failures


def test_the_dearest_runs_start_first_and_the_rows_keep_the_experiments_order(tmp_path: Path) -> None:
    experiment = tmp_path / "tiny.yml"
    experiment.write_text(TINY_EXPERIMENT.replace("paper:", "  trpo: {learning_rate: 1.0e-3}\npaper:"))  # last
    lines: list[str] = []
    result = run_experiment(load_experiment(str(experiment)), seeds=2, out_dir=tmp_path, report=lines.append)
    started = [line.split()[2] for line in lines if line.startswith("[")]
    # TRPO (RUN_COST 5) before A2C (1.3) before DQN (1), seeds in order: the runs finish in this order with 1 worker
    assert started == ["trpo", "trpo", "a2c", "a2c", "dqn", "dqn"], lines
    assert [(row["agent"], row["seed"]) for row in result.rows if row["timesteps"] == 0] == [
        ("a2c", 0), ("a2c", 1), ("dqn", 0), ("dqn", 1), ("trpo", 0), ("trpo", 1)
    ]  # fmt: skip


def test_a_failing_run_is_reported_and_the_others_complete(tmp_path: Path) -> None:
    experiment = tmp_path / "tiny.yml"  # A2C diverges: its logits turn NaN during training, not before
    experiment.write_text(TINY_EXPERIMENT.replace("a2c: {learning_rate: 1.0e-3}", "a2c: {learning_rate: 1.0e+30}"))
    result = call_script(
        "reproduce.py", str(experiment), "--seeds", "2", "--workers", "2", "--out", str(tmp_path / "out")
    )
    assert result.returncode == 1
    assert "failed runs (see the report): tiny a2c seed 0, tiny a2c seed 1 (exit status 1)" in result.stdout
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| A2C | policy optimization | every run failed |" in report
    assert "Run a2c seed 0 failed: `ValueError: A2C gave action probabilities that are NaN or infinite in" in report
    error_file = (tmp_path / "out" / "tiny" / "runs" / "a2c_seed0.error.txt").read_text()
    assert "Traceback" in error_file and "training most likely diverged" in error_file
    rows = read_results(tmp_path / "out" / "tiny")
    assert {row["agent"] for row in rows} == {"dqn"} and {row["seed"] for row in rows} == {"0", "1"}


def test_a_study_whose_runs_all_fail_still_writes_its_report(tmp_path: Path) -> None:
    experiment = tmp_path / "diverges.yml"
    experiment.write_text(
        TINY_EXPERIMENT.replace("a2c: {learning_rate: 1.0e-3}", "a2c: {learning_rate: 1.0e+30}")
        .replace("dqn: {learning_rate: 1.0e-3}", "ppo: {learning_rate: 1.0e+30}")
    )  # fmt: skip
    result = call_script(
        "reproduce.py", str(experiment), "--seeds", "2", "--workers", "1", "--out", str(tmp_path / "out")
    )
    assert result.returncode == 1, result.stderr
    report = (tmp_path / "out" / "report.md").read_text()
    assert "- **diverges** (Personalization/Behavior-v0): **every run failed** (4 runs), nothing to judge" in report
    assert "Every run failed (4 runs, wall time" in report
    assert "- a2c seed 0, a2c seed 1: `ValueError: A2C gave action probabilities that are NaN or infinite" in report
    assert "- ppo seed 0, ppo seed 1: `ValueError: PPO gave action probabilities that are NaN or infinite" in report
    assert "Traceback" in (tmp_path / "out" / "diverges" / "runs" / "ppo_seed1.error.txt").read_text()
    with open(tmp_path / "out" / "diverges" / "results.csv", newline="") as stream:
        assert list(csv.DictReader(stream)) == []  # the header only


BAD_SETTINGS = [
    ("net_arch: [16]", "net_arch: [16, -4]", "net_arch must be a list of layer sizes, integers >= 1 such as [256, 256], got [16, -4]"),
    ("net_arch: [16]", "net_arch: 16", "net_arch must be a list of layer sizes"),
    ("steps: 96", "steps: -96", "steps must be an integer >= 1, got -96"),
    ("steps: 96", "steps: 100000000000000000000000", "steps must be at most 2**53 = 9,007,199,254,740,992 (steps are logged as floats), got 100,000,000,000,000,000,000,000"),
    ("a2c: {learning_rate: 1.0e-3}", "a2c: 1.0e-3", "agents.a2c must be a mapping of the agent's settings, got 0.001"),
    ("eval_freq: 32", "eval_freq: 3e1", "eval_freq must be an integer >= 1, got '3e1' (YAML reads 1e3 as text: write 1000)"),
    ("eval_freq: 32", "eval_freq: 0", "eval_freq must be an integer >= 1, got 0"),
    ("a2c: {learning_rate: 1.0e-3}", "a2c: {learning_rate: 1e-3}", "agents.a2c: a2c: learning_rate must be a finite number or a schedule, a function of the remaining progress (not settable from YAML), got '1e-3' (YAML reads 1e-3 as text: write 1.0e-3)"),
    ("a2c: {learning_rate: 1.0e-3}", "a2c: {gamma: 1.5}", "agents.a2c: a2c: gamma must be in [0, 1], got 1.5"),
    ("a2c: {learning_rate: 1.0e-3}", "a2c: {n_steps: 0}", "agents.a2c: a2c: n_steps must be >= 1, got 0"),
    ("a2c: {learning_rate: 1.0e-3}", "a2c: {n_steps: 48}", "agents.a2c: a2c: n_steps=48 is not a multiple of 32"),
    ("dqn: {learning_rate: 1.0e-3}", "dqn: {train_freq: [32, steps]}", "agents.dqn: dqn: train_freq must be an integer or a pair [integer, step or episode], got [32, 'steps']"),
    ("dqn: {learning_rate: 1.0e-3}", "dqn: {policy_kwargs: {n_layers: 2}}", "agents.dqn: dqn cannot be built with these settings: TypeError: DQNPolicy.__init__() got an unexpected keyword argument 'n_layers'"),
    ("a2c: {reward: 0.5, entropy: 1.0}", "a2c: {reward: high, entropy: 1.0}", "paper.a2c.reward must be a finite number, got 'high'"),
    ("a2c: {reward: 0.5, entropy: 1.0}", "a2c: {reward: 0.5, entropy: -1.0}", "paper.a2c.entropy (nats) must be a finite number >= 0, got -1.0"),
    ("n_eval: 200}", "n_eval: -200}", "task Personalization/Behavior-v0, task_kwargs {'n_actions': 6, 'state_dim': 4, 'n_eval': -200}: n_eval must be an integer >= 1, got -200"),
    ("n_eval: 200}", "n_evals: 200}", "got an unexpected keyword argument 'n_evals'"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "message"), BAD_SETTINGS)
def test_settings_that_cannot_work_are_refused_before_any_run(tmp_path: Path, old: str, new: str, message: str) -> None:
    """Checked as a whole before the first run: a good experiment named first does not run either."""
    (tmp_path / "good.yml").write_text(TINY_EXPERIMENT)
    assert old in TINY_EXPERIMENT
    (tmp_path / "bad.yml").write_text(TINY_EXPERIMENT.replace(old, new))
    out = tmp_path / "out"
    result = call_script("reproduce.py", str(tmp_path / "good.yml"), str(tmp_path / "bad.yml"), "--out", str(out))
    assert result.returncode == 2, result.stderr
    assert f"error: experiment bad ({tmp_path / 'bad.yml'}): " in result.stderr and message in result.stderr
    assert not (out / "good").exists() and not (out / "bad").exists()  # nothing trained, nothing written


def test_resume_reuses_finished_runs(tmp_path: Path) -> None:
    experiment = tmp_path / "tiny.yml"
    experiment.write_text(TINY_EXPERIMENT)
    args = (str(experiment), "--seeds", "2", "--workers", "1", "--out", str(tmp_path / "out"))
    first = call_script("reproduce.py", *args)
    assert first.returncode == 0, first.stderr
    before = read_results(tmp_path / "out" / "tiny")
    (tmp_path / "out" / "tiny" / "runs" / "dqn_seed1.json").unlink()  # as if interrupted before this run ended
    second = call_script("reproduce.py", *args, "--resume")
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("resumed from an earlier run") == 3
    lines = second.stdout.splitlines()
    assert lines[0] == "tiny: 1 run to train, 3 kept from an earlier call, one at a time"
    assert [line.split("]")[0] for line in lines[1:5]] == ["[1/4", "[2/4", "[3/4", "[4/4"]
    assert read_results(tmp_path / "out" / "tiny") == before
    # the run trained again replaced its TensorBoard folder: one folder per run, each with one complete curve
    tb = tmp_path / "out" / "tb" / "tiny"
    for agent in ("a2c", "dqn"):
        for seed in (0, 1):
            assert len(list((tb / agent / f"seed{seed}").iterdir())) == 1  # one event file
    events = EventAccumulator(str(tb / "dqn" / "seed1"))
    events.Reload()
    assert [event.step for event in events.Scalars("entropy/marginal")] == [0, 32, 64, 96]
    # a run file cut short (a crash or a full disk during a write before writes were atomic), and one that is empty:
    # --resume names each, reruns them, and the results are those of the uninterrupted study
    runs = tmp_path / "out" / "tiny" / "runs"
    whole = (runs / "a2c_seed0.json").read_text()
    (runs / "a2c_seed0.json").write_text(whole[: len(whole) // 2])
    (runs / "dqn_seed0.json").write_text("")
    fourth = call_script("reproduce.py", *args, "--resume")
    assert fourth.returncode == 0, fourth.stderr
    for name in ("a2c_seed0", "dqn_seed0"):
        assert f"{runs / name}.json is unreadable (JSONDecodeError: " in fourth.stdout
    assert fourth.stdout.count("resumed from an earlier run") == 2
    assert read_results(tmp_path / "out" / "tiny") == before
    assert json.loads((runs / "a2c_seed0.json").read_text())["history"] == json.loads(whole)["history"]
    report = (tmp_path / "out" / "report.md").read_text()
    assert "(2 of them kept from an earlier call)" in report
    assert not list(runs.glob(".*partial*"))  # no temporary file left behind
    # other settings: the saved runs do not count
    third = call_script("reproduce.py", *args, "--resume", "--steps", "64")
    assert third.returncode == 0, third.stderr
    assert "resumed" not in third.stdout
    assert third.stdout.count("settings changed since the saved run (timesteps: 96 then, 64 now), rerun") == 4


@pytest.mark.slow
def test_ctrl_c_stops_every_worker(tmp_path: Path) -> None:
    experiment = tmp_path / "long.yml"
    experiment.write_text(TINY_EXPERIMENT.replace("steps: 96", "steps: 2000000"))
    process = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "reproduce.py"), str(experiment), "--seeds", "2",
         "--workers", "2", "--out", str(tmp_path / "out")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        # as from a terminal: SIGINT at its default, even when this test runs where it is ignored (a job started
        # in the background by a non-interactive shell), which Python would otherwise keep ignoring
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    _children_once_training(process)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "interrupted: the finished runs are kept" in stderr
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # no process of the group is left (workers, resource tracker)
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        survivors = subprocess.run(["ps", "-o", "pid,cmd", "-g", str(process.pid)], capture_output=True, text=True)
        pytest.fail(f"processes of the study still alive 20 s after Ctrl-C:\n{survivors.stdout}")


@pytest.mark.slow
def test_killing_the_main_process_stops_its_workers(tmp_path: Path) -> None:
    experiment = tmp_path / "long.yml"
    experiment.write_text(TINY_EXPERIMENT.replace("steps: 96", "steps: 2000000"))
    process = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "reproduce.py"), str(experiment), "--seeds", "2",
         "--workers", "2", "--out", str(tmp_path / "out")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    worker_pids = _children_once_training(process)  # the resource tracker and the two workers
    os.kill(process.pid, signal.SIGKILL)  # the main process only: no Ctrl-C, no chance to clean up
    process.wait(timeout=10)
    deadline = time.monotonic() + 30
    alive = worker_pids
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in worker_pids if os.path.exists(f"/proc/{pid}") and _not_a_zombie(pid)]
        time.sleep(0.2)
    if alive:
        survivors = subprocess.run(
            ["ps", "-o", "pid,cmd", "-p", ",".join(map(str, alive))], capture_output=True, text=True
        )
        for pid in alive:  # leave nothing running behind a failed test
            os.kill(pid, signal.SIGKILL)
        pytest.fail(f"workers still alive 30 s after their main process was killed:\n{survivors.stdout}")


def _children_once_training(process: subprocess.Popen) -> list[int]:
    """The study's worker processes (and resource tracker) once the two workers run, the experiment planned.
    The study plans first (its task and models built once), which takes longer on a loaded machine: wait for the
    workers rather than a fixed time (at most 2 minutes, a guard against a hang), then let them train a moment."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, "the study ended before its workers started"
        found = subprocess.run(
            ["pgrep", "-P", str(process.pid), "-f", "multiprocessing"], capture_output=True, text=True
        )
        pids = [int(pid) for pid in found.stdout.split()]
        if len(pids) >= 3:
            time.sleep(2)
            return pids
        time.sleep(0.2)
    pytest.fail("the study's two workers did not start within 2 minutes")


def _not_a_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.slow
def test_runs_on_a_local_ray_instance_match_local_runs(tmp_path: Path) -> None:
    import ray  # in the test extra: a missing ray fails here, it never skips

    experiment_file = tmp_path / "tiny.yml"
    experiment_file.write_text(TINY_EXPERIMENT)
    experiment = load_experiment(str(experiment_file))
    local = run_experiment(experiment, seeds=2, out_dir=tmp_path / "local", report=lambda _: None)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        lines: list[str] = []
        on_ray = run_experiment(experiment, seeds=2, out_dir=tmp_path / "ray", report=lines.append, ray_address="auto")
    finally:
        ray.shutdown()
    assert len(lines) == 4 and not on_ray.failures
    assert local.histories.keys() == on_ray.histories.keys()
    for key, history in local.histories.items():
        for mine, theirs in zip(history, on_ray.histories[key], strict=True):
            assert mine["timesteps"] == theirs["timesteps"] and mine["entropy/marginal"] == theirs["entropy/marginal"]
            np.testing.assert_array_equal(mine["p"], theirs["p"])


def test_a_ray_address_without_a_cluster_is_an_error_before_anything_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A closed port, a port where something that is not Ray listens (ray.init alone retries it for minutes), and
    an address that is not one: exit status 2 with the reason, nothing trained. The probe of the listening port is
    given 2 s here instead of RAY_CONNECT_SECONDS (30): the same path, a shorter wait."""
    monkeypatch.setattr(execution, "RAY_CONNECT_SECONDS", 2)
    experiment = tmp_path / "tiny.yml"
    experiment.write_text(TINY_EXPERIMENT)
    with socket.socket() as listening, socket.socket() as closed:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        for address, message in (
            (f"127.0.0.1:{closed.getsockname()[1]}", "no Ray cluster answers there (Connection refused"),
            (f"127.0.0.1:{listening.getsockname()[1]}", "no Ray cluster answered within 2 s"),
            ("head-node", "give host:port (such as 10.0.0.5:6379), ray://host:port or auto"),
        ):
            result = call_script(
                "reproduce.py", str(experiment), "--ray-address", address, "--out", str(tmp_path / "out")
            )
            assert result.returncode == 2 and f"error: --ray-address: Ray address {address}: " in result.stderr, (
                result.stderr
            )
            assert message in result.stderr
            assert not (tmp_path / "out" / "tiny").exists()


@pytest.mark.parametrize(
    ("steps", "label"),
    [(0, "0"), (500, "500"), (1000, "1k"), (25_000, "25k"), (12_500, "12.5k"), (200_000, "200k"), (1_500_000, "1.5M")],
)
def test_step_axis_labels_are_short(steps: int, label: str) -> None:
    from sb3_entropy.study.plots import step_label

    assert step_label(steps) == label


def test_reproduce_runs_only_the_agents_asked_for(tmp_path: Path) -> None:
    experiment = tmp_path / "tiny.yml"
    experiment.write_text(TINY_EXPERIMENT.replace("  dqn: {", "  ppo: {learning_rate: 1.0e-3}\n  dqn: {"))
    out = tmp_path / "out"
    result = call_script(
        "reproduce.py", str(experiment), "--agents", "dqn", "a2c", "--seeds", "2", "--workers", "1", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    with open(out / "tiny" / "results.csv", newline="") as stream:
        runs = {(row["agent"], row["seed"]) for row in csv.DictReader(stream)}
    assert runs == {("a2c", "0"), ("a2c", "1"), ("dqn", "0"), ("dqn", "1")}
    assert sorted(path.name for path in (out / "tiny" / "runs").iterdir()) == [
        "a2c_seed0.json", "a2c_seed1.json", "dqn_seed0.json", "dqn_seed1.json"
    ]  # fmt: skip
    verdict = (out / "report.md").read_text().split("## Verdict\n\n")[1].splitlines()[0]
    assert "Final means: A2C" in verdict and "; DQN" in verdict and "PPO" not in verdict


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_paper_agent_is_the_studys_model(algo: str) -> None:
    from sb3_entropy import EntropyCallback, paper_agent

    model = paper_agent(algo, "Personalization/Music-v0", seed=3, net_arch=[32], learning_rate=1e-3,
                        env_kwargs={"n_eval": 200})  # fmt: skip
    # 32 users per update, collected as one step of 32 users
    assert model.env.num_envs == 32 and model.batch_size == 32 and model.learning_rate == 1e-3
    if algo == "ppo":
        assert model.n_steps == 1 and model.n_epochs == 1
    else:
        assert model.train_freq.frequency == 1 and model.learning_starts == 0 and model.buffer_size == 10_000
    callback = EntropyCallback(eval_freq=320, log_figures=False, seed=3)
    model.learn(640, callback=callback)
    spec = RunSpec("Personalization/Music-v0", algo, 3, 640, [32], {"learning_rate": 1e-3}, {"n_eval": 200},
                   eval_freq=320, log_figures=False)  # fmt: skip
    _, trained = train(spec)
    assert len(callback.history) == len(trained.history) == 3
    for ours, theirs in zip(callback.history, trained.history, strict=True):
        assert ours.keys() == theirs.keys()
        for key in ours:
            np.testing.assert_array_equal(ours[key], theirs[key])


def test_train_script_refuses_bad_settings_before_training(tmp_path: Path) -> None:
    broken = tmp_path / "hp.yml"
    broken.write_text("ppo:\n  gamma: [0.9\n")
    a_file = tmp_path / "models"
    a_file.write_text("")
    for args, message in (
        (["--seeds", "0", "-1"], "--seeds must be integers >= 0, got -1"),
        (["--timesteps", "0"], "--timesteps must be an integer >= 1, got 0"),
        (["--eval-freq", "-3"], "--eval-freq must be an integer >= 1, got -3"),
        (["--temperature", "inf"], "--temperature must be a finite number > 0, got inf"),
        (["--hp-file", str(broken)], f"--hp-file {broken}: not valid YAML: while parsing a flow sequence in"),
        (["--hp-file", str(tmp_path / "nope.yml")], f"--hp-file {tmp_path / 'nope.yml'}: file not found"),
        (["--save-dir", str(a_file)], f"--save-dir {a_file} is a file, not a folder"),
        (["--save-dir", ""], "--save-dir is empty: give a folder"),
        (["--tensorboard-log", str(a_file)], f"--tensorboard-log {a_file} is a file, not a folder"),
        (["--seeds", "0", "1", "0"], "--seeds names [0] more than once: give each once"),
        (["--hp", "learning_rate=-1e-3"], "ppo: learning_rate must be > 0, got -0.001"),
        (
            ["--hp", "batch_size=1"],
            "ppo cannot be built with these settings: AssertionError: `batch_size` must be greater than 1",
        ),
    ):
        result = call_script("train.py", "Personalization/Behavior-v0", "--timesteps", "64", *args)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert "done" not in result.stdout  # nothing trained


@pytest.mark.parametrize("algo", ["dqn", "qrdqn"])
def test_a_marginal_entropy_policy_on_q_learning_says_what_is_wrong(algo: str) -> None:
    from sb3_entropy import MarginalEntropyPolicy
    from sb3_entropy.agents import algorithm_class

    with pytest.raises(TypeError, match=r"MarginalEntropyPolicy is an actor-critic policy: .* Use it with A2C or PPO"):
        algorithm_class(algo)(MarginalEntropyPolicy, BehaviorEnv(n_eval=10), device="cpu")


def test_experiment_dataclasses_check_themselves() -> None:
    from sb3_entropy.study.experiments import Experiment, Frontier, TunedAgent

    with pytest.raises(ValueError, match=r"^unknown algo 'sac'; valid: \['a2c', "):
        Agent("sac")
    with pytest.raises(ValueError, match=r"^a regularizer applies to \['a2c', 'ppo'\] .*, not dqn$"):
        Agent("dqn", {}, "marginal")
    with pytest.raises(ValueError, match=r"^a2c: learning_rate must be a finite number or a schedule"):
        Agent("a2c", {"learning_rate": "fast"})
    assert Agent("ppo", {}, "l2", 0.5).per_state_weight == 0.5 and Agent("ppo").regularizer is None
    base = {"name": "mine", "task": "Personalization/Behavior-v0", "net_arch": [16], "steps": 64, "eval_freq": 32}
    built = Experiment(**base, agents={"a2c": Agent("a2c")})
    assert (built.seeds, built.quick, built.where) == (3, {}, "experiment mine")
    for change, message in [
        ({"steps": 0}, r"^experiment mine: steps must be an integer >= 1, got 0$"),
        ({"eval_freq": "3e1"}, r"^experiment mine: eval_freq must be an integer >= 1, got '3e1' \(YAML reads 1e3"),
        (
            {"net_arch": [16, 0]},
            r"^experiment mine: net_arch must be a list of layer sizes, integers >= 1 such as \[256, 256\], got \[16, 0\]$",
        ),
        ({"seeds": 1}, r"^experiment mine: seeds must be an integer >= 2 \(an interval needs two\), got 1$"),
        ({"quick": {"step": 5}}, r"^experiment mine: quick: unknown key\(s\) \['step'\]"),
        ({"paper": {"a2c": {"entropy": -1}}}, r"^experiment mine: paper.a2c.entropy \(nats\) must be a finite num"),
        ({"task": "Personalization/Nope-v0"}, r"^experiment mine: unknown task 'Personalization/Nope-v0'"),
        (
            {"path": "mine.yml", "steps": True},
            r"^experiment mine \(mine.yml\): steps must be an integer >= 1, got True",
        ),
    ]:
        with pytest.raises(ValueError, match=message):
            Experiment(**(base | change), agents={"a2c": Agent("a2c")})
    with pytest.raises(ValueError, match=r"^agents must be a non-empty list of agent names, got \[\]$"):
        Frontier("dqn", [], {"marginal": [0.1]})
    with pytest.raises(ValueError, match=r"^regularizers.l2 must be an increasing list of coefficients > 0"):
        Frontier("dqn", ["a2c"], {"l2": [1.0, 0.5]})
    with pytest.raises(
        ValueError, match=r"^trials, pruned, failed and steps must be integers >= 0, got \[-1, 0, 0, 10\]"
    ):
        TunedAgent({}, -1, 0, 0, 10, (1,), None)
    with pytest.raises(ValueError, match=r"^seeds must be a non-empty list of integers >= 0 \(the tuning seeds\)"):
        TunedAgent({}, 1, 0, 0, 10, (), None)
