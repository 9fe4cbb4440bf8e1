"""personalization-gym evaluate: saved models judged side by side, each number the one the EntropyCallback logged for
the same model; models that do not fit the task, and names that collide, refused naming what the user gave."""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path

import gymnasium as gym
import matplotlib.image
import numpy as np
import pytest
import yaml
from stable_baselines3 import DQN, PPO, SAC
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from personalization_gym import BehaviorEnv, MusicEnv
from sb3_entropy import EntropyCallback
from sb3_entropy.metrics import METRICS
from sb3_entropy.saved_models import algorithm_of, load_saved_model
from sb3_entropy.study.cli import evaluate

MUSIC = "Personalization/Music-v0"
N_EVAL = 600


def run(*args: str) -> tuple[int, str, str]:
    """The command in this process: exit status, standard output and error."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            status = evaluate.main(list(args), prog="personalization-gym evaluate")
        except SystemExit as exit_:
            status = exit_.code
    return status, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def music(data_root: Path) -> MusicEnv:
    return MusicEnv(data_dir=data_root, n_eval=N_EVAL)


def zoo_folder(root: Path, algo: str, model, statistics: VecNormalize | None) -> Path:
    """A run folder laid out as rl_zoo3.train writes one (args.yml an OrderedDict dump, as rl-zoo3 writes it);
    the slow tier's test_rl_zoo.py evaluates folders rl_zoo3 itself wrote."""
    from collections import OrderedDict

    run = root / "logs" / algo / "Personalization-Music-v0_1"
    (run / "Personalization-Music-v0").mkdir(parents=True)
    model.save(run / "Personalization-Music-v0.zip")
    args = OrderedDict([("algo", algo), ("env", MUSIC), ("env_kwargs", {"n_eval": N_EVAL}), ("seed", 0)])
    (run / "Personalization-Music-v0" / "args.yml").write_text(yaml.dump(args))
    if statistics is not None:
        statistics.save(str(run / "Personalization-Music-v0" / "vecnormalize.pkl"))
    return run


def test_saved_models_are_judged_side_by_side_as_the_callback_logged_them(music: MusicEnv, tmp_path: Path) -> None:
    env = VecNormalize(DummyVecEnv([lambda: music]), norm_reward=False)
    ppo_callback = EntropyCallback(eval_freq=256, log_figures=False)
    ppo = PPO("MlpPolicy", env, n_steps=64, batch_size=64, seed=0, device="cpu", policy_kwargs={"net_arch": [16]})
    ppo.learn(512, callback=ppo_callback)
    folder = zoo_folder(tmp_path, "ppo", ppo, env)
    dqn_callback = EntropyCallback(eval_env=music, eval_freq=256, log_figures=False)
    dqn = DQN("MlpPolicy", music, learning_starts=64, seed=0, device="cpu", policy_kwargs={"net_arch": [16]})
    dqn.learn(512, callback=dqn_callback)
    dqn.save(tmp_path / "dqn.zip")

    out = tmp_path / "judged"
    status, stdout, stderr = run(str(folder), str(tmp_path / "dqn.zip"), "--task", MUSIC, "--env-kwargs",
                                 f"n_eval={N_EVAL}", "--out", str(out))  # fmt: skip
    assert status == 0, stderr
    with open(out / "report_card.csv", newline="") as stream:
        rows = {row["model"]: row for row in csv.DictReader(stream)}
    assert list(rows) == ["ppo/Personalization-Music-v0_1", "dqn"]
    for name, callback, algo, normalized in (
        ("ppo/Personalization-Music-v0_1", ppo_callback, "PPO", "True"), ("dqn", dqn_callback, "DQN", "False"),
    ):  # fmt: skip
        row = rows[name]
        assert (row["algo"], row["normalized"], row["task"], row["states"]) == (algo, normalized, MUSIC, str(N_EVAL))
        for metric in METRICS:  # every metric as the callback logged it, to the last bit
            assert float(row[metric.tag]) == callback.report_card.metrics[metric.tag], (name, metric.tag)
        assert float(row["random"]) == callback.report_card.baselines["random"]
        image = matplotlib.image.imread(out / f"p_{name.replace('/', '_')}.png")
        assert image.shape[:2] == (400, 960)
    expected = music.eval_set().expected
    assert float(rows["dqn"]["oracle"]) == pytest.approx(expected.max(axis=1).mean(), rel=1e-12)
    # the screen and report_card.md: one table, the models then the random policy and the oracle
    table = (out / "report_card.md").read_text()
    assert table in stdout
    lines = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")]
    assert lines == ["model", "ppo/Personalization-Music-v0_1", "dqn", "random policy", "oracle"]
    assert "| PPO (norm.)  |" in table


