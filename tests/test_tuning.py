"""scripts/tune.py and sb3_entropy.study.tuning: reward-only tuning, its determinism, pruning, resume, outputs and
errors, and reproduce.py --hyperparams on the files it writes."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import matplotlib.image
import numpy as np
import optuna
import pytest
import yaml
from conftest import ACTION_TAGS, ENTROPY_TAGS, EXPOSURE_TAGS, PROJECT_ROOT, call_script, run_script
from hypothesis import given
from hypothesis import strategies as st

import sb3_entropy.report_card
from sb3_entropy.agents import AGENT_DEFAULTS
from sb3_entropy.metrics import Totals
from sb3_entropy.study import available_experiments, load_experiment
from sb3_entropy.study.experiments import (
    TUNED_DIR,
    TunedAgent,
    check_fresh_seeds,
    with_tuned_hyperparameters,
)
from sb3_entropy.study.tuning import TrialSeededTPESampler, open_storage, read_tuning, tune_agents
from sb3_entropy.study.tuning_files import DEFAULT_SEARCH_SPACE, hyperparameters_of, load_search_space

TINY = """
task: Personalization/Behavior-v0
task_kwargs: {n_actions: 6, state_dim: 4, n_eval: 200}
net_arch: [16]
steps: 320
eval_freq: 32
agents:
  a2c: {learning_rate: 1.0e-3}
  dqn: {learning_rate: 1.0e-3}
"""
TINY_ENV = {"n_actions": 6, "state_dim": 4, "n_eval": 200}


def tiny(tmp_path: Path, text: str = TINY) -> Path:
    path = tmp_path / "tiny.yml"
    path.write_text(text)
    return path


def tune(tmp_path: Path, name: str, trials: int = 6, seed: int = 0, workers: int = 1, **kwargs) -> dict:
    """Tune the tiny experiment's agents in this process (workers=1) with a storage of its own."""
    experiment = load_experiment(str(tiny(tmp_path)))
    return tune_agents(
        experiment, list(experiment.agents), load_search_space(), trials=trials, steps=320, seeds=[1000, 1001],
        storage=f"sqlite:///{tmp_path / name}.db", env_kwargs=TINY_ENV, evaluations=5, sampler_seed=seed,
        startup_trials=2, workers=workers, **kwargs,
    )  # fmt: skip


def record(tunings: dict) -> dict:
    """What a tuning run decided, trial by trial: state, parameters, value, and the choice."""
    return {
        agent: (
            [(t.number, t.state.name, t.params, t.value, t.user_attrs.get("rewards")) for t in tuning.trials],
            tuning.best.number,
        )
        for agent, tuning in tunings.items()
    }


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A sequential tuning run of the tiny experiment's A2C and DQN, 8 trials each."""
    return tune(tmp_path_factory.mktemp("plain"), "plain", trials=8)


def test_the_tuner_never_sees_entropy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plain: dict) -> None:
    # every entropy, action and exposure statistic the runs produce, and p(a) itself, replaced by noise
    noise = np.random.default_rng(123)
    real_metrics = sb3_entropy.report_card.metrics_of
    replaced = []

    def noisy_metrics(total):
        metrics = real_metrics(total)
        for key in (*ENTROPY_TAGS, *ACTION_TAGS, *EXPOSURE_TAGS):
            metrics[key] = float(noise.uniform(0, 10))
        replaced.append(metrics["entropy/marginal"])
        return metrics

    monkeypatch.setattr(sb3_entropy.report_card, "metrics_of", noisy_metrics)
    monkeypatch.setattr(Totals, "p", property(lambda total: noise.dirichlet(np.ones(total.n_actions))))
    noisy = tune(tmp_path, "noisy", trials=8)
    assert len(replaced) > 50  # the runs went through the replaced metrics
    assert record(noisy) == record(plain)


def test_a_sequential_tuning_run_is_deterministic(tmp_path: Path, plain: dict) -> None:
    first = record(plain)
    assert record(tune(tmp_path, "again", trials=8)) == first
    # one process per agent is still sequential within each study: the same trials
    assert record(tune(tmp_path, "two_workers", trials=8, workers=2)) == first
    # and the sampler's seed matters: another seed proposes other values
    other = record(tune(tmp_path, "other", trials=2, seed=1))
    assert [trial[2] for trial in other["a2c"][0]] != [trial[2] for trial in first["a2c"][0][:2]]


