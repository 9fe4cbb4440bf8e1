"""The study and train.py on a user's own data: tasks given by files in an experiment file, and tasks from a
user's own package (``module:Env-v0``). The study of a task from the user's package runs in a fresh interpreter,
as a user runs it: its worker processes import the package from the task's id themselves."""

from __future__ import annotations

import csv
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import EXPOSURE_TAGS, call_script, run_script

from personalization_gym import RatingsEnv, TabularEnv
from sb3_entropy.study import load_experiment

# A user's own package: a task of 4 kinds of user and 3 items, registered on import.
USER_PACKAGE = """
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import register
from personalization_gym import BanditEnv, Batch

REWARDS = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.5]])


class FourUsers(BanditEnv):
    def __init__(self, n_eval=400, task_seed=0):
        super().__init__(n_eval=n_eval, task_seed=task_seed)
        self.observation_space = spaces.Box(0.0, 1.0, (4,), np.float32)
        self.action_space = spaces.Discrete(3)

    def sample(self, n, rng):
        kinds = rng.integers(4, size=n)
        return Batch(obs=np.eye(4, dtype=np.float32)[kinds], expected=REWARDS[kinds])


register(id="FourUsers-v0", entry_point="my_tasks:FourUsers")
"""

EXPERIMENT = """
task: {task}
net_arch: [16]
steps: 640
eval_freq: 320
agents:
  a2c: {{learning_rate: 1.0e-3}}
  dqn: {{learning_rate: 1.0e-3}}
"""


