"""make_vec: SB3's VecEnv conventions, seeding, and the equivalence of batched and literal training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import call_script
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.callbacks import BaseCallback

import personalization_gym
from personalization_gym import BehaviorEnv
from sb3_entropy import BanditVecEnv, make_vec
from sb3_entropy.agents import AGENT_DEFAULTS, NotWholeBatchesError, batched_hyperparameters
from sb3_entropy.study.runs import RunSpec, train


def test_step_conventions() -> None:
    venv = make_vec("Personalization/Behavior-v0", 8, seed=0, monitor=False, n_eval=50)
    obs = venv.reset()
    assert obs.shape == (8, 100) and obs.dtype == np.float32
    actions = np.arange(8)
    task = venv.task
    expected = task.sample(8, np.random.default_rng(0)).expected  # the first contexts, as documented
    next_obs, rewards, dones, infos = venv.step(actions)
    assert dones.tolist() == [True] * 8 and rewards.dtype == np.float32
    np.testing.assert_allclose(rewards, expected[np.arange(8), actions], rtol=1e-6)
    for i, info in enumerate(infos):
        np.testing.assert_array_equal(info["terminal_observation"], obs[i])
        assert info["expected_reward"] == pytest.approx(expected[i, actions[i]])
        assert info["optimal_reward"] == pytest.approx(expected[i].max())
        assert info["regret"] == pytest.approx(expected[i].max() - expected[i, actions[i]])
    assert not np.array_equal(next_obs, obs)  # fresh contexts after every step


def test_contexts_and_seeding() -> None:
    def stream(venv) -> np.ndarray:
        first = venv.reset()
        return np.concatenate([first, *(venv.step(np.zeros(4, dtype=np.int64))[0] for _ in range(5))])

    made = stream(make_vec("Personalization/Behavior-v0", 4, seed=3, monitor=False, n_eval=10))
    rng = np.random.default_rng(3)
    documented = np.concatenate([BehaviorEnv(n_eval=10).sample(4, rng).obs for _ in range(6)])
    np.testing.assert_array_equal(made, documented)
    reseeded = make_vec("Personalization/Behavior-v0", 4, monitor=False, n_eval=10)
    reseeded.seed(3)  # what an SB3 model with seed=3 does
    np.testing.assert_array_equal(stream(reseeded), made)
    assert not np.array_equal(
        stream(make_vec("Personalization/Behavior-v0", 4, seed=4, monitor=False, n_eval=10)), made
    )


def test_attributes_methods_and_render(data_root) -> None:
    venv = make_vec("Personalization/Music-v0", 4, data_dir=data_root, n_eval=300)
    (eval_set,) = venv.env_method("eval_set", indices=[0])
    assert len(eval_set) == 300 and eval_set is venv.get_attr("eval_set")[0]()  # one shared task
    assert venv.get_attr("n_actions") == [50] * 4
    assert venv.env_is_wrapped(object) == [False] * 4
    with pytest.raises(RuntimeError, match="a batched env of personalization tasks has nothing to render"):
        venv.render()


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        (np.zeros(3, dtype=np.int64), r"integer array of shape \(4,\), one per env, got dtype int64 and shape \(3,\)"),
        (np.zeros(4), r"got dtype float64"),
        (np.array([0, 1, 2, 100]), r"actions must lie in \[0, 100\), got 0..100"),
    ],
)
def test_bad_actions(actions, message) -> None:
    venv = make_vec("Personalization/Behavior-v0", 4, seed=0, n_eval=10)
    venv.reset()
    with pytest.raises(ValueError, match=message):
        venv.step(actions)


def test_noisy_rewards_come_from_realize() -> None:
    venv = make_vec("Personalization/Ads-v0", 256, seed=0, monitor=False, n_eval=10)
    venv.reset()
    rewards = np.concatenate([venv.step(np.zeros(256, dtype=np.int64))[1] for _ in range(20)])
    assert set(np.unique(rewards)) == {0.0, 1.0}


def test_only_tasks_can_be_batched() -> None:
    with pytest.raises(TypeError, match="task must be a personalization_gym BanditEnv"):
        BanditVecEnv(object(), 4)
    with pytest.raises(ValueError, match="n_envs must be an integer >= 1, got 0"):
        make_vec("Personalization/Behavior-v0", 0)


# --------------------------------------------------------------------------------------------------
# Batched and literal setups: the same updates, at the same timesteps, with the same batch sizes


class UpdateRecorder(BaseCallback):
    """(timesteps, gradient updates so far, exploration rate) at the start of every rollout, and at the end."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[int, int, float]] = []

    def _record(self) -> None:
        self.records.append(
            (self.num_timesteps, self.model._n_updates, float(getattr(self.model, "exploration_rate", 0)))
        )

    def _on_rollout_start(self) -> None:
        self._record()

    def _on_training_end(self) -> None:
        self._record()

    def _on_step(self) -> bool:
        return True