def test_pruning_follows_the_median_rule_on_the_first_seeds_reward(plain: dict) -> None:
    pruned_total = 0
    for agent, tuning in plain.items():
        settings = tuning.settings
        assert settings.warmup_evaluations == 5 // 3 and settings.startup_trials == 2
        for trial in tuning.trials:
            earlier = [t for t in tuning.trials if t.number < trial.number and t.state.name == "COMPLETE"]
            best_so_far = -np.inf
            for slot in sorted(trial.intermediate_values):
                best_so_far = max(best_so_far, trial.intermediate_values[slot])
                others = [t.intermediate_values[slot] for t in earlier if slot in t.intermediate_values]
                due = slot >= settings.warmup_evaluations and len(earlier) >= settings.startup_trials and others
                should_prune = bool(due) and best_so_far < statistics.median(others)
                last = slot == max(trial.intermediate_values)
                # a trial is pruned exactly at the first evaluation where the rule says so
                assert should_prune == (trial.state.name == "PRUNED" and last), (agent, trial.number, slot)
            if trial.state.name == "PRUNED":
                pruned_total += 1
                # it stopped early, during its first seed, and its second seed never ran
                assert trial.user_attrs["pruned_at_step"] < 320 and "rewards" not in trial.user_attrs
                assert trial.value == trial.intermediate_values[max(trial.intermediate_values)]
            else:  # a complete trial reported its first seed only, and its value is the mean over both seeds
                assert len(trial.user_attrs["rewards"]) == 2
                assert trial.value == pytest.approx(np.mean(trial.user_attrs["rewards"]), abs=0)
    assert pruned_total >= 2
    assert [len(tuning.trials) for tuning in plain.values()] == [8, 8]


def _trial_rows(path: Path) -> list[tuple]:
    """trials.csv without run times and trial numbers (an interrupted trial keeps its number: the rerun is next)."""
    with open(path, newline="") as stream:
        return [tuple(v for k, v in row.items() if k not in ("seconds", "trial")) for row in csv.DictReader(stream)]


def _states(database: Path, agent: str) -> list[tuple[str, bool]]:
    """Each trial's state, and whether its process has sampled its hyperparameters (it trains next, or trains),
    read without Optuna."""
    if not database.is_file():
        return []
    with sqlite3.connect(database) as connection:
        if not connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'trial_params'").fetchone():
            return []  # Optuna has not made its tables yet
        rows = connection.execute(
            "SELECT trials.state, EXISTS (SELECT 1 FROM trial_params AS p WHERE p.trial_id = trials.trial_id) "
            "FROM trials JOIN studies USING (study_id) WHERE studies.study_name = ? ORDER BY trials.number",
            (f"long/{agent}",),
        ).fetchall()
    return [(state, bool(sampled)) for state, sampled in rows]


def _start(tmp_path: Path, experiment: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "tune.py"), str(experiment), "--agents", "a2c",
         "--trials", "5", "--workers", "1", "--evaluations", "5", "--startup-trials", "2", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, cwd=PROJECT_ROOT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a terminal
    )  # fmt: skip


