"""sb3_entropy.action_probs and EntropyCallback with real SB3 models, real event files and a real TensorBoard server."""

from __future__ import annotations

import copy
import csv
import json
import re
import urllib.parse
import urllib.request
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import ACTION_TAGS, ENTROPY_TAGS, REWARD_TAGS
from sb3_contrib import ARS, QRDQN, TRPO, MaskablePPO, RecurrentPPO
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from personalization_gym import BehaviorEnv, MusicEnv, RatingsEnv
from sb3_entropy import EntropyCallback, action_probs, all_metrics, make_vec
from sb3_entropy.callback import CUSTOM_SCALARS_CHARTS, CUSTOM_SCALARS_LAYOUT
from sb3_entropy.metrics import entropy, evaluation_metrics
from sb3_entropy.policies import MarginalEntropyPolicy
from sb3_entropy.probs import _builds_categorical_from_logits, distinct_rows, q_values

AGENTS = {
    "A2C": (A2C, {"n_steps": 32}),
    "PPO": (PPO, {"n_steps": 32, "batch_size": 32, "n_epochs": 1}),
    "DQN": (DQN, {"batch_size": 32, "train_freq": 32, "learning_starts": 0, "buffer_size": 10_000}),
    "QRDQN": (QRDQN, {"batch_size": 32, "train_freq": 32, "learning_starts": 0, "buffer_size": 10_000}),
}


def make_model(name: str, env, **kwargs):
    algorithm, defaults = AGENTS[name]
    policy_kwargs = {"net_arch": [32, 32]} | ({"n_quantiles": 5} if name == "QRDQN" else {})
    return algorithm("MlpPolicy", env, seed=0, device="cpu", policy_kwargs=policy_kwargs, **defaults, **kwargs)


@pytest.fixture(scope="module")
def behavior() -> BehaviorEnv:
    return BehaviorEnv(n_actions=7, state_dim=6, n_eval=300)


# --------------------------------------------------------------------------------------------------
# action_probs against independent forward passes


def test_actor_critic_probs_are_the_softmax_of_the_action_logits(behavior: BehaviorEnv) -> None:
    obs = behavior.eval_set().obs
    for name in ("A2C", "PPO"):
        model = make_model(name, behavior)
        model.learn(64)
        with torch.no_grad():
            policy = model.policy
            latent = policy.mlp_extractor.forward_actor(
                policy.extract_features(torch.as_tensor(obs.copy()), policy.pi_features_extractor)
            )
            logits = policy.action_net(latent).double()
        np.testing.assert_allclose(action_probs(model, obs), torch.softmax(logits, dim=1).numpy(), rtol=1e-6, atol=1e-9)
        # chunks change only float32 rounding inside the matrix products
        np.testing.assert_allclose(action_probs(model, obs, chunk=7), action_probs(model, obs, chunk=1000), rtol=1e-6)


@pytest.mark.parametrize("algorithm", [TRPO, MaskablePPO])
def test_sb3_contrib_actor_critics(behavior: BehaviorEnv, algorithm) -> None:
    obs = behavior.eval_set().obs[:50]
    model = algorithm("MlpPolicy", behavior, seed=0, device="cpu", policy_kwargs={"net_arch": [16]})
    with torch.no_grad():
        policy = model.policy
        features = policy.extract_features(torch.as_tensor(obs.copy()), policy.pi_features_extractor)
        logits = policy.action_net(policy.mlp_extractor.forward_actor(features)).double()
    np.testing.assert_allclose(action_probs(model, obs), torch.softmax(logits, dim=1).numpy(), rtol=1e-6, atol=1e-9)


class DoubledLogitsPolicy(ActorCriticPolicy):
    """A user's policy that makes its distribution its own way: logits doubled."""

    def get_distribution(self, obs):
        features = self.extract_features(obs, self.pi_features_extractor)
        logits = 2 * self.action_net(self.mlp_extractor.forward_actor(features))
        return self.action_dist.proba_distribution(action_logits=logits)


@pytest.mark.parametrize(
    ("algorithm", "policy", "from_logits"),
    [
        (A2C, "MlpPolicy", True),
        (PPO, "MlpPolicy", True),
        (TRPO, "MlpPolicy", True),
        (PPO, MarginalEntropyPolicy, True),
        (MaskablePPO, "MlpPolicy", False),
        (PPO, DoubledLogitsPolicy, False),
    ],
)
def test_actor_critic_probs_are_those_of_the_policys_own_distribution_bit_for_bit(
    behavior: BehaviorEnv, algorithm, policy, from_logits: bool
) -> None:
    # read from the logits (A2C, PPO, TRPO, sb3_entropy's policies) or through get_distribution (the others)
    batch = {} if algorithm is A2C else {"batch_size": 64}  # one minibatch of the 64-step rollout
    model = algorithm(policy, behavior, seed=0, device="cpu", n_steps=64, policy_kwargs={"net_arch": [32, 32]}, **batch)
    model.learn(128, **({"use_masking": False} if algorithm is MaskablePPO else {}))
    assert _builds_categorical_from_logits(model.policy) is from_logits
    obs = behavior.eval_set().obs
    with torch.no_grad():
        own = model.policy.get_distribution(torch.as_tensor(obs.copy())).distribution.probs.double().numpy()
    assert np.array_equal(action_probs(model, obs, chunk=len(obs)), own)


