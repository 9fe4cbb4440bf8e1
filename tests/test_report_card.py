"""report_card: a saved model's diversity report card holds exactly what the EntropyCallback logged for it, with the
random and oracle baselines of the same states; models that do not fit the task are refused naming both."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from personalization_gym import BehaviorEnv, MusicEnv
from sb3_entropy import EntropyCallback
from sb3_entropy.metrics import SCORE, STORED
from sb3_entropy.probs import action_probs
from sb3_entropy.report_card import report_card

N_EVAL = 600


@pytest.fixture(scope="module")
def music(data_root: Path) -> MusicEnv:
    return MusicEnv(data_dir=data_root, n_eval=N_EVAL)


def logged(callback: EntropyCallback) -> dict[str, float]:
    """The callback's last evaluation as it logged it: the stored metrics, and the score derived from them."""
    row = callback.history[-1]
    return {m.tag: row[m.tag] for m in STORED} | {SCORE.tag: callback.report_card.metrics[SCORE.tag]}


def trained(algorithm: type, env, callback: EntropyCallback, **kwargs):
    model = algorithm("MlpPolicy", env, seed=0, device="cpu", policy_kwargs={"net_arch": [16]}, **kwargs)
    return model.learn(512, callback=callback)


@pytest.mark.parametrize("normalize", [False, True], ids=["raw", "normalize"])
def test_a_saved_ppo_has_the_card_the_callback_logged(music: MusicEnv, normalize: bool, tmp_path: Path) -> None:
    venv = DummyVecEnv([lambda: music])
    env = VecNormalize(venv, norm_reward=False) if normalize else venv
    callback = EntropyCallback(eval_freq=256, seed=3, log_figures=False, n_eval=400)
    model = trained(PPO, env, callback, n_steps=64, batch_size=64)
    model.save(tmp_path / "ppo.zip")
    statistics = None
    if normalize:
        env.save(str(tmp_path / "vecnormalize.pkl"))
        statistics = VecNormalize.load(str(tmp_path / "vecnormalize.pkl"), DummyVecEnv([lambda: music]))
    card = report_card(PPO.load(tmp_path / "ppo.zip", device="cpu"), music, vec_normalize=statistics, seed=3,
                       n_eval=400)  # fmt: skip
    assert card.metrics == logged(callback) and np.array_equal(card.p, callback.history[-1]["p"])
    assert card.metrics == callback.report_card.metrics and card.normalized is normalize
    assert (card.n_states, card.n_actions, card.model, card.task) == (400, 50, "PPO", "Personalization/Music-v0")
    # the baselines are those of the 400 states, by an independent computation
    kept = np.sort(np.random.default_rng(3).choice(N_EVAL, size=400, replace=False))
    expected = music.eval_set().expected[kept]
    assert card.baselines == pytest.approx({"random": expected.mean(), "oracle": expected.max(axis=1).mean()}, 1e-12)
    if normalize:  # the policy saw the states normalized by hand with the saved statistics, not the raw states
        rms, states = statistics.obs_rms, music.eval_set().obs[kept]
        seen = np.clip((states - rms.mean) / np.sqrt(rms.var + statistics.epsilon), -10, 10)
        assert np.allclose(action_probs(model, seen).mean(axis=0), card.p, rtol=0, atol=1e-6)
        assert np.abs(action_probs(model, states).mean(axis=0) - card.p).max() > 1e-4


def test_a_saved_dqn_has_the_card_the_callback_logged(music: MusicEnv, tmp_path: Path) -> None:
    callback = EntropyCallback(eval_env=music, eval_freq=256, seed=0, log_figures=False)
    model = trained(DQN, music, callback, learning_starts=64)
    model.save(tmp_path / "dqn.zip")
    card = report_card(DQN.load(tmp_path / "dqn.zip", device="cpu"), music)
    assert card.metrics == logged(callback) and np.array_equal(card.p, callback.history[-1]["p"])
    # H(p) by hand from softmax(Q / 0.1) of every state
    p = action_probs(model, music.eval_set().obs).mean(axis=0)
    assert card["entropy/marginal"] == pytest.approx(float(-(p * np.log(p)).sum()), rel=1e-12)
    assert card.row()["eval/score"] == card[SCORE.tag] and card.row()["random"] == card.baselines["random"]


def test_states_alone_give_the_entropy_and_action_metrics(music: MusicEnv) -> None:
    model = PPO("MlpPolicy", music, seed=0, device="cpu", policy_kwargs={"net_arch": [8]})
    card = report_card(model, eval_obs=music.eval_set().obs[:50])
    assert card.baselines == {} and "eval/expected_reward" not in card.metrics and card.task is None
    probs = action_probs(model, music.eval_set().obs[:50])
    assert card["entropy/per_state"] == pytest.approx(float(-(probs * np.log(probs)).sum(axis=1).mean()), rel=1e-12)


def test_models_that_do_not_fit_the_task_are_refused_naming_both(music: MusicEnv) -> None:
    behavior = BehaviorEnv(n_actions=7, state_dim=music.observation_space.shape[0], n_eval=100)
    other_actions = PPO("MlpPolicy", behavior, seed=0, device="cpu")
    with pytest.raises(ValueError) as error:
        report_card(other_actions, music)
    assert str(error.value) == (
        "the evaluation set's task Personalization/Music-v0 has 50 actions and the model 7: evaluate the model on "
        "its own task"
    )
    other_shape = PPO("MlpPolicy", BehaviorEnv(n_actions=50, state_dim=3, n_eval=100), seed=0, device="cpu")
    with pytest.raises(ValueError) as error:
        report_card(other_shape, music)
    assert str(error.value) == (
        f"task Personalization/Music-v0's evaluation states must have shape (n, 3) to match the model's observation "
        f"space, got ({N_EVAL}, {music.observation_space.shape[0]})"
    )
    continuous = PPO("MlpPolicy", gym.make("Pendulum-v1"), seed=0, device="cpu")
    with pytest.raises((TypeError, ValueError), match="Discrete action space"):
        report_card(continuous, eval_obs=np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="give one of task"):
        report_card(other_actions)
    with pytest.raises(ValueError, match="temperature must be"):
        report_card(other_actions, behavior, temperature=0)