def _interrupt_during_a_trial(process: subprocess.Popen, database: Path, finished: int, sig: int) -> None:
    """Send ``sig`` once ``finished`` trials are done and the next one has its hyperparameters: before or during its
    training, which takes longer than this loop's 20 ms (a Ctrl-C that comes before the training stops the trial as
    the training starts)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        states = _states(database, "a2c")
        done = sum(state in ("COMPLETE", "PRUNED", "FAIL") for state, _ in states)
        if done >= finished and states[-1:] == [("RUNNING", True)]:
            break
        assert process.poll() is None, process.communicate()
        time.sleep(0.02)
    else:
        pytest.fail(f"no trial started after {finished} finished: {_states(database, 'a2c')}")
    os.killpg(process.pid, sig)
    process.communicate(timeout=60)


@pytest.mark.slow
def test_an_interrupted_tuning_run_resumes_to_the_same_choice(tmp_path: Path) -> None:
    experiment = tmp_path / "long.yml"
    experiment.write_text(TINY.replace("steps: 320", "steps: 3200"))
    whole = _start(tmp_path, experiment, "--out", str(tmp_path / "whole"))
    _, stderr = whole.communicate(timeout=300)
    assert whole.returncode == 0, stderr

    out, database = tmp_path / "cut", tmp_path / "cut" / "long" / "tuning.db"
    first = _start(tmp_path, experiment, "--out", str(out))
    _interrupt_during_a_trial(first, database, finished=1, sig=signal.SIGINT)  # Ctrl-C
    assert first.returncode == 130 and _states(database, "a2c")[-1] == ("FAIL", True)
    second = _start(tmp_path, experiment, "--out", str(out), "--resume")
    _interrupt_during_a_trial(second, database, finished=3, sig=signal.SIGKILL)  # a crash: no time to clean up
    assert _states(database, "a2c")[-1] == ("RUNNING", True)  # left behind by the killed process
    resumed = run_script("tune.py", str(experiment), "--agents", "a2c", "--trials", "5", "--workers", "1",
                         "--evaluations", "5", "--startup-trials", "2", "--out", str(out), "--resume")  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    states = [state for state, _ in _states(database, "a2c")]
    assert states.count("FAIL") == 2 and "RUNNING" not in states  # the two interrupted trials, failed and rerun
    # the same trials, values and choice as the uninterrupted run
    assert _trial_rows(out / "long" / "trials.csv") == _trial_rows(tmp_path / "whole" / "long" / "trials.csv")
    assert _without_seconds(out / "long" / "tuned.yml") == _without_seconds(tmp_path / "whole" / "long" / "tuned.yml")


def test_a_ctrl_c_during_optunas_writes_waits_for_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plain: dict
) -> None:
    """Ctrl-C (a real SIGINT) while Optuna stores a new trial, and while it stores a trial's result: the trial is
    failed as interrupted in the first case and kept in the second, none is left running, the KeyboardInterrupt
    is the one raised (not an error of Optuna's half-done bookkeeping), and the resumed runs repeat the
    uninterrupted one."""
    real_before, real_after = TrialSeededTPESampler.before_trial, TrialSeededTPESampler.after_trial
    pending = {"before": 3, "after": 5}  # the trial numbers to interrupt at, once each

    def ctrl_c_at(moment: str, trial) -> None:
        if pending.get(moment) == trial.number:
            del pending[moment]
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(
        TrialSeededTPESampler, "before_trial", lambda self, s, t: (ctrl_c_at("before", t), real_before(self, s, t))
    )
    monkeypatch.setattr(
        TrialSeededTPESampler, "after_trial", lambda self, s, t, *a: (real_after(self, s, t, *a), ctrl_c_at("after", t))
    )
    storage = open_storage(f"sqlite:///{tmp_path / 'cut'}.db")
    # Python's own Ctrl-C handler, as in a terminal, even where this test runs with SIGINT ignored (a job started in
    # the background by a non-interactive shell; the tuner then leaves SIGINT alone, as its pool workers do)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        for _ in pending.copy():
            with pytest.raises(KeyboardInterrupt):
                tune(tmp_path, "cut", trials=8, resume=(tmp_path / "cut.db").exists())
            states = [trial.state.name for trial in optuna.load_study(study_name="tiny/a2c", storage=storage).trials]
            assert "RUNNING" not in states, states
    finally:
        signal.signal(signal.SIGINT, previous)
    assert states[3] == "FAIL" and states[5] != "FAIL", states  # interrupted before its training; after it
    resumed = tune(tmp_path, "cut", trials=8, resume=True)
    # the trials and the choice of the uninterrupted run (the interrupted trial's number is taken by its rerun)
    for agent in ("a2c", "dqn"):
        assert [trial[1:] for trial in record(resumed)[agent][0]] == [trial[1:] for trial in record(plain)[agent][0]]
        assert resumed[agent].best.params == plain[agent].best.params


def _without_seconds(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    for entry in data["tuning"]["agents"].values():
        del entry["seconds"], entry["trial"]
        for trial in entry["history"]:
            del trial["trial"]
    return data


def test_resume_checks_the_settings_and_a_new_run_refuses_an_existing_study(tmp_path: Path) -> None:
    tune(tmp_path, "store", trials=2)
    with pytest.raises(
        ValueError, match=r"a tuning study 'tiny/a2c' already exists in .*store\.db: resume it to go on"
    ):
        tune(tmp_path, "store", trials=3)
    message = r"^the tuning study 'tiny/a2c' in .* was run with other settings \(sampler_seed: 0\)"
    with pytest.raises(ValueError, match=message):
        tune(tmp_path, "store", trials=3, seed=5, resume=True)
    more = tune(tmp_path, "store", trials=3, resume=True)
    assert [len(tuning.trials) for tuning in more.values()] == [3, 3]


@pytest.fixture(scope="module")
def tuned_tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """tune.py on the tiny experiment, 3 trials on seeds 7 and 9: the experiment, the output folder, the storage.

    DQN searches only learning rates too small to learn anything, so that it must come out flagged.
    """
    tmp_path = tmp_path_factory.mktemp("tuned")
    experiment = tiny(tmp_path)
    space = yaml.safe_load(DEFAULT_SEARCH_SPACE.read_text())
    space["dqn"]["learning_rate"] = {"type": "categorical", "choices": [1.0e-12, 2.0e-12]}
    (tmp_path / "space.yml").write_text(yaml.safe_dump(space, sort_keys=False))
    storage = f"sqlite:///{tmp_path / 'elsewhere.db'}"  # any storage URL, outputs still in --out
    tuned = call_script("tune.py", str(experiment), "--trials", "3", "--seeds", "7", "9", "--evaluations", "4", "--workers",
                        "1", "--search-space", str(tmp_path / "space.yml"), "--storage", storage, "--out", str(tmp_path / "t"))  # fmt: skip
    assert tuned.returncode == 0, tuned.stderr
    return experiment, tmp_path / "t" / "tiny", storage


def test_tune_then_reproduce_end_to_end(tmp_path: Path, tuned_tiny: tuple[Path, Path, str]) -> None:
    experiment, folder, storage = tuned_tiny
    assert sorted(p.name for p in folder.iterdir()) == ["trials.csv", "tuned.yml", "tuning.png"]
    assert Path(storage.removeprefix("sqlite:///")).is_file()
    image = matplotlib.image.imread(folder / "tuning.png")
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 600

    # tuned.yml, trials.csv and the storage say the same, and the file is an experiment file
    data = yaml.safe_load((folder / "tuned.yml").read_text())
    studies = read_tuning("tiny", ["a2c", "dqn"], storage)
    with open(folder / "trials.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [(row["agent"], int(row["trial"]), row["state"]) for row in rows] == [
        (agent, t.number, t.state.name) for agent, tuning in studies.items() for t in tuning.trials
    ]
    for agent, tuning in studies.items():
        entry = data["tuning"]["agents"][agent]
        best = tuning.best
        assert entry["chosen"] == best.params and entry["reward"] == best.value and entry["trial"] == best.number
        assert (entry["trials"], entry["steps"], entry["seeds"], entry["evaluations"]) == (3, 320, [7, 9], 4)
        assert [h["reward"] for h in entry["history"]] == [t.value for t in tuning.trials]
        assert data["agents"][agent] == {"learning_rate": 1e-3} | hyperparameters_of(best.params)
        for row in (row for row in rows if row["agent"] == agent):
            trial = tuning.trials[int(row["trial"])]
            assert float(row["reward"]) == trial.value
            assert row["rewards"].split() == [repr(r) for r in trial.user_attrs.get("rewards", [])]
    assert data["tuning"]["agents"]["dqn"]["chosen"]["learning_rate"] in (1e-12, 2e-12)
    assert "entropy" not in json.dumps(data["tuning"]["agents"])  # nothing of entropy was recorded for the tuner
    tuned_experiment = load_experiment(str(folder / "tuned.yml"))
    assert tuned_experiment.tuning.seeds == [7, 9] and tuned_experiment.tuning.experiment == "tiny"

    # the study runs the tuned agents, on fresh seeds, and says how they were tuned
    study = call_script("reproduce.py", str(experiment), "--hyperparams", str(folder / "tuned.yml"), "--seeds", "2",
                        "--workers", "1", "--out", str(tmp_path / "r"))  # fmt: skip
    assert study.returncode == 0, study.stderr
    for agent in ("a2c", "dqn"):
        saved = json.loads((tmp_path / "r" / "tiny_tuned" / "runs" / f"{agent}_seed0.json").read_text())
        assert saved["settings"]["hyperparameters"] == data["agents"][agent]
    report = (tmp_path / "r" / "report.md").read_text()
    dqn = data["tuning"]["agents"]["dqn"]
    assert "A2C, DQN tuned for reward alone, on seeds 7, 9" in report
    assert "no entropy reached the tuner" in report
    assert (
        f"DQN: learning_rate={dqn['chosen']['learning_rate']:.3g}, exploration_fraction="
        f"{dqn['chosen']['exploration_fraction']:.3g}" in report
    )
    assert f"(3 trials of 320 steps on seeds 7, 9; {dqn['pruned']} pruned, {dqn['failed']} failed" in report
    assert "DQN (not above random: did not learn with 3 trials of tuning)" in report
    assert "The study's seeds are disjoint from the tuning seeds (7, 9)" in report
    # the study draws the tuning its file records, as tune drew it: the same figure, to the byte
    assert (tmp_path / "r" / "tiny_tuned" / "tuning.png").read_bytes() == (folder / "tuning.png").read_bytes()


def test_reproduce_refuses_to_judge_tuned_agents_on_their_tuning_seeds(tuned_tiny: tuple[Path, Path, str]) -> None:
    experiment, folder, _ = tuned_tiny
    file = folder / "tuned.yml"
    result = call_script("reproduce.py", str(experiment), "--hyperparams", str(file), "--seeds", "8")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"reproduce.py: error: experiment tiny_tuned: its agents were tuned on seeds [7, 9] ({file}), and the "
        "study would run seeds 0-7: seed(s) [7] in both. A tuned agent must be judged on seeds it was not tuned "
        "on: tune on other seeds, or run fewer seeds (personalization-gym tune --seeds chooses the tuning seeds, "
        "reproduce --seeds how many seeds a study runs)"
    )
    # the tuned file run as an experiment of its own is refused the same way
    result = call_script("reproduce.py", str(file), "--seeds", "10")
    assert result.returncode == 2 and "seed(s) [7, 9] in both" in result.stderr
    # seeds 0-6 are fresh
    experiment_tuned = with_tuned_hyperparameters(load_experiment(str(experiment)), load_experiment(str(file)))
    check_fresh_seeds(experiment_tuned, list(range(7)))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["music", "--agents", "a2c", "sac"],
            "--agents: experiment music has no agent ['sac']; valid: ['a2c', 'dqn', 'ppo', 'trpo', 'qrdqn']",
        ),
        (["frontier_music"], "experiment frontier_music is a frontier study: tune the experiment it extends instead"),
        (["music", "--trials", "0"], "--trials must be an integer >= 1, got 0"),
        (["music", "--agents", "a2c", "a2c"], "--agents names ['a2c'] more than once: give each once"),
        (["music", "--seeds", "3", "3"], "--seeds names [3] more than once: give each once"),
        (["music", "--seeds", "-1"], "--seeds must be integers >= 0, got -1"),
        (["music", "--evaluations", "0"], "--evaluations must be an integer >= 1, got 0"),
        (
            ["music", "--evaluations", "1000000", "--steps", "64"],
            "--evaluations 1,000,000: a run of 64 steps is evaluated at most once a step; give at most 64",
        ),
        (
            ["music", "--seeds", "0", "1", "1000"],
            "--seeds [0, 1]: a study of music runs seeds 0-4, and a tuned agent is judged on seeds it was not tuned "
            "on; tune on others (default: 1000 1001)",
        ),
        (
            ["music", "--storage", "notaurl"],
            "--storage 'notaurl' is not a database URL such as sqlite:///tuning.db or postgresql://host/db",
        ),
        (
            ["music", "--storage", "sqlite:////proc/no/such/folder/tuning.db"],
            "--storage 'sqlite:////proc/no/such/folder/tuning.db': cannot open the database (unable to open database "
            "file); give a database the tuning can open (sqlite:///PATH: a file in a writable folder that exists)",
        ),
        (["nope"], "unknown experiment 'nope'; valid: " + str(available_experiments()) + " or a path to a .yml file"),
        (
            ["search_space"],
            "unknown experiment 'search_space'; valid: " + str(available_experiments()) + " or a path to a .yml file",
        ),
    ],
)
def test_bad_tune_command_lines(args: list[str], message: str) -> None:
    result = call_script("tune.py", *args)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"tune.py: error: {message}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "sac: {learning_rate: {type: float, low: 0.1, high: 1.0}}",
            "unknown algorithm 'sac'; valid: ['a2c', 'ppo', 'trpo', 'dqn', 'qrdqn']",
        ),
        ("a2c: []", "a2c must map hyperparameter names to distributions, got []"),
        ("a2c: {lr: {type: float, low: 0.1, high: 1.0}}", "a2c.lr: unknown hyperparameter(s) ['lr'] for a2c; valid: "),
        (
            "qrdqn: {policy_kwargs.quantiles: {type: categorical, choices: [10, 20]}}",
            "qrdqn.policy_kwargs.quantiles: unknown argument 'quantiles' of qrdqn's QRDQNPolicy; valid: ",
        ),
        (
            "a2c: {policy_kwargs: {type: categorical, choices: [1, 2]}}",
            "a2c.policy_kwargs: policy_kwargs is not tuned whole: name one policy argument as policy_kwargs.NAME",
        ),
        (
            "a2c: {learning_rate: {low: 0.1, high: 1.0}}",
            "a2c.learning_rate: must be a mapping with type float, int or categorical",
        ),
        (
            "a2c: {learning_rate: {type: float, low: 1.0, high: 0.1}}",
            "a2c.learning_rate: low must be below high, got low=1.0, high=0.1",
        ),
        (
            "a2c: {learning_rate: {type: float, low: 0, high: 0.1, log: true}}",
            "a2c.learning_rate: a log scale needs low > 0, got low=0",
        ),
        (
            "a2c: {learning_rate: {type: float, low: x, high: 0.1}}",
            "a2c.learning_rate: low must be a finite number, got 'x'",
        ),
        (
            "a2c: {learning_rate: {type: float, low: 0.1, high: .inf}}",
            "a2c.learning_rate: high must be a finite number, got inf",
        ),
        ("ppo: {n_epochs: {type: int, low: 1.5, high: 10}}", "ppo.n_epochs: low must be an integer, got 1.5"),
        (
            "a2c: {learning_rate: {type: float, low: 0.1, high: 1.0, step: 0.1}}",
            "a2c.learning_rate: unknown key(s) ['step'] for type float; valid: ['type', 'low', 'high', 'log']",
        ),
        (
            "a2c: {max_grad_norm: {type: categorical, choices: []}}",
            "a2c.max_grad_norm: choices must be a non-empty list of values, got []",
        ),
        (
            "a2c: {max_grad_norm: {type: categorical, choices: [0.5, 0.5]}}",
            "a2c.max_grad_norm: choices must differ from each other, got [0.5, 0.5]",
        ),
        (
            "a2c: {max_grad_norm: {type: categorical, choices: [[0.5]]}}",
            "a2c.max_grad_norm: a choice must be a number, a string, true/false or null, got [0.5]",
        ),
        (
            "a2c: {n_steps: {type: categorical, choices: [32, 48]}}",
            "a2c.n_steps: a2c: n_steps=48 is not a multiple of 32, so it cannot be collected in batches of 32 envs",
        ),
        ("ppo: {gamma: {type: float, low: 0.9, high: 1.5}}", "ppo.gamma: ppo: gamma must be in [0, 1], got 1.5"),
        (
            "dqn: {learning_starts: {type: categorical, choices: [0, 1.0e+3]}}",
            "dqn.learning_starts: dqn: learning_starts must be an integer, got 1000.0",
        ),
        (
            "ppo: {n_steps: {type: int, low: 32, high: 256}}",
            "ppo.n_steps: an int range gives values that are not multiples of 32; list the values as a categorical",
        ),
        ("a2c: {learning_rate: {type: float, low: 0.1, high: 1.0}", "not valid YAML: "),
        ("[a2c]", "must map algorithms (['a2c', 'ppo', 'trpo', 'dqn', 'qrdqn']) to their dimensions, got ['a2c']"),
    ],
)
def test_bad_search_spaces_are_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "space.yml"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        load_search_space(path)
    assert str(error.value).startswith(f"search space {path}: ")
    assert message in str(error.value)


def test_a_bad_search_space_stops_tune_before_anything_trains(tmp_path: Path) -> None:
    path = tmp_path / "space.yml"
    path.write_text("a2c: {n_steps: {type: categorical, choices: [32, 48]}}\n")
    result = call_script("tune.py", "music", "--agents", "a2c", "--search-space", str(path), "--out", str(tmp_path))
    assert result.returncode == 2 and not (tmp_path / "music").exists()
    assert result.stderr.strip().splitlines()[-1].startswith(f"tune.py: error: search space {path}: a2c.n_steps: ")
    path.write_text("a2c: {n_steps: {type: categorical, choices: [32, 64]}}\n")
    result = call_script("tune.py", "music", "--agents", "ppo", "--search-space", str(path), "--out", str(tmp_path))
    assert result.stderr.strip().splitlines()[-1] == (
        f"tune.py: error: --search-space {path}: no dimensions for ['ppo'], the algorithm(s) of the agents to tune; "
        "it has ['a2c']"
    )
    # the literal setup takes any n_steps
    path.write_text("a2c: {n_steps: {type: categorical, choices: [32, 48]}}\n")
    assert [d.choices for d in load_search_space(path, batched=False)["a2c"]] == [(32, 48)]


def test_the_packaged_search_space_covers_every_algorithm() -> None:
    space = load_search_space()
    assert set(space) == set(AGENT_DEFAULTS)
    for algo, dimensions in space.items():
        assert dimensions[0].name == "learning_rate", algo  # every algorithm tunes its learning rate
        assert "ent_coef" not in [d.name for d in dimensions]  # the diversity regulariser is not a tuning knob


def test_packaged_tuned_hyperparameters() -> None:
    files = sorted(TUNED_DIR.glob("*.yml"))
    # every experiment whose data is here, and MovieLens-100K (downloaded by the user; docs/tuning.md)
    assert {path.stem for path in files} == {"music", "mnist", "behavior", "ads", "movielens", "digits", "sample"}
    for path in files:
        experiment = load_experiment(path.stem)
        tuned = load_experiment(str(path))
        assert tuned.tuning.experiment == experiment.name
        # every agent of the experiment was tuned
        assert set(tuned.tuning.agents) == set(experiment.agents)
        check_fresh_seeds(with_tuned_hyperparameters(experiment, tuned), list(range(experiment.seeds)))
        data = yaml.safe_load(path.read_text())
        for agent, entry in data["tuning"]["agents"].items():
            # the agent runs with what was chosen, over the experiment's own settings
            chosen = hyperparameters_of(entry["chosen"])
            assert tuned.agents[agent].hyperparameters == {**experiment.agents[agent].hyperparameters, **chosen}
            complete = [h for h in entry["history"] if h["state"] == "COMPLETE"]
            assert entry["reward"] == max(h["reward"] for h in complete) and len(entry["history"]) == entry["trials"]


def test_reproduce_with_the_packaged_tuned_hyperparameters(tmp_path: Path) -> None:
    result = call_script("reproduce.py", "music", "--hyperparams", "tuned", "--quick", "--agents", "qrdqn",
                         "--seeds", "1", "--out", str(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    tuned = yaml.safe_load((TUNED_DIR / "music.yml").read_text())
    saved = json.loads((tmp_path / "music_tuned" / "runs" / "qrdqn_seed0.json").read_text())
    assert saved["settings"]["hyperparameters"] == tuned["agents"]["qrdqn"]  # policy_kwargs.n_quantiles included
    result = call_script("reproduce.py", "cifar10", "--hyperparams", "tuned", "--quick")
    assert result.returncode == 2 and "--hyperparams tuned: no tuned hyperparameters ship for cifar10" in result.stderr


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_trials_of_another_machine_are_rerun_only_once_their_heartbeat_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sb3_entropy.study.tuning as tuning

    tune(tmp_path, "shared", trials=1)
    storage = tuning.open_storage(f"sqlite:///{tmp_path / 'shared'}.db")
    study = optuna.load_study(study_name="tiny/a2c", storage=storage)
    beating, stopped = study.ask(), study.ask()  # two trials another machine runs; the second one's machine died
    for trial in (beating, stopped):
        trial.set_user_attr("host", "another-machine")
        trial.set_user_attr("pid", 1)
    storage.record_heartbeat(stopped._trial_id)
    alive = threading.Event()
    alive.set()

    def beat() -> None:  # the other machine, still running its trial
        while alive.is_set():
            storage.record_heartbeat(beating._trial_id)
            time.sleep(0.2)

    heart = threading.Thread(target=beat)
    heart.start()
    monkeypatch.setattr(tuning, "GRACE_SECONDS", 2)  # instead of 5 minutes
    time.sleep(3)
    try:
        more = tune(tmp_path, "shared", trials=3, resume=True)
    finally:
        alive.clear()
        heart.join()
    states = {t.number: t.state.name for t in optuna.load_study(study_name="tiny/a2c", storage=storage).trials}
    assert states[stopped.number] == "FAIL" and states[beating.number] == "RUNNING"
    # the stopped trial was interrupted, not finished; the beating one, still running, takes one of a2c's 3
    # places: 2 finished here beside it (dqn, alone, 3)
    assert {agent: len(t.trials) for agent, t in more.items()} == {"a2c": 2, "dqn": 3}
    assert stopped.number not in [t.number for t in more["a2c"].trials]


def test_more_workers_than_agents_share_a_study(tmp_path: Path) -> None:
    experiment = load_experiment(str(tiny(tmp_path)))
    tunings = tune_agents(
        experiment, ["a2c"], load_search_space(), trials=4, steps=320, seeds=[1000], env_kwargs=TINY_ENV,
        storage=f"sqlite:///{tmp_path / 'shared.db'}", evaluations=5, startup_trials=2, workers=2,
    )  # fmt: skip
    trials = tunings["a2c"].trials
    # two processes ran trials of the one study until 4 had finished: exactly 4 (a worker that starts a fifth
    # beside the fourth leaves it, unrun and uncounted), numbered 0-3
    assert len(trials) == 4 and len({t.user_attrs["pid"] for t in trials}) == 2
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]


def test_the_tune_command_names_the_flags_for_a_study_that_exists(tmp_path: Path) -> None:
    """The library says what is wrong with the study (sb3_entropy.study.tuning); the command adds its flags."""
    args = (str(tiny(tmp_path)), "--agents", "dqn", "--trials", "1", "--steps", "64", "--seeds", "1000",
            "--evaluations", "2", "--workers", "1", "--out", str(tmp_path / "out"))  # fmt: skip
    assert call_script("tune.py", *args).returncode == 0
    again = call_script("tune.py", *args)
    assert again.returncode == 2
    last = again.stderr.strip().splitlines()[-1]
    assert last.startswith("tune.py: error: a tuning study 'tiny/dqn' already exists in sqlite:///")
    assert last.endswith(
        ": resume it to go on with it, or tune into another storage (--resume goes on with a study; --out or "
        "--storage chooses another storage)"
    )


def test_a_hyperparams_file_without_a_tuning_section_is_named_by_the_flag(tmp_path: Path) -> None:
    experiment = tiny(tmp_path)
    plain = tmp_path / "plain.yml"
    plain.write_text(TINY)
    result = call_script("reproduce.py", str(experiment), "--hyperparams", str(plain), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "reproduce.py: error: --hyperparams: tuned file plain: the file has no tuning section; give a tuned.yml that "
        "personalization-gym tune wrote"
    )
    with pytest.raises(ValueError, match=r"^tuned file plain: the file has no tuning section"):  # the library's words
        with_tuned_hyperparameters(load_experiment(str(experiment)), load_experiment(str(plain)))


def test_more_evaluations_than_steps_are_refused_by_the_library(tmp_path: Path) -> None:
    experiment = load_experiment(str(tiny(tmp_path)))
    with pytest.raises(ValueError, match=r"^evaluations must be at most steps \(64\): .* got 65$"):
        tune_agents(
            experiment, ["a2c"], load_search_space(), trials=1, steps=64, seeds=[1000], env_kwargs=TINY_ENV,
            storage=f"sqlite:///{tmp_path / 'db.db'}", evaluations=65,
        )  # fmt: skip
    assert not (tmp_path / "db.db").exists()  # refused before the storage was opened


# ------------------------------------------------------------------------------------------------------------
# A tuned file's history: the record tuning.png is drawn from, checked against the file's counts and choice


def history_entry(number: int, state: str, reward: float | None) -> dict:
    return {"trial": number, "state": state, "reward": reward, "params": {"learning_rate": 0.001}}


def tuned_entry(history: list[dict]) -> dict:
    """A tuned agent's entry whose counts and choice agree with ``history``, as tune writes one."""
    complete = [h for h in history if h["state"] == "COMPLETE"]
    best = max(complete, key=lambda h: (h["reward"], -h["trial"])) if complete else None
    return {
        "chosen": {} if best is None else best["params"], "trials": len(history),
        "pruned": sum(h["state"] == "PRUNED" for h in history), "failed": sum(h["state"] == "FAIL" for h in history),
        "steps": 320, "seeds": [7], "reward": None if best is None else best["reward"],
        **({"trial": best["trial"]} if best else {}), "history": history,
    }  # fmt: skip


histories = st.lists(
    st.tuples(st.sampled_from(["COMPLETE", "PRUNED", "FAIL"]), st.floats(-1, 1, allow_nan=False)),
    min_size=1,
    max_size=8,
).map(lambda trials: [history_entry(i, state, None if state == "FAIL" else r) for i, (state, r) in enumerate(trials)])


@given(histories)
def test_a_history_that_agrees_with_its_counts_is_read_back_trial_by_trial(history: list[dict]) -> None:
    tuned = TunedAgent.from_mapping("a2c", tuned_entry(history))
    assert [(r.number, r.state, r.reward) for r in tuned.history] == [
        (h["trial"], h["state"], h["reward"]) for h in history
    ]
    assert (tuned.trials, tuned.count("PRUNED"), tuned.count("FAIL")) == (len(history), tuned.pruned, tuned.failed)


@given(histories, st.data())
def test_a_history_that_contradicts_its_file_is_refused(history: list[dict], data: st.DataObject) -> None:
    """Each way a history can disagree with the rest of its entry: a trial listed twice, a count that says
    otherwise, a chosen trial that is missing, not complete or of another reward."""
    entry = tuned_entry(history)
    ways = ["repeat", "count"] + (["chosen missing", "chosen reward"] if "trial" in entry else [])
    way = data.draw(st.sampled_from(ways))
    if way == "repeat":
        entry["history"] = [*history, history[-1]]
        entry["trials"] += 1
        message = rf"history lists trial\(s\) \[{history[-1]['trial']}\] more than once"
    elif way == "count":
        key = data.draw(st.sampled_from(["trials", "pruned", "failed"]))
        entry[key] += data.draw(st.sampled_from([-1, 1])) if entry[key] else 1
        message = r"history holds \{'trials': .*\}, and the counts say \{.*\}: the two must agree"
    elif way == "chosen missing":
        entry["trial"] = len(history)
        message = rf"trial {len(history)} \(reward .*\) is the one chosen, and history has no such trial"
    else:
        entry["reward"] += 1.0
        message = rf"trial {entry['trial']} \(reward .*\) is the one chosen, and history gives it state COMPLETE"
    with pytest.raises(ValueError, match=message):
        TunedAgent.from_mapping("a2c", entry)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (history_entry(0, "COMPLETE", None), r"a2c: history\[0\]: reward: a complete trial has one, a failed trial "
                                             r"none; trial 0 is COMPLETE with reward None"),
        (history_entry(0, "FAIL", 0.5), r"trial 0 is FAIL with reward 0.5"),
        (history_entry(0, "RUNNING", 0.5), r"state must be one of \['COMPLETE', 'PRUNED', 'FAIL'\], got 'RUNNING'"),
        (history_entry(-1, "PRUNED", 0.5), r"trial must be an integer >= 0 \(the trial's number\), got -1"),
        (history_entry(0, "PRUNED", "high"), r"a2c: history\[0\]: reward must be a finite number, got 'high'"),
        ({**history_entry(0, "COMPLETE", 0.5), "rewards": 0.5}, r"rewards must be a list of numbers \(one per tuning seed\)"),
        ({**history_entry(0, "COMPLETE", 0.5), "seed": 3}, r"history\[0\]: unknown key\(s\) \['seed'\]"),
        ({"trial": 0, "state": "COMPLETE", "reward": 0.5}, r"history\[0\]: missing key\(s\) \['params'\]"),
    ],
)  # fmt: skip
def test_bad_history_entries(entry: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TunedAgent.from_mapping("a2c", {**tuned_entry([history_entry(0, "PRUNED", 0.1)]), "history": [entry]})


def test_the_packaged_tuned_studies_draw_their_tunings(tmp_path: Path) -> None:
    """reproduce --hyperparams tuned writes tuning.png beside the study's figures: the tuned agents' panels."""
    result = call_script("reproduce.py", "music", "--hyperparams", "tuned", "--quick", "--agents", "a2c", "qrdqn",
                         "--seeds", "1", "--steps", "200", "--out", str(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    image = matplotlib.image.imread(tmp_path / "music_tuned" / "tuning.png")
    assert image.shape[:2] == (410, 920)  # one row of two panels, as tuning_figure sizes it: 4.6 x 3.6 + 0.5 in

    def holds(panel: np.ndarray, color: str) -> bool:  # some pixel exactly the colour: a marker's inside
        rgb = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)]) / 255
        return bool(np.any(np.all(np.abs(panel[..., :3] - rgb) < 1e-6, axis=-1)))

    # each panel in its agent's colour of the study's other views (TensorBoard's palette by place: slate, cyan)
    left, right = image[:360, :460], image[:360, 460:]
    assert holds(left, "#425066") and not holds(left, "#12b5cb")
    assert holds(right, "#12b5cb") and not holds(right, "#425066")