def test_recurrent_ppo_reads_every_state_as_a_fresh_episode(behavior: BehaviorEnv) -> None:
    """Each episode of a task is one step, so each state meets a zero LSTM state: the LSTM run by hand on it."""
    obs = behavior.eval_set().obs[:50]
    kwargs = {"net_arch": [16], "lstm_hidden_size": 8, "n_lstm_layers": 2}
    model = RecurrentPPO("MlpLstmPolicy", behavior, seed=0, device="cpu", n_steps=32, batch_size=32,
                         policy_kwargs=kwargs)  # fmt: skip
    model.learn(64)
    with torch.no_grad():
        policy = model.policy
        features = policy.extract_features(torch.as_tensor(obs.copy()), policy.pi_features_extractor)
        zeros = torch.zeros(2, len(obs), 8)
        hidden, _ = policy.lstm_actor(features.unsqueeze(0), (zeros, zeros))  # a sequence of one step per state
        logits = policy.action_net(policy.mlp_extractor.forward_actor(hidden.squeeze(0))).double()
    probs = action_probs(model, obs)
    np.testing.assert_allclose(probs, torch.softmax(logits, dim=1).numpy(), rtol=1e-6, atol=1e-9)
    greedy, _ = model.predict(obs, state=None, episode_start=np.ones(len(obs), dtype=bool), deterministic=True)
    np.testing.assert_array_equal(probs.argmax(axis=1), greedy)


def test_ars_is_deterministic_all_probability_on_its_action(behavior: BehaviorEnv) -> None:
    obs = behavior.eval_set().obs
    model = ARS("MlpPolicy", behavior, seed=0, device="cpu", n_delta=2, policy_kwargs={"net_arch": [16]})
    model.learn(64)
    actions, _ = model.predict(obs, deterministic=True)
    np.testing.assert_array_equal(action_probs(model, obs), np.eye(behavior.action_space.n)[actions])


@pytest.mark.parametrize("algorithm", ["RecurrentPPO", "ARS"])
def test_the_callback_follows_sb3_contrib_recurrent_and_evolution_agents(algorithm: str) -> None:
    env = make_vec("Personalization/Behavior-v0", 4, seed=0, n_actions=6, state_dim=4, n_eval=200)
    if algorithm == "RecurrentPPO":
        model = RecurrentPPO("MlpLstmPolicy", env, seed=0, device="cpu", n_steps=32, batch_size=32,
                             policy_kwargs={"net_arch": [16], "lstm_hidden_size": 8})  # fmt: skip
    else:
        model = ARS("MlpPolicy", env, seed=0, device="cpu", n_delta=4, policy_kwargs={"net_arch": [16]})
    callback = EntropyCallback(eval_freq=128)
    model.learn(512, callback=callback)
    assert [row["timesteps"] for row in callback.history] == [0, 128, 256, 384, 512]
    eval_set = env.env_method("eval_set", indices=[0])[0]
    probs = action_probs(model, eval_set.obs)
    assert callback.history[-1]["entropy/marginal"] == entropy(probs.mean(axis=0))
    assert callback.history[-1]["eval/expected_reward"] == pytest.approx((probs * eval_set.expected).sum(1).mean())


@pytest.mark.parametrize("temperature", [0.1, 1.0, 0.02])
def test_dqn_probs_are_softmax_of_q_over_temperature(behavior: BehaviorEnv, temperature: float) -> None:
    obs = behavior.eval_set().obs
    model = make_model("DQN", behavior)
    with torch.no_grad():
        q = model.policy.q_net(torch.as_tensor(obs.copy())).double().numpy()
    scaled = np.exp((q - q.max(axis=1, keepdims=True)) / temperature)
    np.testing.assert_allclose(
        action_probs(model, obs, temperature), scaled / scaled.sum(axis=1, keepdims=True), rtol=1e-9
    )


