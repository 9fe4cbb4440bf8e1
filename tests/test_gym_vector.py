"""gym.make_vec: the native Gymnasium VectorEnv, against Gymnasium's own SyncVectorEnv and the documented stream."""

from __future__ import annotations

import shutil
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.wrappers.vector import RecordEpisodeStatistics

import personalization_gym
from personalization_gym import BehaviorEnv
from personalization_gym.envs.music import PACKAGED_SPOTIFY
from personalization_gym.gym_vector import BanditVectorEnv

BEHAVIOR = "Personalization/Behavior-v0"


def layout(value: Any) -> Any:
    """The structure of an info dict: keys, array dtypes and shapes, element types of object arrays."""
    if isinstance(value, dict):
        return {key: layout(item) for key, item in value.items()}
    if isinstance(value, np.ndarray) and value.dtype == object:
        return ("object", value.shape, [layout(item) for item in value])
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape)
    return type(value).__name__


def test_make_vec_builds_the_native_env_for_every_task() -> None:
    for env_id in personalization_gym.TASK_IDS:
        assert gym.spec(env_id).vector_entry_point is not None, env_id
    envs = gym.make_vec(BEHAVIOR, num_envs=6, n_eval=10)
    assert isinstance(envs, BanditVectorEnv) and envs.num_envs == 6
    assert envs.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    single = gym.make(BEHAVIOR, n_eval=10)
    assert envs.single_observation_space == single.observation_space
    assert envs.single_action_space == single.action_space
    assert envs.action_space == gym.spaces.MultiDiscrete([100] * 6)
    assert envs.observation_space.shape == (6, 100) and envs.observation_space.dtype == np.float32
    assert envs.spec.id == BEHAVIOR and envs.spec.kwargs["num_envs"] == 6


def test_same_layout_as_gymnasiums_sync_vector_env() -> None:
    """Ours and SyncVectorEnv over gym.make tasks (same-step autoreset) return the same kinds of things."""
    ours = gym.make_vec(BEHAVIOR, num_envs=4, n_eval=10)
    sync = gym.make_vec(BEHAVIOR, num_envs=4, vectorization_mode="sync", n_eval=10,
                        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP})  # fmt: skip
    assert isinstance(sync, SyncVectorEnv)
    actions = np.array([0, 5, 17, 99])
    results = []
    for envs in (ours, sync):
        obs, reset_infos = envs.reset(seed=0)
        results.append((obs, reset_infos, *envs.step(actions)))
    for ours_part, sync_part in zip(*results, strict=True):
        assert layout(ours_part) == layout(sync_part)
    _, _, _, _, terminations, truncations, infos = results[0]
    assert terminations.tolist() == [True] * 4 and truncations.tolist() == [False] * 4
    assert sorted(infos) == ["_final_info", "_final_obs", "final_info", "final_obs"]


def test_contexts_rewards_and_infos_follow_the_documented_stream() -> None:
    envs = gym.make_vec(BEHAVIOR, num_envs=5, n_eval=10)
    rng = np.random.default_rng(7)
    task = BehaviorEnv(n_eval=10)
    first, second = task.sample(5, rng), task.sample(5, rng)
    obs, _ = envs.reset(seed=7)
    np.testing.assert_array_equal(obs, first.obs)
    actions = np.array([3, 1, 4, 1, 5])
    next_obs, rewards, _, _, infos = envs.step(actions)
    np.testing.assert_array_equal(next_obs, second.obs)
    rows = np.arange(5)
    np.testing.assert_array_equal(rewards, first.expected[rows, actions])  # Behavior's rewards are deterministic
    for i in range(5):
        np.testing.assert_array_equal(infos["final_obs"][i], first.obs[i])
    info = infos["final_info"]
    np.testing.assert_array_equal(info["expected_reward"], first.expected[rows, actions])
    np.testing.assert_array_equal(info["optimal_reward"], first.expected.max(axis=1))
    np.testing.assert_array_equal(info["regret"], first.expected.max(axis=1) - first.expected[rows, actions])
    # The same seed gives the same stream; another seed another one.
    envs.reset(seed=7)
    np.testing.assert_array_equal(envs.step(actions)[0], second.obs)
    assert not np.array_equal(envs.reset(seed=8)[0], first.obs)


def test_noisy_rewards_come_from_realize() -> None:
    envs = gym.make_vec("Personalization/Ads-v0", num_envs=512, n_eval=10)
    envs.reset(seed=0)
    rewards = np.concatenate([envs.step(np.zeros(512, dtype=np.int64))[1] for _ in range(10)])
    assert set(np.unique(rewards)) == {0.0, 1.0}


def test_stock_gymnasium_wrapper_counts_one_step_episodes() -> None:
    envs = RecordEpisodeStatistics(gym.make_vec(BEHAVIOR, num_envs=3, n_eval=10))
    envs.reset(seed=1)
    _, rewards, _, _, infos = envs.step(np.array([2, 4, 6]))
    np.testing.assert_allclose(infos["episode"]["r"], rewards)
    assert infos["episode"]["l"].tolist() == [1, 1, 1]


def test_task_arguments_and_shared_task(tmp_path) -> None:
    shutil.copytree(PACKAGED_SPOTIFY, tmp_path / "spotify")
    envs = gym.make_vec("Personalization/Music-v0", num_envs=3, data_dir=tmp_path, n_eval=200)
    assert envs.task.data_folder == tmp_path / "spotify"  # the task's arguments reach the one shared task
    eval_sets = envs.call("eval_set")
    assert len(eval_sets) == 3 and all(s is eval_sets[0] for s in eval_sets) and len(eval_sets[0]) == 200
    assert envs.get_attr("n_actions") == (50, 50, 50)
    envs.set_attr("n_eval", 100)
    assert envs.task.n_eval == 100


@pytest.mark.parametrize(
    ("seed", "message"),
    [([0, 1, 2], r"no per-env seeds\), got \[0, 1, 2\]"), (-1, "non-negative int or None"), (1.5, "got 1.5")],
)
def test_bad_seeds(seed, message) -> None:
    envs = gym.make_vec(BEHAVIOR, num_envs=3, n_eval=10)
    with pytest.raises(ValueError, match=message):
        envs.reset(seed=seed)


def test_bad_calls() -> None:
    envs = gym.make_vec(BEHAVIOR, num_envs=3, n_eval=10)
    with pytest.raises(RuntimeError, match=r"needs contexts: call reset\(\) first"):
        envs.step(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match=r"takes no options, got \['x'\]"):
        envs.reset(options={"x": 1})
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(3,\), one per env, got dtype float64"):
        envs.step(np.zeros(3))
    with pytest.raises(ValueError, match=r"must lie in \[0, 100\), got 0..100"):
        envs.step(np.array([0, 100, 1]))
    with pytest.raises(RuntimeError, match="nothing to render"):
        envs.render()
    with pytest.raises(ValueError, match="num_envs must be an integer >= 1, got 0"):
        gym.make_vec(BEHAVIOR, num_envs=0)