def test_the_algorithm_is_read_from_the_zip(music: MusicEnv, tmp_path: Path) -> None:
    from sb3_contrib import QRDQN, TRPO
    from stable_baselines3 import A2C

    for algorithm in (A2C, PPO, DQN, TRPO, QRDQN):
        algorithm("MlpPolicy", music, device="cpu").save(tmp_path / algorithm.__name__)
        assert algorithm_of(tmp_path / f"{algorithm.__name__}.zip") == algorithm.__name__
        loaded = load_saved_model(tmp_path / f"{algorithm.__name__}.zip")
        assert type(loaded.model) is algorithm and (loaded.task, loaded.vec_normalize) == (None, None)
    (tmp_path / "notes.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"notes\.zip is not a model saved by Stable-Baselines3"):
        algorithm_of(tmp_path / "notes.zip")


class ContinuousActions(gym.Env):
    """Music's observations, a continuous action: a model the callback refuses."""

    def __init__(self, observation_space: gym.spaces.Box) -> None:
        self.observation_space = observation_space
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)


def test_models_that_cannot_be_judged_are_refused_naming_what_was_given(music: MusicEnv, tmp_path: Path) -> None:
    behavior = BehaviorEnv(n_actions=7, state_dim=music.observation_space.shape[0], n_eval=50)
    PPO("MlpPolicy", behavior, device="cpu").save(tmp_path / "seven.zip")
    status, _, stderr = run(str(tmp_path / "seven.zip"), "--task", MUSIC, "--out", str(tmp_path / "o"))
    assert status == 2 and (
        f"{tmp_path / 'seven.zip'}: the evaluation set's task {MUSIC} has 50 actions and the model 7" in stderr
    )
    status, _, stderr = run(str(tmp_path / "seven.zip"), "--out", str(tmp_path / "o"))
    assert status == 2 and "seven.zip: a model.save() zip does not say which task it trained on: give --task" in stderr
    SAC("MlpPolicy", ContinuousActions(music.observation_space), device="cpu").save(tmp_path / "continuous.zip")
    status, _, stderr = run(str(tmp_path / "continuous.zip"), "--task", MUSIC, "--out", str(tmp_path / "o"))
    assert status == 2 and "continuous.zip: action probabilities need a Discrete action space" in stderr
    # an rl-zoo3 folder says its task: another --task, or another value of one of its task's arguments, is refused
    folder = zoo_folder(tmp_path, "ppo", PPO("MlpPolicy", music, device="cpu"), None)
    args_file = folder / "Personalization-Music-v0" / "args.yml"
    status, _, stderr = run(str(folder), "--task", "Personalization/Ads-v0", "--out", str(tmp_path / "o"))
    assert status == 2 and f"--task Personalization/Ads-v0 and {args_file}'s env {MUSIC} name two tasks" in stderr
    status, _, stderr = run(str(folder), "--env-kwargs", "n_eval=100", "--out", str(tmp_path / "o"))
    assert status == 2 and f"--env-kwargs n_eval=100 and {args_file}'s env_kwargs n_eval={N_EVAL} both set" in stderr
    # two models of one name would share a figure
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        PPO("MlpPolicy", music, device="cpu").save(tmp_path / sub / "ppo.zip")
    status, _, stderr = run(str(tmp_path / "a/ppo.zip"), str(tmp_path / "b/ppo.zip"), "--task", MUSIC)
    assert status == 2 and f"{tmp_path / 'a/ppo.zip'} and {tmp_path / 'b/ppo.zip'} are both named ppo" in stderr
    status, _, stderr = run(str(tmp_path / "nothing.zip"), "--task", MUSIC, "--out", str(tmp_path / "o"))
    assert status == 2 and f"{tmp_path / 'nothing.zip'}: no such model file or rl-zoo3 run folder" in stderr
    assert not (tmp_path / "o" / "report_card.csv").exists()


def test_the_figure_shows_p_in_item_order_and_by_share(tmp_path: Path) -> None:
    from sb3_entropy.figures import save_marginal_figure

    p = np.array([0.5, 0.3, 0.15, 0.05])
    save_marginal_figure(p, "four items", tmp_path / "p.png")
    image = matplotlib.image.imread(tmp_path / "p.png")
    assert image.shape[:2] == (400, 960) and image[..., :3].std() > 0.05  # drawn, not blank