def test_qrdqn_probs_use_the_mean_over_quantiles(behavior: BehaviorEnv) -> None:
    obs = behavior.eval_set().obs
    model = make_model("QRDQN", behavior)
    with torch.no_grad():
        quantiles = model.policy.quantile_net(torch.as_tensor(obs.copy())).double().numpy()
    assert quantiles.shape == (len(obs), 5, 7)
    q = quantiles.mean(axis=1)
    scaled = np.exp((q - q.max(axis=1, keepdims=True)) / 0.1)
    # the mean goes through one averaged float32 output layer: equal up to float32 round-off
    np.testing.assert_allclose(action_probs(model, obs), scaled / scaled.sum(axis=1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(q_values(model, obs), q, rtol=0, atol=1e-6 * np.abs(q).max())


def test_qrdqn_mean_over_200_quantiles_through_the_averaged_layer(music: MusicEnv) -> None:
    model = QRDQN("MlpPolicy", music, policy_kwargs={"net_arch": [64, 64]}, seed=0, device="cpu")
    assert model.policy.quantile_net.n_quantiles == 200
    model.learn(256)  # trained weights, not only the initial ones
    obs = music.eval_set().obs[:500]
    with torch.no_grad():
        full = model.policy.quantile_net(torch.as_tensor(obs.copy())).double().mean(dim=1).numpy()
    np.testing.assert_allclose(q_values(model, obs), full, rtol=0, atol=1e-6 * np.abs(full).max())


@pytest.mark.parametrize("name", ["DQN", "QRDQN"])
def test_epsilon_greedy_behaviour_policy(behavior: BehaviorEnv, name: str) -> None:
    obs = behavior.eval_set().obs
    model = make_model(name, behavior)
    model.exploration_rate = 0.3
    greedy, _ = model.predict(obs, deterministic=True)
    expected = np.full((len(obs), 7), 0.3 / 7)
    expected[np.arange(len(obs)), greedy] += 0.7
    np.testing.assert_allclose(action_probs(model, obs, q_policy="epsilon_greedy"), expected, rtol=1e-12)


def test_probs_fn_is_used_and_checked(behavior: BehaviorEnv) -> None:
    obs = behavior.eval_set().obs
    model = make_model("A2C", behavior)
    uniform = action_probs(model, obs, probs_fn=lambda m, o: np.full((len(o), 7), 1 / 7))
    assert uniform.shape == (len(obs), 7)
    with pytest.raises(ValueError, match="probs_fn gave rows that do not sum to 1"):
        action_probs(model, obs, probs_fn=lambda m, o: np.ones((len(o), 7)))
    # a float32 softmax's sum of K terms may be off by K rounding steps: 2e-5 + K * 2**-23 is allowed, no more
    wide = np.full((4, 59_047), (1 + 5e-5) / 59_047)
    np.testing.assert_array_equal(action_probs(model, obs[:4], probs_fn=lambda m, o: wide), wide)
    with pytest.raises(ValueError, match=r"allowed 1 \+- 2.1e-05 for 7 actions"):
        action_probs(model, obs[:4], probs_fn=lambda m, o: np.full((4, 7), (1 + 5e-5) / 7))
    wide[1] *= 1.01
    with pytest.raises(ValueError, match=r"to 1.01005\d*, allowed 1 \+- 0.0071 for 59047 actions"):
        action_probs(model, obs[:4], probs_fn=lambda m, o: wide)
    negative = np.full((len(obs), 7), 1 / 7)
    negative[5, :2] = [-0.1, 0.1 + 1 / 7]  # sums to 1, one entry below 0
    with pytest.raises(ValueError, match=r"probs_fn gave negative probabilities, first in row 5: -0\.1"):
        action_probs(model, obs, probs_fn=lambda m, o: negative)
    with_nan = np.full((len(obs), 7), 1 / 7)
    with_nan[[3, 8], 2] = [np.nan, np.inf]
    with pytest.raises(ValueError, match=f"probs_fn gave action probabilities that are NaN or infinite in 2 of {len(obs)} "
                       "states: probs_fn must return finite numbers"):  # fmt: skip
        action_probs(model, obs, probs_fn=lambda m, o: with_nan)


def test_a_diverged_policy_is_named_not_summed(behavior: BehaviorEnv) -> None:
    model = make_model("A2C", behavior)
    with torch.no_grad():
        model.policy.action_net.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"A2C gave action probabilities that are NaN or infinite in 300 of 300 states: "
                       r"the network's outputs are no longer finite numbers, so its training most likely diverged"):  # fmt: skip
        action_probs(model, behavior.eval_set().obs)


def test_unsupported_models_and_inputs_raise(behavior: BehaviorEnv) -> None:
    continuous = A2C("MlpPolicy", gym.make("Pendulum-v1"), device="cpu")
    with pytest.raises(TypeError, match=r"need a Discrete action space, got Box.*supported: actor-critic models"):
        action_probs(continuous, np.zeros((4, 3), np.float32))
    model = make_model("PPO", behavior)
    with pytest.raises(
        ValueError, match=r"obs must be a batch of observations of shape \(n, 6\).*got an array of shape \(4, 5\)"
    ):
        action_probs(model, np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"q_policy must be one of \('softmax', 'epsilon_greedy'\)"):
        action_probs(make_model("DQN", behavior), np.zeros((2, 6), np.float32), q_policy="greedy")
    with pytest.raises(ValueError, match=r"temperature must be a finite number > 0, got 0"):
        action_probs(make_model("DQN", behavior), np.zeros((2, 6), np.float32), temperature=0)


# --------------------------------------------------------------------------------------------------
# EntropyCallback: training runs, logged values, event files


@pytest.fixture(scope="module")
def music(data_root) -> MusicEnv:
    return MusicEnv(data_dir=data_root, n_eval=2000)


def read_events(log_dir: Path) -> EventAccumulator:
    (run,) = [p for p in log_dir.iterdir() if p.is_dir()]
    accumulator = EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0, "histograms": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def test_distinct_rows_match_a_dictionary_of_the_rows_bytes() -> None:
    rng = np.random.default_rng(3)
    pool = rng.integers(0, 3, size=(40, 2, 3)).astype(np.float32)
    pool[0, 0, 0], pool[1] = -0.0, pool[0]  # -0.0 and 0.0 differ in their bytes: two states, not one
    pool[1, 0, 0] = 0.0
    obs = pool[rng.integers(0, len(pool), size=500)]
    distinct, index = distinct_rows(obs)
    first_seen: dict[bytes, int] = {}
    for row in obs:
        first_seen.setdefault(row.tobytes(), len(first_seen))
    assert [row.tobytes() for row in distinct] == list(first_seen)
    assert index.tolist() == [first_seen[row.tobytes()] for row in obs]
    assert np.array_equal(distinct[index], obs) and distinct.dtype == obs.dtype
    with pytest.raises(ValueError, match="batch of states"):
        distinct_rows(np.float32(1.0))


@pytest.mark.parametrize("name", ["PPO", "DQN"])
def test_the_callback_computes_each_distinct_state_once_and_logs_what_every_state_gives(name, music: MusicEnv) -> None:
    """The table expanded from the distinct states gives every metric bit for bit as the table of every state."""
    states_seen: list[int] = []

    def counting(model, obs):
        states_seen.append(len(obs))
        return action_probs(model, obs)

    callback = EntropyCallback(eval_env=music, eval_freq=10_000, probs_fn=counting, seed=4, log_figures=False)
    model = make_model(name, music)
    initial = copy.deepcopy(model.policy.state_dict())
    model.learn(256, callback=callback)

    distinct = len({row.tobytes() for row in callback.eval_obs})
    assert len(callback.eval_obs) == 2000 and distinct < 1200  # the fixture's 2,000 users hold 1,102 contexts
    assert states_seen == [1, distinct, distinct]  # the check at the start, then the evaluations at 0 and 256
    replay = make_model(name, music)
    for row, weights in zip(callback.history, (initial, model.policy.state_dict()), strict=True):
        replay.policy.load_state_dict(weights)
        rng = np.random.default_rng([4, 1])  # every evaluation samples its actions with the same draws
        metrics, p = evaluation_metrics(action_probs(replay, callback.eval_obs), callback.expected, rng)
        # the history keeps every metric but the score, which is derived from the expected reward when shown
        stored = {key: value for key, value in metrics.items() if key != "eval/score"}
        assert {key: value for key, value in row.items() if key not in ("timesteps", "p")} == stored
        assert np.array_equal(row["p"], p)


class ActionRecorder(BaseCallback):
    """Every action the agent takes, straight from the training loop."""

    def __init__(self) -> None:
        super().__init__()
        self.actions: list[int] = []

    def _on_step(self) -> bool:
        self.actions += np.asarray(self.locals["actions"]).ravel().tolist()
        return True


@pytest.mark.parametrize("name", list(AGENTS))
def test_logged_values_equal_a_recomputation_from_the_saved_model(name: str, music: MusicEnv, tmp_path: Path) -> None:
    callback = EntropyCallback(eval_env=music, eval_freq=256, n_eval=1000, figure_every=2, seed=1)
    model = make_model(name, music, tensorboard_log=str(tmp_path / "tb"), learning_rate=1e-3)
    recorder = ActionRecorder()
    model.learn(1024, callback=CallbackList([callback, recorder]))
    model.save(tmp_path / "model")

    steps = [row["timesteps"] for row in callback.history]
    assert steps == [0, 256, 512, 768, 1024]
    loaded = type(model).load(tmp_path / "model", device="cpu")
    probs = action_probs(loaded, callback.eval_obs)
    recomputed = all_metrics(probs, callback.expected, np.random.default_rng(0))
    final = callback.history[-1]
    for key in (*ENTROPY_TAGS, *ACTION_TAGS, *REWARD_TAGS):
        if key != "eval/reward_stochastic":
            assert final[key] == pytest.approx(recomputed[key], rel=1e-9, abs=1e-12), key
    standard_error = np.sqrt(((callback.expected - final["eval/expected_reward"]) ** 2).mean() / len(probs))
    assert abs(final["eval/reward_stochastic"] - final["eval/expected_reward"]) < 5 * standard_error + 1e-9
    np.testing.assert_allclose(final["p"], probs.mean(axis=0), rtol=1e-9)

    events = read_events(tmp_path / "tb")
    tags = events.Tags()
    for key in (*ENTROPY_TAGS, *ACTION_TAGS, *REWARD_TAGS):
        logged = events.Scalars(key)
        assert [event.step for event in logged][-1] == 1024
        assert logged[-1].value == pytest.approx(final[key], rel=1e-6, abs=1e-7), key
    assert "actions/distribution" in tags["images"]
    assert {"actions/marginal", "train/action_histogram"} <= set(tags["histograms"])
    marginal_histogram = events.Histograms("actions/marginal")[-1].histogram_value
    np.testing.assert_allclose(marginal_histogram.bucket, final["p"], rtol=1e-6)
    # the actions actually taken between the last two evaluations: as many as the steps in between
    taken = events.Histograms("train/action_histogram")
    logged_counts = np.sum([event.histogram_value.bucket for event in taken], axis=0)
    np.testing.assert_array_equal(logged_counts, np.bincount(recorder.actions, minlength=50))
    assert len(recorder.actions) == 1024
    assert any("custom_scalars" in tag for tag in tags["tensors"])


def test_history_files(music: MusicEnv, tmp_path: Path) -> None:
    callback = EntropyCallback(eval_env=music, eval_freq=100, n_eval=200, log_figures=False)
    make_model("A2C", music).learn(320, callback=callback)
    csv_path = callback.save_history(tmp_path / "history.csv")
    with open(csv_path, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [int(row["timesteps"]) for row in rows] == [row["timesteps"] for row in callback.history]
    assert float(rows[-1]["entropy/marginal"]) == callback.history[-1]["entropy/marginal"]
    assert [float(rows[-1][f"p_{a}"]) for a in range(50)] == callback.history[-1]["p"].tolist()
    data = json.loads(callback.save_history(tmp_path / "history.json").read_text())
    assert data[-1]["p"] == callback.history[-1]["p"].tolist()
    with pytest.raises(ValueError, match=r"history files are .csv or .json, got 'history.txt'"):
        callback.save_history(tmp_path / "history.txt")


def test_composes_with_sb3_callbacks_and_any_env_through_eval_obs(tmp_path: Path) -> None:
    env = gym.make("CartPole-v1")
    states = np.random.default_rng(0).uniform(-0.05, 0.05, size=(64, 4)).astype(np.float32)
    entropy = EntropyCallback(eval_obs=states, eval_freq=50)
    callbacks = CallbackList(
        [
            entropy,
            EvalCallback(Monitor(gym.make("CartPole-v1")), eval_freq=100, n_eval_episodes=2, verbose=0),
            CheckpointCallback(save_freq=100, save_path=str(tmp_path / "checkpoints")),
        ]
    )
    PPO("MlpPolicy", env, n_steps=64, batch_size=32, seed=0, device="cpu").learn(256, callback=callbacks)
    # due at 50, 100, 150, 200; run at the next rollout start (rollouts of 64 steps); and at the end
    assert [row["timesteps"] for row in entropy.history] == [0, 64, 128, 192, 256]
    assert "eval/expected_reward" not in entropy.history[-1]  # no task, no reward metrics
    assert 0.0 <= entropy.history[-1]["entropy/marginal"] <= np.log(2) + 1e-12
    assert len(list((tmp_path / "checkpoints").iterdir())) == 2


def test_collapse_alarm_warns_or_stops(music: MusicEnv) -> None:
    with pytest.warns(UserWarning, match=r"policy collapse at \d+ steps: normalized marginal entropy"):
        callback = EntropyCallback(eval_env=music, eval_freq=64, n_eval=100, min_entropy=1.0)
        make_model("A2C", music).learn(64, callback=callback)
    assert len(callback.history) >= 2  # warned, went on
    model = make_model("A2C", music)
    with pytest.warns(UserWarning, match="stopping training"):
        model.learn(
            10_000,
            callback=EntropyCallback(eval_env=music, eval_freq=64, n_eval=100, min_entropy=1.0, stop_on_collapse=True),
        )
    assert model.num_timesteps < 100


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"eval_freq": 0}, ValueError, r"eval_freq must be an integer >= 1, got 0"),
        ({"eval_freq": -5}, ValueError, r"eval_freq must be an integer >= 1, got -5"),
        ({"eval_freq": 10.5}, ValueError, r"eval_freq must be an integer >= 1, got 10.5 \(float\)"),
        ({"n_eval": 0}, ValueError, r"n_eval must be an integer >= 1, got 0"),
        ({"n_eval": 2001}, ValueError, r"n_eval must be an integer in \[1, 2000\] \(the states available\), got 2001"),
        ({"min_entropy": 2.0}, ValueError, r"min_entropy is a normalized entropy: a number in \[0, 1\], got 2.0"),
        ({"stop_on_collapse": True}, ValueError, r"stop_on_collapse needs min_entropy"),
        ({"temperature": 0.0}, ValueError, r"temperature must be a finite number > 0, got 0.0"),
        ({"temperature": float("inf")}, ValueError, r"temperature must be a finite number > 0, got inf"),
        ({"min_entropy": "0.5"}, ValueError, r"min_entropy is a normalized entropy: a number in \[0, 1\], got '0.5'"),
        ({"log_figures": "no"}, ValueError, r"log_figures must be True or False, got 'no'"),
        ({"stop_on_collapse": 1, "min_entropy": 0.1}, ValueError, r"stop_on_collapse must be True or False, got 1"),
        ({"seed": -1}, ValueError, r"seed must be an integer >= 0, got -1"),
        ({"seed": 2.5}, ValueError, r"seed must be an integer >= 0, got 2.5"),
        ({"verbose": "1"}, ValueError, r"verbose must be an integer >= 0, got '1'"),
        ({"probs_fn": "softmax"}, ValueError, r"probs_fn must be a function probs_fn\(model, obs\) -> \(n, K\) array"),
        ({"q_policy": "greedy"}, ValueError, r"q_policy must be one of \('softmax', 'epsilon_greedy'\), got 'greedy'"),
    ],
)
def test_bad_callback_arguments(music: MusicEnv, kwargs, error, message) -> None:
    with pytest.raises(error, match=message):
        EntropyCallback(eval_env=music, **kwargs)


