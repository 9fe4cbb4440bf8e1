"""Budgets that are not whole rounds: SB3 trains whole rollouts (on-policy) or whole rounds of train_freq
(off-policy), so a budget is rounded up. trained_steps says by how much, checked against SB3's own count."""

from __future__ import annotations

import pytest

from sb3_entropy.agents import budget_round, make_agent, trained_steps

CASES = [  # algo, hyperparameters, batched, the round in steps
    ("a2c", {}, True, 32),
    ("a2c", {"n_steps": 64}, True, 64),
    ("a2c", {}, False, 32),
    ("ppo", {"n_steps": 256, "batch_size": 64}, True, 256),
    ("trpo", {}, True, 32),
    ("dqn", {}, True, 32),
    ("dqn", {"train_freq": 64}, True, 64),
    ("dqn", {"train_freq": 4}, False, 4),
    ("dqn", {"train_freq": (3, "episode")}, False, 3),  # episodes (one env only, SB3's rule) of one step each
    ("qrdqn", {}, True, 32),
]


@pytest.mark.parametrize(("algo", "hyperparameters", "batched", "unit"), CASES)
def test_trained_steps_is_what_sb3_trains(algo: str, hyperparameters: dict, batched: bool, unit: int) -> None:
    env_kwargs = {"n_actions": 4, "state_dim": 3, "n_eval": 10}
    for budget in (1, unit, unit + 1, 3 * unit - 5):
        model, _ = make_agent(algo, "Personalization/Behavior-v0", 0, [8], hyperparameters, env_kwargs, batched)
        assert budget_round(model) == unit
        model.learn(budget)
        assert model.num_timesteps == trained_steps(model, budget) == -(-budget // unit) * unit, (algo, budget)


def test_the_commands_say_when_they_round_a_budget_up(tmp_path) -> None:
    from conftest import call_script, tiny_experiment

    trained = call_script("train.py", "Personalization/Behavior-v0", "--algo", "a2c", "--timesteps", "1",
                          "--eval-freq", "1", "--net-arch", "8", "--env-kwargs", "n_actions=4", "state_dim=3",
                          "n_eval=10", "--save-dir", str(tmp_path / "models"))  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert (
        "a2c trains 32 steps: --timesteps 1 rounded up to SB3's whole rollouts (or rounds of train_freq)"
        in trained.stdout
    )
    assert "Personalization/Behavior-v0, 32 steps; score" in trained.stdout
    (tmp_path / "tiny.yml").write_text(tiny_experiment())
    study = call_script("reproduce.py", str(tmp_path / "tiny.yml"), "--steps", "40", "--seeds", "2", "--workers", "1",
                        "--out", str(tmp_path / "out"))  # fmt: skip
    assert study.returncode == 0, study.stderr
    assert "tiny: every agent trains 64 steps, 40 rounded up to SB3's whole rollouts" in study.stdout
    assert "2 seeds, 64 steps" in (tmp_path / "out" / "report.md").read_text()


def test_tuning_says_when_a_trial_trains_more_than_the_budget(tmp_path) -> None:
    from conftest import call_script, tiny_experiment

    (tmp_path / "tiny.yml").write_text(tiny_experiment())
    (tmp_path / "space.yml").write_text("a2c:\n  n_steps: {type: categorical, choices: [128]}\n")
    result = call_script("tune.py", str(tmp_path / "tiny.yml"), "--agents", "a2c", "--trials", "1", "--steps", "40",
                         "--evaluations", "1", "--workers", "1", "--search-space", str(tmp_path / "space.yml"),
                         "--out", str(tmp_path / "t"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (
        "A trial whose n_steps does not divide 40 trains whole rollouts, up to 128 steps; its line says how many."
        in (result.stdout)
    )
    assert "(n_steps=128, 128 steps trained (whole rollouts))" in result.stdout
