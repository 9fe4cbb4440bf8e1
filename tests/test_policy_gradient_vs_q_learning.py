"""The update-rule experiment (sb3_entropy.study.update_rule) and scripts/policy_gradient_vs_q_learning.py."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch
from conftest import call_script, run_script
from scipy import stats

from personalization_gym import MusicEnv
from sb3_entropy.metrics import entropy
from sb3_entropy.study.update_rule import mlp, run_update_rule


@pytest.fixture(scope="module")
def music() -> MusicEnv:
    return MusicEnv(n_eval=300)


def test_runs_are_determined_by_their_seed(music: MusicEnv) -> None:
    first, again = (run_update_rule(music, "policy_gradient", [16], 0.5, 20, seed=3, log_every=5) for _ in range(2))
    other = run_update_rule(music, "policy_gradient", [16], 0.5, 20, seed=4, log_every=5)
    np.testing.assert_equal(vars(first), vars(again))  # NaN (no change before the first update) equals NaN
    assert first.marginal_entropy != other.marginal_entropy
    assert first.updates == [0, 5, 10, 15, 20] and math.isnan(first.untaken_share[0])
    assert run_update_rule(music, "q_learning", [], 0.5, 12, seed=3, log_every=5).updates == [0, 5, 10, 12]


def test_both_rules_start_from_the_same_network_and_are_measured_exactly(music: MusicEnv) -> None:
    eval_set = music.eval_set()
    with torch.no_grad():
        outputs = mlp(20, [16], 50, torch.Generator().manual_seed(7))(torch.tensor(eval_set.obs, dtype=torch.float64))
    for rule, scale in (("policy_gradient", 1.0), ("q_learning", 0.1)):
        run = run_update_rule(music, rule, [16], 0.5, 5, seed=7, log_every=5)
        probs = torch.softmax(outputs / scale, dim=1).numpy()  # the Q-learner's policy is softmax(q / 0.1)
        p = probs.mean(axis=0)
        assert run.marginal_entropy[0] == pytest.approx(-(p * np.log(p)).sum(), rel=1e-12)
        assert run.marginal_entropy[0] == pytest.approx(entropy(p), rel=1e-12)
        assert run.expected_reward[0] == pytest.approx((probs * eval_set.expected).sum(axis=1).mean(), rel=1e-12)


def test_a_linear_q_learner_moves_only_taken_actions_and_a_policy_gradient_moves_all(music: MusicEnv) -> None:
    q = run_update_rule(music, "q_learning", [], 1.0, 40, seed=0, log_every=1)
    pg = run_update_rule(music, "policy_gradient", [], 1.0, 40, seed=0, log_every=1)
    assert q.untaken_share[1:] == [0.0] * 40
    assert all(0 < share < 1 for share in pg.untaken_share[1:])
    # with hidden layers, shared features carry a Q-update to other actions too
    deep_q = run_update_rule(music, "q_learning", [32], 1.0, 10, seed=0, log_every=1)
    assert all(share > 0 for share in deep_q.untaken_share[1:])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rule": "sarsa"}, r"rule must be one of \('policy_gradient', 'q_learning'\), got 'sarsa'"),
        ({"updates": 0}, r"updates must be an integer >= 1, got 0"),
        ({"lr": 0.0}, r"lr must be a finite number > 0, got 0.0"),
    ],
)
def test_bad_arguments(music: MusicEnv, kwargs, message) -> None:
    arguments = {"rule": "q_learning", "hidden": [], "lr": 0.1, "updates": 5, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=message):
        run_update_rule(music, **arguments)


def test_script_writes_the_figure_the_csv_and_a_table_that_agrees_with_it(tmp_path: Path) -> None:
    result = run_script("policy_gradient_vs_q_learning.py", "--seeds", "2", "--updates", "30", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    image = matplotlib.image.imread(tmp_path / "policy_gradient_vs_q_learning.png")
    assert image.ndim == 3 and image.shape[0] > 500 and image.shape[1] > 1000
    with open(tmp_path / "policy_gradient_vs_q_learning.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert {(row["network"], row["rule"], row["seed"]) for row in rows} == {
        (network, rule, seed) for network in ("linear", "[256, 256]")
        for rule in ("policy_gradient", "q_learning") for seed in ("0", "1")
    }  # fmt: skip
    final = [
        float(row["marginal_entropy"]) for row in rows
        if row["network"] == "linear" and row["rule"] == "q_learning" and row["updates"] == "30"
    ]  # fmt: skip
    half = stats.t.ppf(0.975, 1) * np.std(final, ddof=1) / math.sqrt(2)
    line = next(line for line in result.stdout.splitlines() if line.startswith("| linear | Q-learning |"))
    assert (
        f"| 0.0 [0.0, 0.0] | {np.mean(final):.3f} [{np.mean(final) - half:.3f}, {np.mean(final) + half:.3f}] |" in line
    )
    assert "Random policy -0.00" in result.stdout and "oracle 0.9" in result.stdout


def test_script_rejects_a_bad_settings_file(tmp_path: Path) -> None:
    settings = tmp_path / "bad.yml"
    settings.write_text("task: Personalization/Music-v0\nupdatez: 5\n")
    result = call_script("policy_gradient_vs_q_learning.py", "--config", str(settings), "--out", str(tmp_path))
    assert result.returncode == 2
    assert "unknown keys ['updatez'], missing keys ['batch_size'," in result.stderr