# SB3's make_vec_env asks every env for render_mode="rgb_array": the tasks have it, so no warning (an error here).
@pytest.mark.filterwarnings("error::UserWarning")
def test_eval_set_from_a_wrapped_task_and_from_a_vec_env(music: MusicEnv, data_root) -> None:
    wrapped = gym.make("Personalization/Music-v0", data_dir=data_root, n_eval=2000)
    vectorized = make_vec_env("Personalization/Music-v0", n_envs=2, env_kwargs={"data_dir": data_root, "n_eval": 2000})
    for eval_env in (wrapped, vectorized):
        callback = EntropyCallback(eval_env=eval_env)
        np.testing.assert_array_equal(callback.eval_obs, music.eval_set().obs)
        np.testing.assert_array_equal(callback.expected, music.eval_set().expected)
    callback = EntropyCallback(eval_env=vectorized, eval_freq=64, n_eval=100)
    make_model("A2C", vectorized).learn(128, callback=callback)  # 2 envs: 64 steps of rollout per update
    assert [row["timesteps"] for row in callback.history] == [0, 64, 128]


@pytest.mark.parametrize("wrapping", ["dummy", "subproc", "vec_normalize", "batched"])
def test_eval_set_found_in_the_training_env(wrapping: str, music: MusicEnv, data_root) -> None:
    kwargs = {"data_dir": data_root, "n_eval": 2000}
    if wrapping == "batched":
        env = make_vec("Personalization/Music-v0", 4, seed=0, **kwargs)
    else:
        vec_env_cls = SubprocVecEnv if wrapping == "subproc" else DummyVecEnv
        # the "module:" prefix makes Gymnasium import personalization_gym in the worker processes too
        env_id = "personalization_gym:Personalization/Music-v0"
        env = make_vec_env(env_id, n_envs=2, env_kwargs=kwargs, vec_env_cls=vec_env_cls)
    if wrapping == "vec_normalize":
        env = VecNormalize(env, norm_obs=False, norm_reward=True)  # raw states: comparable with the task's
    try:
        found = EntropyCallback(eval_freq=64, n_eval=300, seed=3)
        make_model("A2C", env).learn(128, callback=found)
        given = EntropyCallback(eval_env=music, eval_freq=64, n_eval=300, seed=3)
        make_model("A2C", env).learn(128, callback=given)
    finally:
        env.close()
    np.testing.assert_array_equal(found.eval_obs, given.eval_obs)
    np.testing.assert_array_equal(found.expected, given.expected)
    assert [row["timesteps"] for row in found.history] == [row["timesteps"] for row in given.history]
    assert "eval/expected_reward" in found.history[-1]