@pytest.fixture
def user_package(tmp_path: Path) -> dict[str, str]:
    """The environment of a user whose own package ``my_tasks`` is importable."""
    (tmp_path / "my_tasks.py").write_text(textwrap.dedent(USER_PACKAGE))
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture
def user_package_here(tmp_path: Path, user_package, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The user's package ``my_tasks`` importable in this process; imported and registered only for the test."""
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("my_tasks", None)
    gym.registry.pop("FourUsers-v0", None)


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.mark.slow
def test_a_task_from_the_users_own_package_runs_in_the_study_and_train(tmp_path: Path, user_package) -> None:
    experiment = tmp_path / "mine.yml"
    experiment.write_text(EXPERIMENT.format(task="my_tasks:FourUsers-v0"))
    out = tmp_path / "out"
    # two workers: each spawned process imports my_tasks itself, from the id
    result = run_script("reproduce.py", str(experiment), "--seeds", "2", "--workers", "2", "--out", str(out),
                        env=user_package)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = read_rows(out / "mine" / "results.csv")
    assert {(row["agent"], row["seed"]) for row in rows} == {(a, s) for a in ("a2c", "dqn") for s in ("0", "1")}
    assert all(row[key] != "" for row in rows for key in EXPOSURE_TAGS)
    report = (out / "report.md").read_text()
    assert (
        "## mine (my_tasks:FourUsers-v0)" in report and "| Gini | long-tail share | distinct greedy items |" in report
    )
    # the baselines on the user's task, computed by hand: 400 users of 4 kinds drawn by the task's own seed
    expected_oracle = "| oracle | - | 1.000 | 1.000 |"
    assert expected_oracle in report

    result = run_script("train.py", "my_tasks:FourUsers-v0", "--algo", "ppo", "--timesteps", "320", "--eval-freq",
                        "320", env=user_package)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "my_tasks:FourUsers-v0, 320 steps" in result.stdout and "distinct greedy" in result.stdout


def test_ids_that_are_not_tasks_are_refused_before_training(tmp_path: Path, user_package_here) -> None:
    for task, message in (
        ("CartPole-v1", "builds gymnasium.envs.classic_control.cartpole.CartPoleEnv, which is not a "
                        "personalization_gym BanditEnv"),
        ("no_such_module:Task-v0", "cannot import module 'no_such_module'"),
        ("my_tasks:Nope-v0", "unknown task 'my_tasks:Nope-v0'"),
    ):  # fmt: skip
        experiment = tmp_path / "bad.yml"
        experiment.write_text(EXPERIMENT.format(task=task))
        result = call_script("reproduce.py", str(experiment), "--out", str(tmp_path / "out"))
        assert result.returncode == 2 and message in result.stderr, result.stderr
        result = call_script("train.py", task)
        assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


def test_a_study_of_a_tabular_task_given_by_files_beside_the_experiment(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    features = rng.standard_normal((300, 5))
    rewards = 1 / (1 + np.exp(-features @ rng.standard_normal((5, 8))))
    folder = tmp_path / "study"
    folder.mkdir()
    np.save(folder / "users.npy", features)
    np.save(folder / "rewards.npy", rewards)
    (folder / "clicks.yml").write_text(
        EXPERIMENT.format(task="Personalization/Tabular-v0")
        + "task_kwargs: {features: users.npy, rewards: rewards.npy, noise: bernoulli}\n"
    )
    loaded = load_experiment(str(folder / "clicks.yml"))
    assert loaded.task_kwargs["features"] == str((folder / "users.npy").resolve())
    out = tmp_path / "out"
    result = call_script(
        "reproduce.py", str(folder / "clicks.yml"), "--seeds", "2", "--workers", "1", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    report = (out / "report.md").read_text()
    # the random and oracle rows, from the held-out users' exact click rates (computed here independently)
    held_out = TabularEnv(features, rewards).eval_users
    random, oracle = rewards[held_out].mean(), rewards[held_out].max(axis=1).mean()
    assert (
        f"| random policy | - | {random:.3f} | 0.000 |" in report and f"| oracle | - | {oracle:.3f} | 1.000 |" in report
    )
    assert len(read_rows(out / "clicks" / "results.csv")) == 2 * 2 * 3  # agents x seeds x evaluations (0, 320, 640)

    # The files regenerated under the same names: --resume retrains every run, saying why, and the report holds
    # only runs on the new data (the same rows as a fresh study of the new files gives)
    np.save(folder / "rewards.npy", rewards[:, ::-1])
    again = call_script(
        "reproduce.py", str(folder / "clicks.yml"), "--seeds", "2", "--workers", "1", "--out", str(out), "--resume"
    )
    assert again.returncode == 0, again.stderr
    changed = [line for line in again.stdout.splitlines() if "the task's data changed since the saved run" in line]
    assert len(changed) == 4 and "kept from an earlier call" not in (out / "report.md").read_text()
    assert changed[0].startswith("clicks a2c seed 0: the task's data changed since the saved run (fingerprint ")
    fresh = call_script(
        "reproduce.py", str(folder / "clicks.yml"), "--seeds", "2", "--workers", "1", "--out", str(tmp_path / "new")
    )
    assert fresh.returncode == 0, fresh.stderr
    assert (out / "clicks" / "results.csv").read_bytes() == (tmp_path / "new" / "clicks" / "results.csv").read_bytes()
    # and unchanged files: every run is kept
    kept = call_script(
        "reproduce.py", str(folder / "clicks.yml"), "--seeds", "2", "--workers", "1", "--out", str(out), "--resume"
    )
    assert kept.returncode == 0 and "(4 of them kept from an earlier call)" in (out / "report.md").read_text()

    (folder / "missing.yml").write_text(
        EXPERIMENT.format(task="Personalization/Tabular-v0")
        + "task_kwargs: {features: nope.npy, rewards: rewards.npy}\n"
    )
    with pytest.raises(ValueError, match=rf"task_kwargs.features: file {folder / 'nope.npy'} not found \(relative"):
        load_experiment(str(folder / "missing.yml"))


def test_a_ratings_study_reports_the_fit(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    users, items = np.divmod(rng.choice(60 * 12, size=500, replace=False), 12)
    ratings = np.clip(np.round(3 + rng.standard_normal(500)), 1, 5)
    path = tmp_path / "ratings.csv"
    path.write_text(
        "user,item,rating\n" + "".join(f"{u},{i},{r:g}\n" for u, i, r in zip(users, items, ratings, strict=True))
    )
    (tmp_path / "ratings.yml").write_text(
        EXPERIMENT.format(task="Personalization/Ratings-v0") + "task_kwargs: {ratings: ratings.csv, rank: 4}\n"
    )
    result = call_script(
        "reproduce.py", str(tmp_path / "ratings.yml"), "--seeds", "2", "--workers", "1", "--out", str(tmp_path / "o")
    )
    assert result.returncode == 0, result.stderr
    task = RatingsEnv(str(path), rank=4)
    assert f"Task: {task.read_report}; the task's {task.fit_report}." in (tmp_path / "o" / "report.md").read_text()
    assert f"ratings: {task.read_report}; the task's {task.fit_report}" in result.stdout