@pytest.mark.parametrize("name", ["a2c", "ppo", "dqn"])
def test_batched_and_literal_updates_coincide(name: str) -> None:
    torch.set_num_threads(1)
    algorithm = {"a2c": A2C, "ppo": PPO, "dqn": DQN}[name]
    records = {}
    for batched in (False, True):
        hyperparameters = dict(AGENT_DEFAULTS[name])
        if batched:
            env = make_vec("Personalization/Behavior-v0", 32, seed=0, n_eval=10, n_actions=5, state_dim=3)
            hyperparameters = batched_hyperparameters(name, hyperparameters)
        else:
            env = BehaviorEnv(n_eval=10, n_actions=5, state_dim=3)
        model = algorithm("MlpPolicy", env, seed=0, device="cpu", policy_kwargs={"net_arch": [8]}, **hyperparameters)
        recorder = UpdateRecorder()
        model.learn(640, callback=recorder)
        records[batched] = [(steps, updates) for steps, updates, _ in recorder.records]
        if name == "dqn":
            records[(batched, "eps")] = [eps for _, _, eps in recorder.records]
        batch = model.rollout_buffer.buffer_size * model.n_envs if name != "dqn" else model.batch_size
        assert batch == 32
    expected = [(32 * k, k) for k in range(21)]  # one update per 32 transitions, 20 in all
    assert records[False] == records[True] == expected
    if name == "dqn":
        np.testing.assert_allclose(records[(False, "eps")], records[(True, "eps")])


def test_batched_hyperparameters() -> None:
    assert batched_hyperparameters("a2c", {"n_steps": 64}) == {"n_steps": 2}
    assert batched_hyperparameters("dqn", {"train_freq": (32, "step")}) == {"train_freq": 1}
    assert batched_hyperparameters("dqn", {"train_freq": (4, "episode")}) == {"train_freq": (4, "episode")}
    with pytest.raises(NotWholeBatchesError, match=r"ppo: n_steps=48 is not a multiple of 32.*\(batched=False: one"):
        batched_hyperparameters("ppo", {"n_steps": 48})
    # the command line names its flag
    result = call_script("train.py", "Personalization/Behavior-v0", "--algo", "ppo", "--hp", "n_steps=48")
    assert result.returncode == 2
    assert result.stderr.strip().endswith("or a multiple of 32 (--literal trains the literal setup)"), result.stderr


def test_batched_and_literal_training_agree_within_seed_noise(data_root) -> None:
    finals = {}
    for batched in (False, True):
        values = []
        for seed in range(3):
            spec = RunSpec("Personalization/Music-v0", "a2c", seed, 4000, [64, 64], {"learning_rate": 3e-3},
                           {"data_dir": data_root, "n_eval": 2000}, eval_freq=4000, log_figures=False, batched=batched)  # fmt: skip
            _, callback = train(spec)
            values.append([callback.history[-1]["entropy/marginal"], callback.history[-1]["eval/expected_reward"]])
        finals[batched] = np.array(values)
    for column, name in enumerate(("entropy", "reward")):
        literal, batched = finals[False][:, column], finals[True][:, column]
        noise = np.sqrt(literal.var(ddof=1) / 3 + batched.var(ddof=1) / 3)
        assert abs(literal.mean() - batched.mean()) < 4 * noise + 0.02, (name, literal, batched)
    assert personalization_gym.TASK_IDS  # the package is importable alongside