def test_eval_env_as_an_env_id(music: MusicEnv, data_root) -> None:
    callback = EntropyCallback(
        eval_env="Personalization/Music-v0", eval_env_kwargs={"data_dir": data_root, "n_eval": 2000}
    )
    np.testing.assert_array_equal(callback.eval_obs, music.eval_set().obs)
    np.testing.assert_array_equal(callback.expected, music.eval_set().expected)
    other_seed = EntropyCallback(eval_env="Personalization/Music-v0", eval_env_kwargs={"n_eval": 2000, "task_seed": 1})
    assert not np.array_equal(other_seed.eval_obs, callback.eval_obs)


def test_states_are_normalized_as_the_policy_sees_them_behind_vec_normalize(data_root, tmp_path: Path) -> None:
    env = VecNormalize(
        make_vec("Personalization/Music-v0", 8, seed=0, data_dir=data_root, n_eval=500), norm_obs=True, clip_obs=3.0
    )
    callback = EntropyCallback(eval_freq=256, seed=0)
    model = make_model("PPO", env, learning_rate=3e-3)
    model.learn(1024, callback=callback)
    raw = env.env_method("eval_set", indices=[0])[0].obs
    np.testing.assert_array_equal(callback.eval_obs, raw)  # kept raw: normalized at each evaluation
    # an independent forward pass on the states normalized by hand with the statistics as training left them
    rms = env.obs_rms
    normalized = np.clip((raw - rms.mean) / np.sqrt(rms.var + env.epsilon), -3.0, 3.0).astype(np.float32)
    with torch.no_grad():
        logits = model.policy.action_net(model.policy.mlp_extractor.forward_actor(torch.as_tensor(normalized)))
    probs = torch.softmax(logits.double(), dim=1).numpy()
    np.testing.assert_allclose(callback.history[-1]["p"], probs.mean(axis=0), rtol=1e-5, atol=1e-7)
    # the raw states would give the policy different probabilities: the normalization is not a no-op here
    with torch.no_grad():
        raw_logits = model.policy.action_net(model.policy.mlp_extractor.forward_actor(torch.as_tensor(raw.copy())))
    raw_p = torch.softmax(raw_logits.double(), dim=1).numpy().mean(axis=0)
    assert np.abs(raw_p - callback.history[-1]["p"]).max() > 1e-4  # 100x the tolerance of the match above
    # and evaluating does not move the running statistics
    before = (rms.mean.copy(), rms.var.copy(), rms.count)
    callback._evaluate()
    np.testing.assert_array_equal(rms.mean, before[0])
    assert rms.count == before[2]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_states_with_nan_or_inf_are_refused_before_any_forward_pass(bad: float, music: MusicEnv) -> None:
    states = music.eval_set().obs[:10].copy()
    states[3, 5] = bad
    states[7, 0] = bad
    with pytest.raises(ValueError, match=r"NaN or inf in 2 of 10 rows; the first is row 3: \[.*\]\. Every state"):
        EntropyCallback(eval_obs=states)


