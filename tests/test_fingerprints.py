"""A task's data fingerprint: the content of the arrays it was built from, and nothing else."""

from __future__ import annotations

import hashlib

import gymnasium as gym
import numpy as np
import pytest

from personalization_gym import BehaviorEnv, ClassificationEnv, RatingsEnv, TabularEnv
from personalization_gym.fingerprints import data_fingerprint


def independent_fingerprint(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode() + array.tobytes())
    return digest.hexdigest()


def test_a_tabular_task_is_its_arrays() -> None:
    rng = np.random.default_rng(0)
    features, rewards = rng.random((40, 3)), rng.random((40, 5))
    task = TabularEnv(features, rewards)
    expected = independent_fingerprint({"features": features.astype(np.float32), "rewards": rewards})
    assert data_fingerprint(task) == expected
    assert data_fingerprint(TabularEnv(features.copy(), rewards.copy(), task_seed=3)) == expected  # content only
    changed = rewards.copy()
    changed[7, 2] += 1e-9
    assert data_fingerprint(TabularEnv(features, changed)) != expected
    assert data_fingerprint(ClassificationEnv(features, np.arange(40) % 4)) != expected


def test_tasks_built_from_their_arguments_have_none() -> None:
    assert data_fingerprint(BehaviorEnv(n_actions=4, state_dim=3, n_eval=10)) is None
    assert data_fingerprint(gym.make("Personalization/Ads-v0", n_eval=10).unwrapped) is None


def test_tasks_with_data_have_one(data_root) -> None:
    music = gym.make("Personalization/Music-v0", n_eval=10).unwrapped
    assert data_fingerprint(music) == independent_fingerprint(
        {"genre_profiles": music.genre_profiles, "track_features": music.track_features}
    )
    mnist = gym.make("Personalization/MNIST-v0", data_dir=str(data_root), n_eval=10).unwrapped
    data = mnist.data
    assert data_fingerprint(mnist) == independent_fingerprint({
        "train_images": data.train_images, "train_labels": data.train_labels,
        "test_images": data.test_images, "test_labels": data.test_labels,
    })  # fmt: skip
    # Ratings-v0: the ratings it was fitted to, indexed and by user, and the ids they name
    users, items, stars = np.array([2, 0, 1, 0]), np.array([0, 1, 1, 0]), np.array([1.0, 3.0, 5.0, 4.0])
    ratings = RatingsEnv((users + 10, items + 20, stars), rank=1)
    by_user = [1, 3, 2, 0]  # the ratings of user 0 (in file order), then 1, then 2
    assert data_fingerprint(ratings) == independent_fingerprint({
        "users": users[by_user], "items": items[by_user], "ratings": stars[by_user],
        "user_ids": np.array([10, 11, 12]), "item_ids": np.array([20, 21]),
    })  # fmt: skip


@pytest.mark.parametrize("order", [["a", "b"], ["b", "a"]])
def test_the_order_of_the_arrays_does_not_matter(order) -> None:
    class Task:
        def data_arrays(self):
            values = {"a": np.arange(3), "b": np.ones((2, 2))}
            return {name: values[name] for name in order}

    assert data_fingerprint(Task()) == independent_fingerprint({"a": np.arange(3), "b": np.ones((2, 2))})
