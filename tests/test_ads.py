"""Ads-v0 against independent computations of RecoGym's model (v1)."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from personalization_gym import AdsEnv


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def recogym_ctr(x):
    return sigmoid(5.0 * sigmoid(2.0 * sigmoid(0.3 * x) - 2.0) - 6.0)


@pytest.fixture(scope="module")
def ads() -> AdsEnv:
    return AdsEnv(task_seed=3)


def test_task_is_drawn_as_documented(ads: AdsEnv) -> None:
    rng = np.random.default_rng(np.random.SeedSequence(3).spawn(2)[1])
    gamma = rng.normal(0.0, 1.0, size=(50, 5))
    mu = rng.normal(0.0, 3.0, size=50)
    np.testing.assert_array_equal(ads.gamma, gamma)
    np.testing.assert_array_equal(ads.mu, mu)
    np.testing.assert_array_equal(ads.beta, gamma)  # no flips by default
    np.testing.assert_array_equal(ads.mu_b, mu)
    assert ads.action_space.n == 50 and ads.observation_space.shape == (51,)


def test_expected_reward_is_recogym_ctr_of_the_hidden_user(ads: AdsEnv) -> None:
    eval_set = ads.eval_set()
    omega = eval_set.hidden["omega"]
    ctr = recogym_ctr(omega @ ads.gamma.T + ads.mu)
    np.testing.assert_allclose(eval_set.expected, ctr, rtol=1e-13, atol=0)
    # f maps the real line into (f(-inf), f(+inf)) = (sigmoid(5 sigmoid(-2) - 6), sigmoid(5/2 - 6))
    low, high = sigmoid(5 * sigmoid(-2.0) - 6), sigmoid(2.5 - 6)
    assert low < eval_set.expected.min() and eval_set.expected.max() < high
    assert 0.004 < low and high < 0.03  # a fraction of a percent to about 3 %


def test_observation_is_view_frequencies_and_inverse_length(ads: AdsEnv) -> None:
    batch = ads.sample(5000, np.random.default_rng(0))
    lengths = batch.hidden["session_length"]
    frequencies, inverse_length = batch.obs[:, :50], batch.obs[:, 50]
    assert batch.obs.dtype == np.float32
    np.testing.assert_allclose(frequencies.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(inverse_length, (1.0 / lengths).astype(np.float32))
    counts = frequencies.astype(np.float64) * lengths[:, None]
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-4)
    assert ads.observation_space.contains(batch.obs[0])


def test_session_lengths_are_geometric(ads: AdsEnv) -> None:
    lengths = ads.sample(100_000, np.random.default_rng(1)).hidden["session_length"]
    assert lengths.min() == 1
    # P(L = l) = 0.74^(l-1) 0.26; lengths 1..11 and a pooled tail
    observed = np.array([*(np.sum(lengths == length) for length in range(1, 12)), np.sum(lengths >= 12)])
    probabilities = np.array([0.74 ** (length - 1) * 0.26 for length in range(1, 12)] + [0.74**11])
    expected = probabilities * len(lengths)
    chi2 = ((observed - expected) ** 2 / expected).sum()
    assert chi2 < 40.0, (observed, expected.round())  # 11 dof: P(chi2 > 40) ~ 3e-5


def test_views_follow_the_softmax_of_the_user(ads: AdsEnv) -> None:
    # Without drift every view of a session is drawn from softmax(Gamma omega + mu) with the final omega.
    env = AdsEnv(task_seed=3, sigma_omega=0.0, n_eval=10)
    batch = env.sample(40_000, np.random.default_rng(2))
    lengths = batch.hidden["session_length"]
    observed = (batch.obs[:, :50].astype(np.float64) * lengths[:, None]).round().sum(axis=0)
    logits = batch.hidden["omega"] @ env.gamma.T + env.mu
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    expected = (probabilities * lengths[:, None]).sum(axis=0)
    common = expected >= 20  # chi-square over the products seen often enough, the rest pooled
    observed_cells = np.append(observed[common], observed[~common].sum())
    expected_cells = np.append(expected[common], expected[~common].sum())
    chi2 = ((observed_cells - expected_cells) ** 2 / expected_cells).sum()
    dof = len(observed_cells) - 1
    assert chi2 < dof + 6 * math.sqrt(2 * dof), (chi2, dof)


def test_taste_drifts_between_views_only(ads: AdsEnv) -> None:
    batch = ads.sample(50_000, np.random.default_rng(3))
    lengths = batch.hidden["session_length"]
    start, end = batch.hidden["omega_start"], batch.hidden["omega"]
    np.testing.assert_allclose(end[lengths == 1], start[lengths == 1])  # one view: no drift at all
    several = lengths > 1
    z = (end - start)[several] / (0.1 * np.sqrt(lengths[several] - 1)[:, None])
    assert abs(z.mean()) < 5 / math.sqrt(z.size) and abs(z.var() - 1) < 0.03
    assert abs(start.mean()) < 5 / math.sqrt(start.size) and abs(start.var() - 1) < 0.03


def test_click_rate_matches_expected_ctr() -> None:
    env = AdsEnv(task_seed=1, n_eval=10)
    env.reset(seed=0)
    action_rng = np.random.default_rng(5)
    rewards, expected = [], []
    for _ in range(40_000):
        env.reset()
        _, reward, _, _, info = env.step(int(action_rng.integers(50)))
        rewards.append(reward)
        expected.append(info["expected_reward"])
    rewards, expected = np.array(rewards), np.array(expected)
    assert set(np.unique(rewards)) == {0.0, 1.0}
    standard_error = math.sqrt(expected.mean() * (1 - expected.mean()) / len(rewards))
    assert abs(rewards.mean() - expected.mean()) < 4 * standard_error


def test_ctr_mode_rewards_are_the_ctr() -> None:
    env = AdsEnv(reward_mode="ctr", n_eval=10)
    env.reset(seed=2)
    for action in range(0, 50, 7):
        env.reset()
        _, reward, _, _, info = env.step(action)
        assert reward == info["expected_reward"] and 0.004 < reward < 0.03


@pytest.mark.parametrize("reward_mode", ["click", "ctr"])
def test_normalized_rewards(reward_mode: str) -> None:
    env = AdsEnv(normalize=True, reward_mode=reward_mode, task_seed=4, n_eval=2000)
    eval_set = env.eval_set()
    np.testing.assert_allclose(eval_set.expected.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(eval_set.expected.max(axis=1), 1.0, rtol=1e-12)
    ctr = eval_set.hidden["ctr"]
    mean, best = ctr.mean(axis=1, keepdims=True), ctr.max(axis=1, keepdims=True)
    np.testing.assert_allclose(eval_set.expected, (ctr - mean) / (best - mean), rtol=1e-12)
    actions = np.random.default_rng(0).integers(50, size=len(eval_set))
    rewards = env.realize(eval_set, actions, np.random.default_rng(1))
    rows = np.arange(len(eval_set))
    if reward_mode == "ctr":
        np.testing.assert_array_equal(rewards, eval_set.expected[rows, actions])
    else:
        # a click maps to (1 - mean) / (best - mean), no click to -mean / (best - mean)
        clicked = np.isclose(rewards, ((1 - mean) / (best - mean))[:, 0][rows])
        no_click = np.isclose(rewards, (-mean / (best - mean))[:, 0][rows])
        assert (clicked | no_click).all() and 0 < clicked.sum() < len(rewards)
        many = np.concatenate([env.realize(eval_set, actions, np.random.default_rng(seed)) for seed in range(40)])
        target = np.tile(eval_set.expected[rows, actions], 40)
        assert abs(many.mean() - target.mean()) < 4 * many.std() / math.sqrt(len(many))


def test_flips_swap_the_most_correlated_pairs() -> None:
    env = AdsEnv(n_flips=3, task_seed=5, n_eval=10)
    gamma = env.gamma
    covariance = gamma @ gamma.T
    pairs = sorted(((covariance[i, j], i, j) for i in range(50) for j in range(i + 1, 50)), reverse=True)
    used, swapped = set(), []
    for _, i, j in pairs:
        if i not in used and j not in used:
            swapped.append((i, j))
            used |= {i, j}
        if len(swapped) == 3:
            break
    index = np.arange(50)
    for i, j in swapped:
        index[i], index[j] = j, i
    np.testing.assert_array_equal(env.beta, gamma[index])
    np.testing.assert_array_equal(env.mu_b, env.mu[index])
    assert not np.array_equal(env.beta, gamma)


def test_personalization_pays_more_as_popularity_matters_less() -> None:
    def gap(sigma_mu: float) -> float:
        ctr = AdsEnv(sigma_mu=sigma_mu, n_eval=5000).eval_set().expected
        return ctr.max(axis=1).mean() / ctr.mean(axis=0).max() - 1.0

    gaps = [gap(sigma_mu) for sigma_mu in (3.0, 1.0, 0.3)]
    assert 0.0 < gaps[0] < gaps[1] < gaps[2]


def test_determinism() -> None:
    def run(seed: int) -> list[float]:
        env = AdsEnv(task_seed=2, n_eval=10)
        out = [float(env.reset(seed=seed)[0].sum())]
        for action in range(300):
            out.append(env.step(action % 50)[1])
            out.append(float(env.reset()[0][-1]))
        return out

    assert run(1) == run(1)
    assert run(1) != run(2)
    np.testing.assert_array_equal(AdsEnv(task_seed=7).gamma, AdsEnv(task_seed=7).gamma)
    assert not np.array_equal(AdsEnv(task_seed=7).gamma, AdsEnv(task_seed=8).gamma)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reward_mode": "clicks"}, r"reward_mode must be one of \('click', 'ctr'\), got 'clicks'"),
        ({"normalize": "yes"}, r"normalize must be True or False, got 'yes'"),
        ({"sigma_mu": -1.0}, r"sigma_mu must be a finite number >= 0, got -1.0"),
        ({"sigma_omega": "0.1"}, r"sigma_omega must be a finite number >= 0, got '0.1'"),
        ({"stay_organic": 1.0}, r"stay_organic must be a number in \[0, 1\), got 1.0"),
        ({"n_flips": 26}, r"n_flips must be at most n_products // 2 = 25, got 26"),
        ({"n_products": 1}, r"n_products must be an integer >= 2, got 1"),
        ({"latent_dim": 0}, r"latent_dim must be an integer >= 1, got 0"),
    ],
)
def test_bad_arguments_raise(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        AdsEnv(**kwargs)


@pytest.mark.parametrize("kwargs", [{}, {"reward_mode": "ctr", "normalize": True}])
def test_checkers_pass(kwargs) -> None:
    env = gym.make("Personalization/Ads-v0", n_eval=50, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gymnasium_check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env.unwrapped)
