"""The command-line scripts, run as a user runs them (their refusals in this process); the benchmark scripts'
tests are slow (``-m slow``): they check that each prints its figures, bench_tests.py by running pytest again."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import PROJECT_ROOT, call_script, run_script

from personalization_gym import DATA_ENV_VAR, OWN_DATA_TASK_IDS, TASK_IDS, AdsEnv, BehaviorEnv, MNISTEnv, MusicEnv

# One task of each kind (csv data, generated, image files) for the scripts that print a row per task.
TABLE_TASKS = ("Personalization/Music-v0", "Personalization/Behavior-v0", "Personalization/MNIST-v0")


def table_rows(stdout: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split()[1:] for line in stdout.splitlines() if line.startswith("Personalization/")}


def test_random_policy_reports_every_task(data_root) -> None:
    ids = TABLE_TASKS
    result = run_script("random_policy.py", *ids, "--episodes", "300", "--n-eval", "2000", "--seed", "3")
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    assert set(rows) == set(ids)
    for env_id, task in zip(ids, (MusicEnv(n_eval=2000), BehaviorEnv(n_eval=2000), MNISTEnv(n_eval=2000)), strict=True):
        actions, reward, stderr, oracle, eval_random, eval_oracle = rows[env_id]
        assert int(actions) == task.n_actions
        random_actions = np.random.default_rng(3).integers(task.n_actions, size=2000)
        assert float(eval_random) == pytest.approx(task.evaluate(random_actions), abs=5e-5)
        assert float(eval_oracle) == pytest.approx(task.eval_set().expected.max(axis=1).mean(), abs=5e-5)
        # the training stream and the evaluation set come from the same distribution of users
        assert abs(float(reward) - float(eval_random)) < 5 * float(stderr) + 0.05
        assert abs(float(oracle) - float(eval_oracle)) < 0.06


def test_random_policy_offline_skips_tasks_without_local_data() -> None:
    # every task but FashionMNIST-v0, which may come from Debian's package on a machine that has it
    ids = [
        env_id for env_id in TASK_IDS if env_id != "Personalization/FashionMNIST-v0" and env_id not in OWN_DATA_TASK_IDS
    ]
    result = run_script("random_policy.py", *ids, "--offline", "--episodes", "50", env={DATA_ENV_VAR: ""})
    assert result.returncode == 0, result.stderr
    for name in ("MNIST", "CIFAR10", "CIFAR100"):
        assert re.search(rf"Personalization/{name}-v0 +skipped, no local data: {name} data not found", result.stdout)
    assert re.search(
        r"Personalization/MovieLens-v0 +skipped, no local data: MovieLens ml-100k not found", result.stdout
    )
    assert "4 task(s) skipped for want of local data (see docs/data.md)" in result.stdout
    # Music-v0's data ships with the package: it runs offline with no data location at all
    for env_id in ("Personalization/Behavior-v0", "Personalization/Music-v0", "Personalization/Digits-v0"):
        assert len(table_rows(result.stdout)[env_id]) == 6


def test_random_policy_rejects_unknown_task() -> None:
    result = call_script("random_policy.py", "Personalization/Nope-v0")
    assert result.returncode == 2
    assert "unknown task id(s) ['Personalization/Nope-v0']; valid:" in result.stderr


@pytest.mark.slow
def test_bench_envs_prints_figures_for_every_task(data_root) -> None:
    ids = TABLE_TASKS
    result = run_script("bench_envs.py", *ids, "--steps", "200", "--repeats", "1", "--sample-size", "100")
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    assert set(rows) == set(ids)
    for figures in rows.values():
        assert len(figures) == 6 and all(float(value) > 0 for value in figures)


@pytest.mark.slow
def test_bench_images_prints_memory_and_build_figures(data_root) -> None:
    result = run_script("bench_images.py", "Personalization/MNIST-v0", "--data-dir", str(data_root))
    assert result.returncode == 0, result.stderr
    added = float(result.stdout.split("memory added by the task")[1].split()[0])
    with_eval = float(result.stdout.split("... and by its eval_set()")[1].split()[0])
    assert 40 < added < with_eval  # 55 MB of uint8 images at least, and the eval set on top
    assert "build again, another fresh process" in result.stdout and "(budget: 3)" in result.stdout


def test_ads_value_prints_the_gain_of_personalization() -> None:
    result = run_script("ads_value.py", "--sigma-mu", "3", "0", "--task-seeds", "1", "--n-eval", "2000")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[2:]]
    assert [row[0] for row in rows] == ["3.00", "0.00"]
    for sigma_mu, row in zip((3.0, 0.0), rows, strict=True):
        ctr = AdsEnv(sigma_mu=sigma_mu, n_eval=2000).eval_set().expected
        assert float(row[1].rstrip("%")) == pytest.approx(100 * ctr.max(axis=1).mean(), abs=6e-4)
        assert float(row[2].rstrip("%")) == pytest.approx(100 * ctr.mean(axis=0).max(), abs=6e-4)


@pytest.mark.slow
def test_bench_entropy_prints_its_figures(data_root) -> None:
    result = run_script("bench_entropy.py", "--data-dir", str(data_root), "--steps", "256", "--repeats", "1")
    assert result.returncode == 0, result.stderr
    ratio = float(result.stdout.split("one evaluation (without the image)")[1].split("ms")[1].split("x")[0])
    assert ratio > 0  # a figure, not a goal: timings are the benchmark's to print, never a test's to assert
    for name in ("no callback", "every 2,000 steps (default)", "every 100 steps (paper)"):
        assert name in result.stdout


@pytest.mark.slow
def test_bench_logging_prints_three_cadences_with_identical_parameters() -> None:
    result = run_script("bench_logging.py", "--agents", "dqn", "a2c", "--steps", "640")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith(("dqn ", "a2c "))]
    assert [row[0] for row in rows] == ["dqn"] * 4 + ["a2c"] * 4
    for agent in ("dqn", "a2c"):
        runs = [row for row in rows if row[0] == agent]
        assert " ".join(runs[3]) == f"{agent} final parameters of the three runs identical"
        dumps = [int(row[-6]) for row in runs[:3]]  # no TensorBoard, SB3's log_interval, evaluation cadence
        assert dumps[0] == dumps[2]  # the same cadence, with and without TensorBoard
        if agent == "dqn":  # SB3's default: every 4 of the 32 one-step episodes of a step, 160 in 640 steps
            assert dumps[1] >= 640 // 4 > dumps[2]
        no_tensorboard, with_tensorboard = runs[0], runs[2]
        assert no_tensorboard[-2:] == ["0", "0"]  # no histogram written, no picture drawn (counted, not timed)
        assert int(with_tensorboard[-2]) > 0 and int(with_tensorboard[-1]) > 0
    bad = run_script("bench_logging.py", "--agents", "sac")
    assert bad.returncode == 2 and "--agents ['sac']: music has" in bad.stderr


@pytest.mark.slow
def test_bench_study_splits_each_run_into_parts_that_add_up() -> None:
    result = run_script("bench_study.py", "--agents", "a2c", "dqn", "--steps", "640")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "environment" in lines[1] and "evaluation forward" in lines[1] and "other" in lines[1]
    for line in lines[2:]:
        fields = line.split()
        seconds = [float(value) for value in fields[2::3]]
        shares = [float(value.rstrip("%")) for value in fields[4::3]]
        assert len(seconds) == len(shares) == 7
        # the parts cover the run's CPU time (each figure printed to 0.1 s: 8 roundings of at most 0.05 s)
        assert sum(seconds) == pytest.approx(float(fields[1]), abs=8 * 0.05)
        assert sum(shares) == pytest.approx(100, abs=0.5)
        assert all(value >= 0 for value in seconds[:-1])  # "other" is what is left; the timed parts are >= 0
    assert [line.split()[0] for line in lines[2:]] == ["a2c", "dqn", "all"]


@pytest.mark.slow
def test_bench_vec_prints_both_setups(data_root) -> None:
    result = run_script("bench_vec.py", "--data-dir", str(data_root), "--steps", "320", "--repeats", "1")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[2:]]
    assert [row[0] for row in rows] == ["a2c", "ppo", "dqn"]
    for row in rows:
        literal, batched, ratio = float(row[1]), float(row[3]), float(row[5].rstrip("x"))
        assert literal > 0 and batched > 0 and ratio > 0  # figures to read, not goals to assert
        assert row[7].endswith("x") and float(row[7].rstrip("x")) > 0  # the ceiling column
    bad = run_script("bench_vec.py", "--data-dir", str(data_root), "--steps", "8")
    assert bad.returncode == 2 and "--steps must be >= 32" in bad.stderr


def test_collapse_settings_prints_both_settings_with_intervals() -> None:
    result = run_script("collapse_settings.py", "--algo", "a2c", "--seeds", "2", "--steps", "64")
    assert result.returncode == 0, result.stderr
    rows = [line.split(" | ") for line in result.stdout.splitlines() if line.startswith("| A2C |")]
    assert [row[1] for row in rows] == ["SB3 defaults", "paper setup"]
    for row in rows:
        entropy = float(row[2].split()[0])
        assert 0 <= entropy <= np.log(50) + 1e-9 and "[" in row[2]  # a mean with its interval, at most log K
    assert "random policy -0.006, oracle 0.963" in result.stdout  # Music-v0's evaluation set
    bad = call_script("collapse_settings.py", "--seeds", "1")
    assert bad.returncode == 2 and "--seeds must be >= 2 (an interval needs two)" in bad.stderr


@pytest.mark.slow
def test_bench_tests_times_each_tier_in_a_fresh_clone() -> None:
    result = run_script("bench_tests.py", "--pytest-args", "tests/test_stats.py", "--top", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout
    assert lines[0].startswith(f"Tests of {head[:12]} in a fresh clone")
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "", "tests/test_stats.py"],
        cwd=PROJECT_ROOT, capture_output=True, text=True,
    )  # fmt: skip
    count = sum("::" in line for line in collected.stdout.splitlines())
    assert count >= 1 and lines[1].startswith("fast tier: ") and f" s wall, {count} tests, " in lines[1]
    assert "(exit status 0)" in lines[1]
    assert lines[2].startswith("slow tier: ") and " 0 tests, " in lines[2]  # test_stats.py has no slow test
    rows = [line.split() for line in lines[5:]]
    assert len(rows) == 2 and all(row[1] == "fast" and row[2].startswith("tests/test_stats.py::") for row in rows)
    assert float(rows[0][0]) >= float(rows[1][0])  # the slowest first
    bad = call_script("bench_tests.py", "--ref", "no-such-commit")
    assert bad.returncode == 2 and "--ref no-such-commit is not a commit of the git checkout" in bad.stderr


@pytest.mark.slow
def test_bench_catalogue_writes_a_movielens_shaped_file_and_prints_its_table(tmp_path) -> None:
    result = run_script("bench_catalogue.py", "--shapes", "ml-1m", "--steps", "64", "--work-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    written = tmp_path / "ml-1m" / "ratings.dat"
    lines = written.read_text().splitlines()
    assert len(lines) == 1_000_209 and re.fullmatch(r"\d+::\d+::[1-5]::\d+", lines[0])  # ML-1M's format, whole stars
    header, rule, row = result.stdout.strip().splitlines()
    assert header.startswith("| shape | users | movies | ratings |") and rule.startswith("|---|---:|")
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[:4] == ["ml-1m", "6,040", "3,706", "1,000,209"] and cells[8] == "1,208"  # 20 % held out
    assert float(cells[7]) > 0 and float(cells[10]) > 0  # a peak memory and an evaluation: figures, not goals
    bad = run_script("bench_catalogue.py", "--steps", "0", "--work-dir", str(tmp_path))
    assert bad.returncode == 2 and "--steps must be at least 1, got 0" in bad.stderr
