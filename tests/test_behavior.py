"""Behavior-v0 against an independent numpy computation of the documented model."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from personalization_gym import BehaviorEnv


def documented_task(task_seed: int, n_actions=100, state_dim=100, action_dim=100, feature_dim=5, hidden=()):
    """Redraw the task from its documented seeding: SeedSequence(task_seed).spawn(2)[1] drives task_rng."""
    rng = np.random.default_rng(np.random.SeedSequence(task_seed).spawn(2)[1])
    actions = rng.uniform(-1.0, 1.0, size=(n_actions, action_dim))
    state_dims, action_dims = [state_dim, *hidden, feature_dim], [action_dim, *hidden, feature_dim]
    state_weights = [rng.normal(size=(state_dims[i] + 1, state_dims[i + 1])) for i in range(len(state_dims) - 1)]
    action_weights = [rng.normal(size=(action_dims[i] + 1, action_dims[i + 1])) for i in range(len(action_dims) - 1)]
    return actions, state_weights, action_weights


def reference_mapping(x: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
    """The reference code's propagate(): prepend a column of ones, multiply, exp(-z^2) / tanh."""
    z = np.array(x, ndmin=2, dtype=np.float64)
    for i, weight in enumerate(weights):
        z = np.concatenate([np.ones((len(z), 1)), z], axis=1) @ weight
        z = np.exp(-(z**2)) if i < len(weights) - 1 else np.tanh(z)
    return z


def reference_rewards(states: np.ndarray, task) -> np.ndarray:
    actions, state_weights, action_weights = task
    fs, fa = reference_mapping(states, state_weights), reference_mapping(actions, action_weights)
    return (fs @ fa.T) / np.outer(np.linalg.norm(fs, axis=1), np.linalg.norm(fa, axis=1))


@pytest.fixture(scope="module")
def behavior() -> BehaviorEnv:
    return BehaviorEnv(task_seed=7)


def test_paper_configuration(behavior: BehaviorEnv) -> None:
    assert behavior.action_space.n == 100
    assert behavior.observation_space.shape == (100,)
    assert behavior.observation_space.dtype == np.float32
    assert (behavior.observation_space.low == -1).all() and (behavior.observation_space.high == 1).all()
    assert behavior.action_vectors.shape == (100, 100)
    assert [w.shape for w in behavior.state_map.weights] == [(101, 5)]
    assert [w.shape for w in behavior.action_map.weights] == [(101, 5)]


def test_task_is_drawn_as_documented(behavior: BehaviorEnv) -> None:
    actions, state_weights, action_weights = documented_task(7)
    np.testing.assert_array_equal(behavior.action_vectors, actions)
    np.testing.assert_array_equal(behavior.state_map.weights[0], state_weights[0])
    np.testing.assert_array_equal(behavior.action_map.weights[0], action_weights[0])


def test_eval_set_rewards_match_independent_computation(behavior: BehaviorEnv) -> None:
    eval_set = behavior.eval_set()
    assert eval_set.obs.shape == (10_000, 100) and eval_set.obs.dtype == np.float32
    assert eval_set.expected.shape == (10_000, 100) and eval_set.expected.dtype == np.float64
    np.testing.assert_allclose(
        eval_set.expected, reference_rewards(eval_set.obs, documented_task(7)), rtol=0, atol=1e-12
    )
    assert -1.0 <= eval_set.expected.min() and eval_set.expected.max() <= 1.0


def test_stepped_rewards_match_independent_computation(behavior: BehaviorEnv) -> None:
    task = documented_task(7)
    behavior.reset(seed=3)
    for action in range(0, 100, 7):
        obs, _ = behavior.reset()
        _, reward, terminated, _, info = behavior.step(action)
        expected = reference_rewards(obs[None], task)[0]
        assert terminated
        assert reward == pytest.approx(expected[action], abs=1e-12)
        assert info["optimal_reward"] == pytest.approx(expected.max(), abs=1e-12)


def test_hidden_layers_and_sizes() -> None:
    env = BehaviorEnv(
        n_actions=12, state_dim=6, action_dim=4, feature_dim=3, hidden_dims=(8, 5), n_eval=400, task_seed=2
    )
    assert env.action_space.n == 12 and env.observation_space.shape == (6,)
    assert [w.shape for w in env.state_map.weights] == [(7, 8), (9, 5), (6, 3)]
    assert [w.shape for w in env.action_map.weights] == [(5, 8), (9, 5), (6, 3)]
    task = documented_task(2, n_actions=12, state_dim=6, action_dim=4, feature_dim=3, hidden=(8, 5))
    eval_set = env.eval_set()
    np.testing.assert_allclose(eval_set.expected, reference_rewards(eval_set.obs, task), rtol=0, atol=1e-12)


def test_hidden_dims_may_come_as_a_list_or_array() -> None:
    shapes = [(101, 4), (5, 5)]
    for hidden_dims in ([4], np.array([4])):
        assert [w.shape for w in BehaviorEnv(hidden_dims=hidden_dims, n_eval=10).state_map.weights] == shapes


def test_states_are_uniform_on_the_cube(behavior: BehaviorEnv) -> None:
    states = behavior.sample(20_000, np.random.default_rng(0)).obs
    assert states.min() >= -1.0 and states.max() <= 1.0
    # U(-1, 1): mean 0 and variance 1/3 in every coordinate (2M draws, 20,000 per coordinate)
    assert np.abs(states.mean(axis=0)).max() < 5 * np.sqrt(1 / 3 / 20_000)
    np.testing.assert_allclose(states.var(axis=0), 1 / 3, atol=0.02)
    assert np.abs(np.corrcoef(states[:, :5].T) - np.eye(5)).max() < 0.04


def test_task_seed_determines_the_task() -> None:
    a, b, c = (
        BehaviorEnv(task_seed=1, n_eval=50),
        BehaviorEnv(task_seed=1, n_eval=50),
        BehaviorEnv(task_seed=2, n_eval=50),
    )
    np.testing.assert_array_equal(a.action_vectors, b.action_vectors)
    np.testing.assert_array_equal(a.eval_set().expected, b.eval_set().expected)
    assert not np.array_equal(a.action_vectors, c.action_vectors)
    assert not np.array_equal(a.eval_set().expected, c.eval_set().expected)


def test_made_through_gymnasium_with_kwargs() -> None:
    env = gym.make("Personalization/Behavior-v0", n_actions=10, feature_dim=2, n_eval=20)
    assert env.action_space.n == 10
    obs, _ = env.reset(seed=0)
    assert obs.shape == (100,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_actions": 1}, r"n_actions must be an integer >= 2, got 1"),
        ({"n_actions": 10.0}, r"n_actions must be an integer >= 2, got 10.0"),
        ({"state_dim": 0}, r"state_dim must be an integer >= 1, got 0"),
        ({"action_dim": -3}, r"action_dim must be an integer >= 1, got -3"),
        ({"feature_dim": "5"}, r"feature_dim must be an integer >= 1, got '5'"),
        ({"hidden_dims": 5}, r"hidden_dims must be a sequence of integers >= 1, got 5"),
        ({"hidden_dims": "55"}, r"hidden_dims must be a sequence of integers >= 1, got '55'"),
        ({"hidden_dims": (5, 0)}, r"each of hidden_dims must be an integer >= 1, got 0"),
    ],
)
def test_bad_arguments_raise(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        BehaviorEnv(**kwargs)
