"""Tasks from a user's own data: Tabular-v0, Classification-v0, Digits-v0 and Ratings-v0, checked against
independent computations, through Gymnasium's and SB3's env checkers, with training, files and bad inputs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import EXPOSURE_TAGS
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from personalization_gym import ClassificationEnv, DataOptions, DigitsEnv, RatingsEnv, TabularEnv
from personalization_gym.lowrank import RatingTable, fit_low_rank
from sb3_entropy import EntropyCallback, make_vec

N_USERS, D, K = 120, 4, 6


@pytest.fixture
def arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    features = rng.standard_normal((N_USERS, D))
    rewards = rng.random((N_USERS, K))  # in [0, 1]: every noise model applies
    return features, rewards


def test_tabular_eval_set_is_every_held_out_user_once_with_exact_rewards(arrays) -> None:
    features, rewards = arrays
    env = gym.make("Personalization/Tabular-v0", features=features, rewards=rewards)
    task = env.unwrapped
    held_out = round(0.2 * N_USERS)
    # a partition of the users: held-out users once each, the rest to train on
    assert len(task.eval_users) == held_out and len(task.train_users) == N_USERS - held_out
    assert sorted([*task.eval_users, *task.train_users]) == list(range(N_USERS))
    eval_set = task.eval_set()
    assert eval_set.obs.dtype == np.float32 and eval_set.expected.dtype == np.float64
    for row, user in enumerate(task.eval_users):
        assert eval_set.obs[row].tolist() == [np.float32(x) for x in features[user]]
        assert eval_set.expected[row].tolist() == rewards[user].tolist()
    assert env.observation_space == gym.spaces.Box(
        features.astype(np.float32).min(0), features.astype(np.float32).max(0), dtype=np.float32
    )
    assert env.action_space == gym.spaces.Discrete(K)
    # the training stream draws training users only, each context with its own row of rewards
    obs, _ = env.reset(seed=5)
    seen = set()
    for _ in range(300):
        user = int(task._block.hidden["user"][task._context_index])
        assert user in set(task.train_users.tolist())
        assert obs.tolist() == [np.float32(x) for x in features[user]]
        action = int(np.argmax(rewards[user]))
        _obs_after, reward, terminated, truncated, info = env.step(action)
        assert reward == rewards[user, action] == info["expected_reward"] == info["optimal_reward"]
        assert terminated and not truncated
        seen.add(user)
        obs, _ = env.reset()
    assert len(seen) > 50
    # the split is fixed by task_seed: the same seed, the same split; another seed, another split
    again = TabularEnv(features, rewards)
    assert again.eval_users.tolist() == task.eval_users.tolist()
    assert TabularEnv(features, rewards, task_seed=1).eval_users.tolist() != task.eval_users.tolist()
    first = TabularEnv(features, rewards, n_eval=7)
    assert first.eval_set().expected.tolist() == rewards[task.eval_users[:7]].tolist()


def _rewards_of(env_kwargs: dict, actions_of, steps: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """(received, expected) rewards of a batched VecEnv over ``steps`` steps of 32 users."""
    vec = make_vec("Personalization/Tabular-v0", 32, seed=0, **env_kwargs)
    obs = vec.reset()
    received, expected = [], []
    for _ in range(steps):
        obs, reward, _, infos = vec.step(actions_of(obs))
        received += reward.tolist()
        expected += [info["expected_reward"] for info in infos]
    return np.array(received), np.array(expected)


def test_noise_models(arrays) -> None:
    features, rewards = arrays

    def actions_of(obs):
        return np.arange(len(obs)) % K

    received, expected = _rewards_of({"features": features, "rewards": rewards}, actions_of)
    np.testing.assert_array_equal(received, expected.astype(np.float32))
    received, expected = _rewards_of({"features": features, "rewards": rewards, "noise": "bernoulli"}, actions_of)
    assert set(np.unique(received)) == {0.0, 1.0}
    # clicks: mean and a 5-sigma band of the Bernoulli draws' mean
    sigma = math.sqrt((expected * (1 - expected)).sum()) / len(expected)
    assert abs(received.mean() - expected.mean()) < 5 * sigma
    received, expected = _rewards_of(
        {"features": features, "rewards": rewards, "noise": "gaussian", "noise_sd": 0.5}, actions_of
    )
    noise = received - expected
    assert abs(noise.mean()) < 5 * 0.5 / math.sqrt(len(noise))
    assert noise.std() == pytest.approx(0.5, rel=0.05)
    # the evaluation set holds the exact expected rewards whatever the noise
    env = TabularEnv(features, rewards, noise="gaussian", noise_sd=0.5)
    assert env.eval_set().expected.tolist() == rewards[env.eval_users].tolist()


def test_files_give_the_same_task_as_arrays(arrays, tmp_path: Path) -> None:
    features, rewards = arrays
    reference = TabularEnv(features, rewards).eval_set()
    np.save(tmp_path / "features.npy", features)
    np.savez(tmp_path / "rewards.npz", rewards)  # one array: whatever its name
    np.savez(tmp_path / "both.npz", features=features, rewards=rewards)
    for name, array, header in (("features", features, ["f0", "f1", "f2", "f3"]), ("rewards", rewards, None)):
        with open(tmp_path / f"{name}.csv", "w", newline="") as stream:
            writer = csv.writer(stream)
            if header:
                writer.writerow(header)
            writer.writerows([[repr(float(x)) for x in row] for row in array])
    for kwargs in (
        {"features": tmp_path / "features.npy", "rewards": tmp_path / "rewards.npz"},
        {"features": str(tmp_path / "both.npz"), "rewards": str(tmp_path / "both.npz")},
        {"features": tmp_path / "features.csv", "rewards": tmp_path / "rewards.csv"},
    ):
        eval_set = gym.make("Personalization/Tabular-v0", **kwargs).unwrapped.eval_set()
        np.testing.assert_array_equal(eval_set.obs, reference.obs)
        np.testing.assert_array_equal(eval_set.expected, reference.expected)


def test_classification_rewards_are_the_mnist_rule() -> None:
    rng = np.random.default_rng(0)
    features, labels = rng.standard_normal((60, 3)), rng.integers(0, 5, size=60)
    env = ClassificationEnv(features, labels, n_classes=7)
    eval_set = env.eval_set()
    for row, user in enumerate(env.eval_users):
        # by hand: 1 for the right label, -1/(K-1) for each of the K-1 wrong ones
        assert eval_set.expected[row].tolist() == pytest.approx(
            [1.0 if a == labels[user] else -1 / 6 for a in range(7)], abs=1e-15
        )
        assert eval_set.hidden["label"][row] == labels[user]
    assert env.action_space == gym.spaces.Discrete(7)
    assert ClassificationEnv(features, labels).n_classes == labels.max() + 1


def test_digits_is_scikit_learns_bundled_set() -> None:
    digits = load_digits()
    env = gym.make("Personalization/Digits-v0")
    task = env.unwrapped
    assert env.observation_space == gym.spaces.Box(0.0, 1.0, (64,), np.float32)
    assert env.action_space == gym.spaces.Discrete(10)
    assert task.n_users == 1797 and len(task.eval_users) == 359 and len(task.train_users) == 1438
    eval_set = task.eval_set()
    np.testing.assert_array_equal(eval_set.obs, (digits.data[task.eval_users] / 16).astype(np.float32))
    np.testing.assert_array_equal(eval_set.expected.argmax(axis=1), digits.target[task.eval_users])
    assert eval_set.expected.max(axis=1).tolist() == [1.0] * 359


def planted(n_users: int = 40, n_items: int = 30, rank: int = 3, observed: float = 0.5, seed: int = 0):
    """A rating matrix mu + b + c + P Q^T of the given rank and a random half of its entries."""
    rng = np.random.default_rng(seed)
    matrix = (
        3.0
        + rng.normal(0, 0.3, (n_users, 1))
        + rng.normal(0, 0.3, (1, n_items))
        + rng.standard_normal((n_users, rank)) @ rng.standard_normal((rank, n_items))
    )
    mask = rng.random(matrix.shape) < observed
    mask[np.arange(n_users), rng.integers(n_items, size=n_users)] = True  # every user and item rated at least once
    mask[rng.integers(n_users, size=n_items), np.arange(n_items)] = True
    return matrix, mask


def test_the_low_rank_fit_recovers_a_planted_matrix() -> None:
    matrix, mask = planted()
    users, items = np.nonzero(mask)
    table = RatingTable(users, items, matrix[users, items], 40, 30)
    fit = fit_low_rank(table, 3, 1e-9, 100, np.random.default_rng(1))
    assert np.abs(fit.predict() - matrix)[~mask].max() < 1e-4  # the unobserved entries, never seen by the fit
    assert np.abs(fit.predict(users, items) - matrix[users, items]).max() < 1e-4
    # a rank too small cannot: the error on unobserved entries stays large
    small = fit_low_rank(table, 1, 1e-9, 100, np.random.default_rng(1))
    assert np.abs(small.predict() - matrix)[~mask].max() > 0.5


def test_ratings_task_completes_the_table(tmp_path: Path) -> None:
    matrix, mask = planted(observed=0.8)  # dense enough that the check's 90 % still pins every user down
    users, items = np.nonzero(mask)
    env = RatingsEnv((users, items, matrix[users, items]), rank=3, reg=1e-9, n_iter=100)
    completed = env.rewards_of(np.arange(env.n_users))
    np.testing.assert_array_equal(completed[mask], matrix[mask])  # observed ratings kept as they are
    low, high = matrix[mask].min(), matrix[mask].max()
    np.testing.assert_allclose(completed[~mask], np.clip(matrix[~mask], low, high), atol=1e-4)
    assert env.observation_space.shape == (3,) and env.action_space == gym.spaces.Discrete(30)
    np.testing.assert_array_equal(env.features, env.fit.user_factors.astype(np.float32))
    # the fit's check: 10 % of the ratings held out and predicted from the rest (exact here, up to ALS's tolerance)
    report = env.fit_report
    assert report.n_held_out == round(0.1 * mask.sum()) and report.n_ratings == mask.sum() - report.n_held_out
    assert report.held_out_rmse < 1e-3 < report.mean_rmse
    assert "held-out RMSE" in str(report)
    model_only = RatingsEnv((users, items, matrix[users, items]), rank=3, reg=1e-9, n_iter=100, keep_observed=False)
    np.testing.assert_allclose(model_only.rewards_of(np.arange(40)), np.clip(env.fit.predict(), low, high), atol=1e-12)

    # the same table from a CSV file: a MovieLens-like header with extra columns, ids that are not indices
    path = tmp_path / "ratings.csv"
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["userId", "movieId", "rating", "timestamp"])
        for u, i in zip(users, items, strict=True):
            writer.writerow([100 + u, 5000 + 7 * i, repr(float(matrix[u, i])), 0])
    from_file = gym.make(
        "Personalization/Ratings-v0", ratings=str(path), columns=("userId", "movieId", "rating"), rank=3,
        reg=1e-9, n_iter=100,
    ).unwrapped  # fmt: skip
    assert from_file.user_ids.tolist() == list(range(100, 140)) and from_file.item_ids[-1] == 5000 + 7 * 29
    np.testing.assert_array_equal(from_file.rewards_of(np.arange(40))[mask], matrix[mask])


ENV_CASES = {
    "Tabular-v0": lambda a: ("Personalization/Tabular-v0", {"features": a[0], "rewards": a[1], "noise": "bernoulli"}),
    "Classification-v0": lambda a: (
        "Personalization/Classification-v0",
        {"features": a[0], "labels": np.arange(N_USERS) % 3},
    ),
    "Digits-v0": lambda a: ("Personalization/Digits-v0", {}),
    "Ratings-v0": lambda a: (
        "Personalization/Ratings-v0",
        {"ratings": (*tuple(np.nonzero(planted()[1])), np.arange(planted()[1].sum()) % 5)},
    ),
}


@pytest.mark.parametrize("case", ENV_CASES)
def test_env_checkers_and_training_with_the_callback(case: str, arrays) -> None:
    env_id, kwargs = ENV_CASES[case](arrays)
    gymnasium_check_env(gym.make(env_id, **kwargs).unwrapped)
    sb3_check_env(gym.make(env_id, **kwargs).unwrapped)
    # Gymnasium's vector API: the same users as the task's sample() with the same seed
    envs = gym.make_vec(env_id, num_envs=5, **kwargs)
    obs, _ = envs.reset(seed=4)
    np.testing.assert_array_equal(obs, envs.unwrapped.task.sample(5, np.random.default_rng(4)).obs)
    vec = make_vec(env_id, 32, seed=0, **kwargs)
    model = PPO("MlpPolicy", vec, n_steps=1, batch_size=32, n_epochs=1, seed=0, device="cpu")
    callback = EntropyCallback(eval_freq=320)  # finds the task's held-out users through the VecEnv
    model.learn(960, callback=callback)
    task = vec.unwrapped.task if hasattr(vec.unwrapped, "task") else vec.venv.task
    np.testing.assert_array_equal(callback.eval_obs, task.features[task.eval_users])
    assert [row["timesteps"] for row in callback.history] == [0, 320, 640, 960]
    for key in (*EXPOSURE_TAGS, "eval/expected_reward"):
        assert all(np.isfinite(row[key]) for row in callback.history)


def _error(function, *args, **kwargs) -> str:
    with pytest.raises((ValueError, FileNotFoundError)) as info:
        function(*args, **kwargs)
    return str(info.value)


def test_bad_tabular_input_is_named(arrays, tmp_path: Path) -> None:
    features, rewards = arrays
    nan_features = features.copy()
    nan_features[5, 2] = np.nan
    assert "features contains NaN or inf in 1 of 480 entries; the first at row 5, column 2" in _error(
        TabularEnv, nan_features, rewards
    )
    inf_rewards = rewards.copy()
    inf_rewards[7, 1] = np.inf
    assert "rewards contains NaN or inf" in _error(TabularEnv, features, inf_rewards)
    assert "features has 120 rows (shape (120, 4)), rewards has 119" in _error(TabularEnv, features, rewards[:-1])
    assert "rewards must be a 2-d array (n_users, K items), got shape (120,)" in _error(
        TabularEnv, features, rewards[:, 0]
    )
    assert "at least 1 row (n_users) and 2 column(s) (K items)" in _error(TabularEnv, features, rewards[:, :1])
    assert "1 user(s) are fewer than the evaluation split needs" in _error(TabularEnv, features[:1], rewards[:1])
    assert "n_eval must be at most the number of held-out users, 24" in _error(TabularEnv, features, rewards, n_eval=25)
    assert "eval_fraction must be a number in (0, 1), got 1.0" in _error(
        TabularEnv, features, rewards, eval_fraction=1.0
    )
    assert "rewards must lie in [0, 1]; 1 of 720 do not, the first at row 3, column 4 (1.5)" in _error(
        TabularEnv, features, np.where(np.arange(N_USERS * K).reshape(N_USERS, K) == 22, 1.5, rewards),
        noise="bernoulli",
    )  # fmt: skip
    assert "noise must be one of ['none', 'bernoulli', 'gaussian'], got 'poisson'" in _error(
        TabularEnv, features, rewards, noise="poisson"
    )
    assert "noise='gaussian' needs noise_sd, a finite number > 0, got None" in _error(
        TabularEnv, features, rewards, noise="gaussian"
    )
    assert "give it with noise='gaussian' only" in _error(TabularEnv, features, rewards, noise_sd=0.1)
    assert "features must be an array of numbers, got dtype <U1" in _error(TabularEnv, [["a"]], rewards)
    assert "features must be a table whose rows have one length: row 0 has 2 entries, row 2 has 1" in _error(
        TabularEnv, [[0.1, 0.2], [0.3, 0.4], [0.5]], rewards
    )
    assert "labels must be class indices in [0, 2) (n_classes=2); 12 are not, the first is labels[0] = -1" in _error(
        ClassificationEnv, np.ones((12, 2)), -np.ones(12, dtype=int)
    )
    assert "the file must end in one of ['.npy', '.npz', '.csv']" in _error(TabularEnv, "users.txt", rewards)
    assert f"features: file {tmp_path / 'nope.npy'} not found" in _error(TabularEnv, tmp_path / "nope.npy", rewards)
    np.savez(tmp_path / "two.npz", a=features, b=rewards)
    assert "holds arrays ['a', 'b']: it must hold one array, or one called 'features'" in _error(
        TabularEnv, tmp_path / "two.npz", rewards
    )
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,x\n")
    assert "bad.csv, line 3, column 1: 'x' is not a number" in _error(TabularEnv, tmp_path / "bad.csv", rewards)


def test_bad_labels_and_ratings_are_named() -> None:
    features = np.zeros((10, 2))
    assert "labels must be class indices in [0, 3) (n_classes=3); 1 are not, the first is labels[4] = 3" in _error(
        ClassificationEnv, features, [0, 1, 2, 0, 3, 1, 2, 0, 1, 2], n_classes=3
    )
    assert "labels[0] = -1" in _error(ClassificationEnv, features, [-1, 1, 2, 0, 1, 1, 2, 0, 1, 2])
    assert "labels must be integers (class indices), got dtype float64" in _error(
        ClassificationEnv, features, np.ones(10)
    )
    assert "labels hold one class only (0)" in _error(ClassificationEnv, features, np.zeros(10, dtype=int))
    assert "noise='bernoulli' needs rewards in [0, 1]" in _error(
        ClassificationEnv, features, np.arange(10) % 2, noise="bernoulli"
    )
    users, items, values = np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), np.array([4.0, 3.0, 5.0, 1.0])
    assert "ratings for 1 unknown user(s), e.g. [2]: not in the users given (2 ids)" in _error(
        RatingsEnv, (users, items, values), users=[0, 1]
    )
    assert "ratings for 1 unknown item(s), e.g. [2]" in _error(RatingsEnv, (users, items, values), items=[0, 1])
    assert "1 item(s) have no ratings, e.g. [3]" in _error(RatingsEnv, (users, items, values), items=[0, 1, 2, 3])
    assert "1 (user, item) pair(s) are rated more than once, e.g. user 0 and item 1" in _error(
        RatingsEnv, (np.array([0, 0, 0]), np.array([0, 1, 1]), np.array([1.0, 2.0, 3.0]))
    )
    assert "ratings contains NaN or inf in 1 of 4 entries" in _error(
        RatingsEnv, (users, items, np.array([4.0, np.nan, 5.0, 1.0]))
    )
    assert "users, items and ratings must be 1-d arrays of one equal length > 0" in _error(
        RatingsEnv, (users, items[:3], values)
    )
    assert "rank must be an integer >= 1, got 0" in _error(RatingsEnv, (users, items, values), rank=0)
    assert "rank must be at most the table's smaller side, min(3 users, 3 items) = 3, got 10" in _error(
        RatingsEnv, (users, items, values)
    )  # the default rank, 10, on a 3 x 3 table
    assert "reg must be a finite number > 0" in _error(RatingsEnv, (users, items, values), rank=1, reg=float("inf"))
    assert "check_fraction must be a number in (0, 1), got 1.5" in _error(
        RatingsEnv, (users, items, values), rank=1, check_fraction=1.5
    )
    # numpy's numbers are numbers for every argument (one rule: personalization_gym.checks)
    assert RatingsEnv((users, items, values), rank=2, check_fraction=np.float32(0.25), reg=np.float64(0.1)).reg == 0.1
    assert "check_fraction 0.9 holds out all 4 ratings" in _error(
        RatingsEnv, (users, items, values), rank=1, check_fraction=0.9
    )


def test_rating_and_label_files(tmp_path: Path) -> None:
    users, items = np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 0, 2])
    values = np.array([4.0, 3.5, 5.0, 1.0, 2.0])
    headerless = tmp_path / "plain.csv"
    headerless.write_text("".join(f"{u},{i},{r}\n" for u, i, r in zip(users, items, values, strict=True)))
    from_file = RatingsEnv(str(headerless), rank=1, eval_fraction=0.34)
    from_arrays = RatingsEnv((users, items, values), rank=1, eval_fraction=0.34)
    every_user = np.arange(3)
    np.testing.assert_array_equal(from_file.rewards_of(every_user), from_arrays.rewards_of(every_user))
    assert len(from_file.ratings[2]) == 5 and from_file.rewards_of(every_user)[1, 1] == 5.0
    named = tmp_path / "named.csv"
    named.write_text("u,i,stars\n0,0,4\n")
    assert "header ['u', 'i', 'stars'] lacks column(s) ['user', 'item', 'rating']" in _error(RatingsEnv, str(named))
    four = tmp_path / "four.csv"
    four.write_text("0,0,4,99\n")
    assert "has no header and 4 columns: a headerless file holds exactly three" in _error(RatingsEnv, str(four))
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item,rating\n0,0,4\n1,1,great\n")
    assert "line 3: rating 'great' is not a number" in _error(RatingsEnv, str(bad))
    # labels in a one-column CSV with a header, features in a headerless CSV
    (tmp_path / "labels.csv").write_text("label\n" + "".join(f"{k % 3}\n" for k in range(12)))
    (tmp_path / "x.csv").write_text("".join(f"{k}.5,{-k}.0\n" for k in range(12)))
    env = ClassificationEnv(tmp_path / "x.csv", tmp_path / "labels.csv")
    assert env.n_classes == 3 and env.labels.tolist() == [k % 3 for k in range(12)]
    np.testing.assert_array_equal(env.features[:, 0], np.arange(12) + 0.5)


def test_bad_data_files_are_named_with_the_argument_that_named_them(tmp_path: Path) -> None:
    rewards = np.full((3, 2), 0.5)
    (tmp_path / "empty.npy").write_bytes(b"")
    message = _error(TabularEnv, tmp_path / "empty.npy", rewards)
    assert message.startswith(f"features: {tmp_path / 'empty.npy'} is not a .npy file as np.save writes it (EOFError: ")
    (tmp_path / "text.npy").write_text("0.1,0.2\n0.3,0.4\n")
    message = _error(TabularEnv, tmp_path / "text.npy", rewards)
    assert message.startswith(f"features: {tmp_path / 'text.npy'} is not a .npy file as np.save writes it (")
    assert "allow_pickle" not in message  # numpy's advice to unpickle is neither right nor safe here
    (tmp_path / "zip.npz").write_text("not a zip")
    assert (
        "zip.npz is not a .npz file as np.savez writes it (it has no array header: a text file, or a pickled"
        in _error(TabularEnv, tmp_path / "zip.npz", rewards)
    )
    (tmp_path / "folder.npy").mkdir()
    assert (
        _error(TabularEnv, tmp_path / "folder.npy", rewards)
        == f"features: {tmp_path / 'folder.npy'} is a folder, not a file"
    )
    # a typo in the first row is not a header: the error names the file's own line
    lines = ["0.1,O.3", *(f"0.{k},0.{k + 1}" for k in range(1, 10))]
    (tmp_path / "typo.csv").write_text("\n".join(lines) + "\n")
    assert _error(TabularEnv, tmp_path / "typo.csv", rewards).endswith(
        "typo.csv, line 1, column 1: 'O.3' is not a number"
    )
    # a byte-order mark (Excel's "CSV UTF-8") is read as what it is: the first user stays
    features = np.arange(6.0).reshape(3, 2) + 0.5
    (tmp_path / "marked.csv").write_bytes(b"\xef\xbb\xbf" + b"".join(f"{a},{b}\n".encode() for a, b in features))
    (tmp_path / "marked_rewards.csv").write_bytes(b"\xef\xbb\xbfa,b\n" + b"0.5,1.5\n" * 3)
    env = TabularEnv(tmp_path / "marked.csv", tmp_path / "marked_rewards.csv")
    np.testing.assert_array_equal(env.features, features.astype(np.float32))
    assert env.rewards.shape == (3, 2)
    (tmp_path / "latin.csv").write_bytes("caf\xe9,1\n".encode("latin-1"))
    assert _error(TabularEnv, tmp_path / "latin.csv", rewards) == (
        f"features: {tmp_path / 'latin.csv'} is not UTF-8 text (invalid continuation byte at byte 3); save it as UTF-8"
    )


TABLE_TASKS = {
    "TabularEnv": lambda features, rewards, **options: TabularEnv(features, rewards, **options),
    "ClassificationEnv": lambda features, rewards, **options: ClassificationEnv(
        features, rewards.argmax(axis=1), **options
    ),
    "RatingsEnv": lambda features, rewards, **options: RatingsEnv(
        (np.repeat(np.arange(N_USERS), K), np.tile(np.arange(K), N_USERS), rewards.ravel()), rank=2, **options
    ),
    "DigitsEnv": lambda features, rewards, **options: DigitsEnv(**options),
}


@pytest.mark.parametrize("task", list(TABLE_TASKS))
def test_every_table_task_takes_the_shared_options_and_refuses_any_other(task: str, arrays) -> None:
    made = TABLE_TASKS[task](*arrays, noise="gaussian", noise_sd=0.25, eval_fraction=0.5, n_eval=7, task_seed=3)
    assert made.options == DataOptions("gaussian", 0.25, 0.5, 7, 3, None)
    assert (made.noise, made.noise_sd, made.eval_fraction, made.n_eval, made.task_seed) == ("gaussian", 0.25, 0.5, 7, 3)
    assert len(made.eval_set()) == 7
    with pytest.raises(TypeError) as error:
        TABLE_TASKS[task](*arrays, nosie="gaussian")
    assert str(error.value) == (
        f"{task}() got an unexpected keyword argument 'nosie'; besides its data it takes noise, noise_sd, "
        "eval_fraction, n_eval, task_seed, render_mode"
    )


@settings(max_examples=200, deadline=None)
@given(
    fraction=st.one_of(st.floats(), st.integers(-3, 3), st.text(max_size=3), st.booleans()),
    n_eval=st.one_of(st.none(), st.integers(-3, 10**6), st.floats(), st.booleans()),
    seed=st.one_of(st.integers(-3, 2**70), st.floats(), st.text(max_size=2)),
)
def test_data_options_keep_what_is_valid_and_name_what_is_not(fraction, n_eval, seed) -> None:
    """The rule: a fraction is a number strictly in (0, 1); n_eval None or an integer >= 1; task_seed an integer
    >= 0. Text and booleans are never numbers; a float is never taken for an integer."""
    fraction_ok = isinstance(fraction, (int, float)) and not isinstance(fraction, bool) and 0 < fraction < 1
    n_eval_ok = n_eval is None or (isinstance(n_eval, int) and not isinstance(n_eval, bool) and n_eval >= 1)
    seed_ok = isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0
    if fraction_ok and n_eval_ok and seed_ok:
        options = DataOptions(eval_fraction=fraction, n_eval=n_eval, task_seed=seed)
        assert (options.eval_fraction, options.n_eval, options.task_seed) == (fraction, n_eval, seed)
        return
    first_bad = "eval_fraction" if not fraction_ok else ("n_eval" if not n_eval_ok else "task_seed")
    with pytest.raises(ValueError, match=rf"^{first_bad} must be "):
        DataOptions(eval_fraction=fraction, n_eval=n_eval, task_seed=seed)


def test_a_ratings_task_holds_no_users_by_items_table() -> None:
    """3,000 users x 3,000 items would be a 69 MB float64 table: building the task, stepping it, its baselines, and
    training with a callback that evaluates in chunks each stay under a quarter of that (numpy's allocations, as
    tracemalloc counts them)."""
    import tracemalloc

    from sb3_entropy.baselines import evaluation_baselines

    rng = np.random.default_rng(0)
    n_users = n_items = 3_000
    pairs = rng.choice(n_users * n_items, size=60_000, replace=False)
    ratings = (pairs // n_items, pairs % n_items, rng.integers(1, 6, len(pairs)).astype(float))
    dense_mb = n_users * n_items * 8 / 2**20
    peaks = []
    tracemalloc.start()
    try:
        task = RatingsEnv(ratings, rank=4, n_iter=3)
        task.reset(seed=0)
        for action in range(100):  # one-step episodes
            task.step(action)
            task.reset()
        baselines = evaluation_baselines(chunk.expected for chunk in task.eval_chunks(max_mb=2))
        peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
    finally:
        tracemalloc.stop()
    # A model's first seeding has torch read source files for a stack trace (tens of MB of Python strings, once
    # per process): done before the second count.
    PPO("MlpPolicy", task, seed=0, device="cpu")
    model = PPO("MlpPolicy", task, n_steps=32, batch_size=32, seed=0, device="cpu")
    tracemalloc.start()
    try:
        callback = EntropyCallback(eval_env=task, log_figures=False, eval_memory_mb=4)
        model.learn(64, callback=callback)
        peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
    finally:
        tracemalloc.stop()
    assert len(callback.states.chunks) == 14 and task.n_eval == 600  # 43 users a chunk
    assert baselines["oracle"] > baselines["random"] and len(callback.history) == 2
    assert max(peaks) < dense_mb / 4, f"peaks {peaks} MB of numpy allocations, against a {dense_mb:.0f} MB table"


def test_a_second_task_of_the_same_ratings_and_settings_reuses_the_fit() -> None:
    """The fit is deterministic, so a process keeps its last one: the same ratings and settings get it again (read
    only, shared), other settings or other ratings are fitted anew, with what a fresh fit gives."""
    rng = np.random.default_rng(8)
    users, items = np.nonzero(rng.random((60, 25)) < 0.4)
    ratings = (users, items, rng.integers(1, 6, len(users)).astype(float))
    first = RatingsEnv(ratings, rank=3, n_iter=5)
    again = RatingsEnv(tuple(array.copy() for array in ratings), rank=3, n_iter=5)
    assert again.fit is first.fit and again.fit_report is first.fit_report
    assert not first.fit.user_factors.flags.writeable
    other_seed = RatingsEnv(ratings, rank=3, n_iter=5, task_seed=1)
    assert other_seed.fit is not first.fit and not np.array_equal(other_seed.fit.user_factors, first.fit.user_factors)
    changed = (users, items, ratings[2] + (np.arange(len(users)) == 0))
    assert RatingsEnv(changed, rank=3, n_iter=5).fit_report.train_rmse != first.fit_report.train_rmse
    fresh = RatingsEnv(ratings, rank=3, n_iter=5)  # the cache now holds another fit: fitted again, the same numbers
    assert fresh.fit is not first.fit
    np.testing.assert_array_equal(fresh.fit.item_factors, first.fit.item_factors)
    assert fresh.fit_report == first.fit_report


def test_at_most_10000_held_out_users_are_evaluated_unless_n_eval_says() -> None:
    rng = np.random.default_rng(2)
    features, rewards = rng.standard_normal((60_000, 2)), rng.random((60_000, 3))
    task = TabularEnv(features, rewards)  # 12,000 held out
    assert task.n_eval == 10_000 and len(task.eval_users) == 10_000 and len(task.train_users) == 48_000
    held_out = np.setdiff1d(np.arange(60_000), task.train_users)  # sorted: the first 10,000 in user order
    np.testing.assert_array_equal(task.eval_users, held_out[:10_000])
    assert TabularEnv(features, rewards, n_eval=12_000).n_eval == 12_000
    assert TabularEnv(features[:1000], rewards[:1000]).n_eval == 200  # below the cap: every held-out user
