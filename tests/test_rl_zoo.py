"""EntropyCallback named in an rl-baselines3-zoo hyperparameter file, trained by rl_zoo3.train as users run it
(a fresh process each: in the slow tier)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from personalization_gym import MusicEnv

ENV_ID = "Personalization/Music-v0"
N_EVAL = 2000


def train_with_rl_zoo(folder: Path, normalize: bool) -> subprocess.CompletedProcess:
    hyperparameters = {
        ENV_ID: {
            "n_timesteps": 2048,
            "policy": "MlpPolicy",
            "n_envs": 4,
            "n_steps": 32,
            "batch_size": 64,
            "learning_rate": 3e-3,
            "normalize": normalize,
            "callback": [{"sb3_entropy.EntropyCallback": {"eval_freq": 512}}],
        }
    }
    (folder / "ppo.yml").write_text(yaml.safe_dump(hyperparameters))
    command = [
        sys.executable, "-m", "rl_zoo3.train", "--algo", "ppo", "--env", ENV_ID, "--gym-packages", "personalization_gym",
        "-conf", "ppo.yml", "-f", "logs", "--tensorboard-log", "tb", "--seed", "0", "--eval-freq", "-1",
        "--env-kwargs", f"n_eval:{N_EVAL}", "--device", "cpu",
    ]  # fmt: skip
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=600)


def marginal_entropy(model: PPO, states: np.ndarray) -> float:
    """H(p) of the policy's mean action distribution, by an independent forward pass through its network."""
    with torch.no_grad():
        latent = model.policy.mlp_extractor.forward_actor(torch.as_tensor(np.array(states, dtype=np.float32)))
        probs = torch.softmax(model.policy.action_net(latent).double(), dim=1).numpy()
    p = probs.mean(axis=0)
    return float(-(p * np.log(p)).sum())


@pytest.mark.slow
@pytest.mark.parametrize("normalize", [False, True], ids=["raw", "normalize"])
def test_rl_zoo_trains_with_the_callback_from_its_yaml(normalize: bool, tmp_path: Path) -> None:
    run = train_with_rl_zoo(tmp_path, normalize)
    assert run.returncode == 0, run.stderr[-3000:]
    (event_folder,) = (tmp_path / "tb" / "Personalization-Music-v0").iterdir()
    events = EventAccumulator(str(event_folder), size_guidance={"scalars": 0})
    events.Reload()
    logged = events.Scalars("entropy/marginal")
    assert [event.step for event in logged] == [0, 512, 1024, 1536, 2048]
    assert {"eval/expected_reward", "entropy/per_state"} <= set(events.Tags()["scalars"])

    # recompute the last value from the model and the normalization statistics rl_zoo3 saved
    run_folder = tmp_path / "logs" / "ppo" / "Personalization-Music-v0_1"
    model = PPO.load(run_folder / "Personalization-Music-v0.zip", device="cpu")
    states = MusicEnv(n_eval=N_EVAL).eval_set().obs
    raw_entropy = marginal_entropy(model, states)
    if not normalize:
        assert logged[-1].value == pytest.approx(raw_entropy, rel=1e-5)
        return
    statistics = VecNormalize.load(
        str(run_folder / "Personalization-Music-v0" / "vecnormalize.pkl"), DummyVecEnv([lambda: MusicEnv(n_eval=10)])
    )
    mean, var = statistics.obs_rms.mean, statistics.obs_rms.var
    normalized = np.clip((states - mean) / np.sqrt(var + statistics.epsilon), -statistics.clip_obs, statistics.clip_obs)
    assert logged[-1].value == pytest.approx(marginal_entropy(model, normalized), rel=1e-5)
    # raw states would have given another value: the test tells the two apart
    print(f"H(p) logged {logged[-1].value:.5f}, from raw states {raw_entropy:.5f}")
    assert abs(raw_entropy - logged[-1].value) > 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("normalize", [False, True], ids=["raw", "normalize"])
def test_evaluate_reports_an_rl_zoo_run_and_a_saved_dqn_as_their_callbacks_logged(
    normalize: bool, tmp_path: Path
) -> None:
    """personalization-gym evaluate, run as users run it, on the folder rl_zoo3.train wrote and a model.save()d DQN:
    every metric equals the callback's (TensorBoard keeps float32: equal there to the last bit)."""
    from stable_baselines3 import DQN

    from sb3_entropy import EntropyCallback
    from sb3_entropy.metrics import METRICS

    assert train_with_rl_zoo(tmp_path, normalize).returncode == 0
    task = MusicEnv(n_eval=N_EVAL)
    callback = EntropyCallback(eval_env=task, eval_freq=512, log_figures=False)
    dqn = DQN("MlpPolicy", task, learning_starts=64, seed=0, device="cpu", policy_kwargs={"net_arch": [32]})
    dqn.learn(1024, callback=callback)
    dqn.save(tmp_path / "dqn.zip")
    command = [
        sys.executable, "-m", "sb3_entropy", "evaluate", "logs/ppo/Personalization-Music-v0_1", "dqn.zip",
        "--task", ENV_ID, "--env-kwargs", f"n_eval={N_EVAL}", "--out", "judged",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "judged" / "report_card.csv", newline="") as stream:
        rows = {row["model"]: row for row in csv.DictReader(stream)}
    (event_folder,) = (tmp_path / "tb" / "Personalization-Music-v0").iterdir()
    events = EventAccumulator(str(event_folder), size_guidance={"scalars": 0})
    events.Reload()
    ppo = rows["ppo/Personalization-Music-v0_1"]
    assert ppo["normalized"] == str(normalize)
    for metric in METRICS:
        assert np.float32(float(ppo[metric.tag])) == np.float32(events.Scalars(metric.tag)[-1].value), metric.tag
        assert float(rows["dqn"][metric.tag]) == callback.report_card.metrics[metric.tag], metric.tag
    assert "| ppo/Personalization-Music-v0_1 | PPO" in result.stdout and "| oracle " in result.stdout