def test_custom_scalar_charts_match_exactly_their_tags(music: MusicEnv, tmp_path: Path) -> None:
    # every tag a training run logs (SB3's own and the callback's), read back from the event file
    model = make_model("A2C", music, tensorboard_log=str(tmp_path / "tb"))
    model.learn(256, callback=EntropyCallback(eval_env=music, eval_freq=128, n_eval=200, figure_every=1))
    tags = read_events(tmp_path / "tb").Tags()
    logged = {tag for kind in ("scalars", "histograms", "images") for tag in tags[kind]}
    assert {"entropy/marginal", "entropy/marginal_normalized", "train/entropy_loss", "train/value_loss"} <= logged
    for category, charts in CUSTOM_SCALARS_LAYOUT.items():
        for title, (kind, patterns) in charts.items():
            intended = CUSTOM_SCALARS_CHARTS[category][title]
            assert kind == "Multiline" and set(intended) <= logged
            for matches in (re.match, re.search):  # TensorBoard's server matches, its pages search
                plotted = {tag for tag in logged if any(matches(pattern, tag) for pattern in patterns)}
                assert plotted == set(intended), (title, plotted)


def test_bad_callback_inputs(music: MusicEnv) -> None:
    with pytest.raises(ValueError, match="at most one of eval_env"):
        EntropyCallback(eval_env=music, eval_obs=np.zeros((3, 20)))
    with pytest.raises(TypeError, match=r"eval_env must be a personalization_gym task.*got TimeLimit of CartPole-v1"):
        EntropyCallback(eval_env=gym.make("CartPole-v1"))
    with pytest.raises(TypeError, match=r"eval_env must be a personalization_gym task.*pass eval_obs"):
        EntropyCallback(eval_env="CartPole-v1")
    with pytest.raises(ValueError, match=r"eval_env: unknown task 'Personalization/Musik-v0'.*Music-v0"):
        EntropyCallback(eval_env="Personalization/Musik-v0")
    with pytest.raises(ValueError, match=r"eval_env_kwargs are the arguments of a task given by id"):
        EntropyCallback(eval_env=music, eval_env_kwargs={"n_eval": 10})
    with pytest.raises(ValueError, match=r"eval_env_kwargs must be a dict"):
        EntropyCallback(eval_env="Personalization/Music-v0", eval_env_kwargs=[("n_eval", 10)])
    with pytest.raises(ValueError, match=r"evaluation states must be an array of numbers, got dtype <U1"):
        EntropyCallback(eval_obs=np.array([["a"]]))
    with pytest.raises(
        ValueError, match=r"evaluation states must have shape \(n, \*obs_shape\) with n >= 1, got \(0, 20\)"
    ):
        EntropyCallback(eval_obs=np.zeros((0, 20)))
    # neither given, and the training env is not a task: a clear error when training starts
    cartpole = PPO("MlpPolicy", gym.make("CartPole-v1"), n_steps=32, batch_size=32, device="cpu")
    with pytest.raises(ValueError, match=r"found no evaluation states: the model's training env \(DummyVecEnv of "
                       r"CartPole-v1\) is not a personalization_gym task. Pass eval_env"):  # fmt: skip
        cartpole.learn(32, callback=EntropyCallback())
    wrong_shape = EntropyCallback(eval_obs=np.zeros((5, 19), np.float32))
    with pytest.raises(ValueError, match=r"evaluation states must have shape \(n, 20\).*got \(5, 19\)"):
        make_model("A2C", music).learn(32, callback=wrong_shape)
    continuous = A2C("MlpPolicy", gym.make("Pendulum-v1"), device="cpu")
    with pytest.raises(TypeError, match="need a Discrete action space"):
        continuous.learn(10, callback=EntropyCallback(eval_obs=np.zeros((5, 3), np.float32)))


# --------------------------------------------------------------------------------------------------
# A real TensorBoard server


def test_tensorboard_serves_the_scalars_and_the_image(music: MusicEnv, tmp_path: Path, tensorboard_server) -> None:
    # a stock SB3 model with SB3's own TensorBoard folders (tb_log_name "ppo": ppo_1), the callback attached
    model = make_model("PPO", music, tensorboard_log=str(tmp_path / "tb"))
    model.learn(256, callback=EntropyCallback(eval_env=music, eval_freq=128, n_eval=200), tb_log_name="ppo")
    server = tensorboard_server(tmp_path / "tb")
    server.wait_for(lambda s: bool(s.get("/data/plugin/scalars/tags")["ppo_1"]["entropy/marginal"]))
    run_tags = server.get("/data/plugin/scalars/tags")["ppo_1"]
    for key in (*ENTROPY_TAGS, *ACTION_TAGS, *REWARD_TAGS):
        assert key in run_tags
    points = server.get("/data/plugin/scalars/scalars", run="ppo_1", tag="entropy/marginal")
    assert [point[1] for point in points] == [0, 128, 256]
    # the custom-scalars dashboard: the layout as written, and each chart's patterns select exactly its tags
    layout = server.get("/data/plugin/custom_scalars/layout")
    charts = {
        chart["title"]: chart["multiline"]["tag"] for category in layout["category"] for chart in category["chart"]
    }
    assert charts == {
        title: patterns for category in CUSTOM_SCALARS_LAYOUT.values() for title, (_, patterns) in category.items()
    }
    intended = {title: tags for category in CUSTOM_SCALARS_CHARTS.values() for title, tags in category.items()}
    for title, patterns in charts.items():
        served = set()
        for pattern in patterns:
            answer = server.get("/data/plugin/custom_scalars/scalars", run="ppo_1", tag=pattern)
            assert answer["regex_valid"]
            served |= set(answer["tag_to_events"])
        assert served == set(intended[title]), title
    image_tags = server.get("/data/plugin/images/tags")
    assert "actions/distribution" in image_tags["ppo_1"]
    images = server.get("/data/plugin/images/images", run="ppo_1", tag="actions/distribution")
    with urllib.request.urlopen(
        f"{server.base}/data/plugin/images/individualImage?{images[0]['query']}", timeout=10
    ) as response:
        assert response.read()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", ["PPO", "DQN"])
def test_an_evaluation_in_chunks_of_users_logs_what_the_whole_table_logs(name: str, music: MusicEnv) -> None:
    """A memory bound small enough to split Music-v0's 2,000 evaluation users into 7 chunks gives every metric and
    p(a) of the one-table evaluation, to 1e-12; the actions sampled for the reward are the same ones."""
    whole = EntropyCallback(eval_env=music, eval_freq=128, seed=3, log_figures=False)
    chunked = EntropyCallback(eval_env=music, eval_freq=128, seed=3, log_figures=False, eval_memory_mb=0.46)
    assert len(whole.states.chunks) == 1 and len(chunked.states.chunks) == 7
    assert whole.expected is not None and chunked.expected is None  # chunks ask the task for their rewards
    for callback in (whole, chunked):
        make_model(name, music).learn(256, callback=callback)
    assert [row["timesteps"] for row in chunked.history] == [row["timesteps"] for row in whole.history] == [0, 128, 256]
    for one, many in zip(whole.history, chunked.history, strict=True):
        assert set(one) == set(many)
        for key in one:
            np.testing.assert_allclose(many[key], one[key], rtol=1e-12, atol=1e-12, err_msg=key)
        assert many["eval/reward_stochastic"] == one["eval/reward_stochastic"]


def test_a_ratings_task_evaluated_in_chunks_gives_what_one_table_gives() -> None:
    """Ratings-v0 computes each chunk's rewards from its model, for those users only: the same metrics to 1e-12."""
    rng = np.random.default_rng(5)
    users, items = np.nonzero(rng.random((300, 40)) < 0.3)
    task = RatingsEnv((users, items, rng.integers(1, 6, len(users)).astype(float)), rank=3, eval_fraction=0.5)
    whole = EntropyCallback(eval_env=task, eval_freq=64, log_figures=False)
    chunked = EntropyCallback(eval_env=task, eval_freq=64, log_figures=False, eval_memory_mb=0.04)
    assert len(whole.states.chunks) == 1 and len(chunked.states.chunks) == 5
    for callback in (whole, chunked):
        make_model("PPO", task).learn(64, callback=callback)
    for one, many in zip(whole.history, chunked.history, strict=True):
        for key in one:
            np.testing.assert_allclose(many[key], one[key], rtol=1e-12, atol=1e-12, err_msg=key)


def test_a_model_of_another_task_is_refused_by_its_number_of_actions(music: MusicEnv) -> None:
    with pytest.raises(
        ValueError, match="the evaluation set's task Personalization/Behavior-v0 has 7 actions and the model 50"
    ):
        make_model("PPO", music).learn(32, callback=EntropyCallback(eval_env=BehaviorEnv(n_actions=7, state_dim=20)))


def test_a_catalogue_of_5000_items_logs_histograms_of_runs_of_neighbouring_items(tmp_path: Path) -> None:
    """Past HISTOGRAM_BUCKETS (2,048) actions a histogram bucket holds 3 neighbouring items (5,000 / 2,048, rounded
    up): 1,667 buckets whose weights are p(a) summed over each run, the last run 2 items."""
    rng = np.random.default_rng(0)
    task = gym.make("Personalization/Tabular-v0", features=rng.standard_normal((60, 3)), rewards=rng.random((60, 5000)))
    callback = EntropyCallback(eval_freq=64, seed=0)
    make_model("PPO", task, tensorboard_log=str(tmp_path / "tb")).learn(64, callback=callback)
    histogram = read_events(tmp_path / "tb").Histograms("actions/marginal")[-1].histogram_value
    p = callback.history[-1]["p"]
    expected = np.add.reduceat(p, np.arange(0, 5000, 3))
    assert len(histogram.bucket) == 1667
    assert histogram.bucket_limit[:2] == [2.5, 5.5] and histogram.bucket_limit[-1] == 4999.5
    np.testing.assert_allclose(histogram.bucket, expected, rtol=1e-6)
    assert histogram.sum == pytest.approx(float((np.arange(5000) * p).sum()), rel=1e-9)


def test_a_bar_chart_of_more_items_than_pixel_columns_shows_each_columns_tallest_bar() -> None:
    from sb3_entropy.figures import action_colors, bar_chart

    p = np.full(10_000, 1e-6)
    spikes = {123: 0.5, 4_321: 0.25, 9_999: 1.0, 124: 0.1}  # 123 and 124 share column 3: the taller is shown
    for action, share in spikes.items():
        p[action] = share
    colors = action_colors(10_000)
    image = bar_chart(p / p.sum(), colors, height=100, width=250)
    assert image.shape == (100, 250, 3)
    for action, height in ((123, 50), (4_321, 25), (9_999, 100)):
        column = action * 250 // 10_000
        painted = (image[:, column] != 255).any(axis=1)
        assert painted.sum() == height and painted[-height:].all()  # a bar from the bottom, as tall as its share
        np.testing.assert_array_equal(image[-1, column], colors[action])
    empty = [c for c in range(250) if c not in {3, 108, 249}]
    assert (image[:, empty] == 255).all()  # the other items' bars round to no pixel
