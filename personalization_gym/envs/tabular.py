"""Your own data as a task: Tabular-v0 (user features and expected rewards), Classification-v0 (a labelled set)
and Digits-v0 (scikit-learn's bundled handwritten digits)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from personalization_gym.arrays import as_array, check_finite, check_table, held_out_count
from personalization_gym.checks import check_choice, check_integer, check_number
from personalization_gym.core import BanditEnv, Batch

__all__ = [
    "DEFAULT_EVAL_USERS",
    "NOISES",
    "ClassificationEnv",
    "DataOptions",
    "DigitsEnv",
    "TabularEnv",
    "classification_rewards",
]

NOISES = ("none", "bernoulli", "gaussian")
DEFAULT_EVAL_USERS = 10_000  # held-out users evaluated when n_eval is not given: one pass takes seconds


@dataclass(frozen=True)
class DataOptions:
    """The arguments every task built from a table of users shares (Tabular-v0, Classification-v0, Digits-v0,
    Ratings-v0, MovieLens-v0): the reward noise, the held-out evaluation users, the seed of the split and the render
    mode. Checks itself when made, so each task checks them once, in one place.

    * ``noise``: ``"none"``, ``"bernoulli"`` or ``"gaussian"``; ``noise_sd``: the Gaussian's standard deviation
      (> 0), given with ``noise="gaussian"`` only.
    * ``eval_fraction``: the share of users held out for evaluation (default 0.2, rounded to a whole number of
      users, at least 1; at least one user must be left to train on).
    * ``n_eval``: evaluate on the first ``n_eval`` held-out users (in user order). Default: all of them, at most
      ``DEFAULT_EVAL_USERS`` (10,000; MovieLens-20M holds out 27,699 of its 138,493 users).
    * ``task_seed``: seeds the split (an integer >= 0).
    * ``render_mode``: None or ``"rgb_array"``.
    """

    noise: str = "none"
    noise_sd: float | None = None
    eval_fraction: float = 0.2
    n_eval: int | None = None
    task_seed: int = 0
    render_mode: str | None = None

    def __post_init__(self) -> None:
        check_choice("noise", self.noise, list(NOISES))
        if self.noise != "gaussian":
            if self.noise_sd is not None:
                raise ValueError(f"noise_sd is the Gaussian noise's standard deviation: give it with noise='gaussian' "
                                 f"only, got noise={self.noise!r} and noise_sd={self.noise_sd!r}")  # fmt: skip
        elif self.noise_sd is None:
            raise ValueError("noise='gaussian' needs noise_sd, a finite number > 0, got None")
        else:
            object.__setattr__(self, "noise_sd", check_number("noise_sd", self.noise_sd, above=0))
        object.__setattr__(self, "eval_fraction", check_number("eval_fraction", self.eval_fraction, above=0, below=1))
        if self.n_eval is not None:
            object.__setattr__(self, "n_eval", check_integer("n_eval", self.n_eval, minimum=1))
        object.__setattr__(self, "task_seed", check_integer("task_seed", self.task_seed, minimum=0))

    @classmethod
    def of(cls, task: str, options: dict[str, Any]) -> DataOptions:
        """The options a task was given as keyword arguments; one it does not take is a TypeError naming it."""
        valid = [field.name for field in fields(cls)]
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise TypeError(f"{task}() got an unexpected keyword argument {unknown[0]!r}; besides its data it takes "
                            f"{', '.join(valid)}")  # fmt: skip
        return cls(**options)


def check_learnable(rewards: np.ndarray, name: str) -> None:
    """Refuse a reward table with nothing to learn (every action as good as every other, for every user) or whose
    sums, which every evaluation takes, overflow."""
    if not np.isfinite(np.abs(rewards).sum(dtype=np.float64)):
        raise ValueError(f"{name}: their sum overflows (the largest magnitude is {np.abs(rewards).max():g}): an "
                         "evaluation sums them over users and actions; rescale them")  # fmt: skip
    if (rewards.max(axis=1) == rewards.min(axis=1)).all():
        raise ValueError(f"{name}: no action is better than another for any user (each row holds one value): the task "
                         "would have nothing to learn")  # fmt: skip


def classification_rewards(n_classes: int) -> np.ndarray:
    """The MNIST tasks' reward matrix ``R = (K I - 1) / (K - 1)``: 1 for the right label, ``-1/(K-1)`` for a wrong
    one, so that the mean over actions is 0 and the best is 1."""
    return (n_classes * np.eye(n_classes) - 1.0) / (n_classes - 1)


def _shown(values: np.ndarray) -> str:
    """At most six values of a sorted array, as a list."""
    if len(values) <= 6:
        return str(values.tolist())
    return f"[{', '.join(map(str, values[:3].tolist()))}, ..., {values[-1]}]"


class TabularEnv(BanditEnv):
    """A personalization task from your own arrays: user features and the expected reward of every item.

    ## Description

    A one-step contextual bandit over a fixed population of ``n_users`` users. User ``u`` is seen as the feature
    vector ``features[u]``; recommending item ``a`` earns ``rewards[u, a]`` in expectation, with the noise chosen
    by ``noise``. The users are split once, by ``task_seed``, into training users (the context stream) and
    held-out users (the evaluation set, each of them exactly once), so what an agent is scored on is how it serves
    users it has never seen.

    ## Action Space

    ``Discrete(K)``: the item recommended, a column of ``rewards``.

    ## Observation Space

    ``Box(low, high, (d,), float32)``: the user's features as float32; ``low`` and ``high`` are each feature's
    minimum and maximum over all users.

    ## Rewards

    ``noise="none"`` (default): the expected reward ``rewards[u, a]`` itself. ``noise="bernoulli"``: a click,
    1 with probability ``rewards[u, a]`` (every reward must lie in [0, 1]). ``noise="gaussian"``:
    ``rewards[u, a] + noise_sd * N(0, 1)``. The evaluation set always holds the exact expected rewards.

    ## Starting State

    Each reset draws one of the training users uniformly at random (with replacement).

    ## Episode End

    Every episode ends after one step (``terminated=True``). ``info`` holds ``expected_reward``,
    ``optimal_reward`` and ``regret``.

    ## Arguments

    ```python
    import gymnasium as gym
    import personalization_gym

    env = gym.make("Personalization/Tabular-v0", features=features, rewards=rewards, noise="bernoulli")
    ```

    * ``features``: ``(n_users, d)`` numbers, or a path to a ``.npy``, ``.npz`` or ``.csv`` file of them
      (a ``.npz`` holding one array, or one called ``features``; a ``.csv`` of numbers, with or without a header).
    * ``rewards``: ``(n_users, K)`` expected rewards, ``K >= 2``, or a path as for ``features``.
    * ``noise``, ``noise_sd``, ``eval_fraction``, ``n_eval``, ``task_seed``, ``render_mode``: the options every
      table task shares, :class:`DataOptions` (noise ``"none"``, ``"bernoulli"`` or ``"gaussian"`` with
      ``noise_sd``; 20 % of the users held out for evaluation, all of them (at most 10,000) or the first
      ``n_eval``; the split seeded by ``task_seed``).

    ``train_users`` and ``eval_users`` are the users' row indices; ``batch.hidden["user"]`` is each context's.

    ## Version History

    * v0: Initial version.
    """

    # Arguments that may be file paths: an experiment file's relative paths are read from its own folder.
    FILE_ARGUMENTS: ClassVar[tuple[str, ...]] = ("features", "rewards")

    def __init__(self, features: Any, rewards: Any, **options: Any) -> None:
        self._build(features, rewards, DataOptions.of(type(self).__name__, options))

    def _build(self, features: Any, rewards: Any, options: DataOptions) -> None:
        """The task of a table of ``features`` and expected ``rewards``, one row per user, with ``options``."""
        features = check_table(as_array(features, "features"), "features", "n_users", "d features")
        rewards = check_table(as_array(rewards, "rewards"), "rewards", "n_users", "K items", min_columns=2)
        if len(features) != len(rewards):
            raise ValueError(
                f"features and rewards must have one row per user: features has {len(features)} rows "
                f"(shape {features.shape}), rewards has {len(rewards)} (shape {rewards.shape})"
            )
        if options.noise == "bernoulli":
            _check_click_rates(rewards)
        check_learnable(rewards, "rewards")
        self.rewards = rewards.astype(np.float64)
        self.rewards.flags.writeable = False
        self._build_users(features, rewards.shape[1], options)

    def _build_users(self, features: np.ndarray, n_items: int, options: DataOptions) -> None:
        """The users (``features``, checked), their split into training and held-out users, and the spaces of a task
        of ``n_items`` items whose expected rewards :meth:`rewards_of` gives."""
        self.options = options
        self.noise, self.noise_sd = options.noise, options.noise_sd
        n_users = len(features)
        n_held_out = held_out_count(options.eval_fraction, n_users)
        if n_held_out >= n_users:
            raise ValueError(
                f"{n_users} user(s) are fewer than the evaluation split needs: eval_fraction {options.eval_fraction} "
                f"holds out {n_held_out}, leaving none to train on. Give at least 2 users, or a smaller eval_fraction"
            )
        if options.n_eval is not None and options.n_eval > n_held_out:
            raise ValueError(
                f"n_eval must be at most the number of held-out users, {n_held_out} (eval_fraction "
                f"{options.eval_fraction} of {n_users} users), got {options.n_eval}; raise eval_fraction for more"
            )
        n_eval = options.n_eval or min(n_held_out, DEFAULT_EVAL_USERS)
        super().__init__(n_eval=n_eval, task_seed=options.task_seed, render_mode=options.render_mode)
        self.eval_fraction = options.eval_fraction
        order = self.task_rng.permutation(n_users)
        self.eval_users = np.sort(order[:n_held_out])[: self.n_eval]
        self.train_users = np.sort(order[n_held_out:])

        self.features = features.astype(np.float32)
        for array in (self.features, self.eval_users, self.train_users):
            array.flags.writeable = False
        self.observation_space = spaces.Box(
            self.features.min(axis=0), self.features.max(axis=0), shape=(features.shape[1],), dtype=np.float32
        )
        self.action_space = spaces.Discrete(n_items)
        if self.noise == "none":
            self._deterministic = True  # realize() is overridden, but gives the expected reward: skip the call

    @property
    def n_users(self) -> int:
        return len(self.features)

    def data_arrays(self) -> dict[str, np.ndarray]:
        return {"features": self.features, "rewards": self.rewards}

    def rewards_of(self, users: np.ndarray) -> np.ndarray:
        """The expected reward of every item for each of ``users`` (row indices): a ``(len(users), K)`` table."""
        return self.rewards[users]

    def _batch(self, users: np.ndarray) -> Batch:
        return Batch(obs=self.features[users], expected=self.rewards_of(users), hidden={"user": users})

    def sample(self, n: int, rng: np.random.Generator) -> Batch:
        return self._batch(self.train_users[rng.integers(len(self.train_users), size=n)])

    def make_eval_set(self) -> Batch:
        return self._batch(self.eval_users)  # every held-out user once, in user order

    def eval_obs(self) -> np.ndarray:
        return self.features[self.eval_users]

    def eval_rows(self, rows: np.ndarray) -> Batch:
        return self._batch(self.eval_users[rows])

    def realize(self, batch: Batch, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        expected = batch.expected[np.arange(len(batch)), actions]
        if self.noise == "bernoulli":
            return (rng.random(len(expected)) < expected).astype(np.float64)
        if self.noise == "gaussian":
            return expected + self.noise_sd * rng.standard_normal(len(expected))
        return expected


def _check_click_rates(rewards: np.ndarray) -> None:
    """Bernoulli noise draws clicks with probability ``rewards[u, a]``: every reward must lie in [0, 1]."""
    outside = (rewards < 0) | (rewards > 1)
    if outside.any():
        row, column = (int(i) for i in np.argwhere(outside)[0])
        raise ValueError(
            f"noise='bernoulli' draws clicks with probability rewards[u, a], so rewards must lie in [0, 1]; "
            f"{int(outside.sum())} of {rewards.size} do not, the first at row {row}, column {column} "
            f"({rewards[row, column]}). Rescale them, or choose noise='none' or 'gaussian'"
        )


class ClassificationEnv(TabularEnv):
    """A labelled data set as a personalization task: the context is an example, the action a label.

    ## Description

    Classification framed as personalization, with the MNIST tasks' reward rule (arXiv 2211.11869): with K
    classes the reward matrix is ``R = (K I - 1) / (K - 1)``, 1 for the right label and ``-1/(K-1)`` for a wrong
    one (mean 0 over actions, best 1), and example ``i`` earns ``R[labels[i], a]``. The examples are split once,
    by ``task_seed``, into training examples (the context stream) and held-out examples (the evaluation set, each
    once), as in :class:`TabularEnv`.

    ## Action Space

    ``Discrete(n_classes)``: the predicted label.

    ## Observation Space

    ``Box(low, high, (d,), float32)``: the example's features, each bounded by its minimum and maximum over the set.

    ## Rewards

    ``R[label, action]`` (deterministic), or with the noise of :class:`TabularEnv` (``"bernoulli"`` is refused:
    a wrong label's reward is negative).

    ## Starting State

    Each reset draws a training example uniformly at random (with replacement).

    ## Episode End

    Every episode ends after one step (``terminated=True``).

    ## Arguments

    ```python
    env = gym.make("Personalization/Classification-v0", features=X, labels=y)
    ```

    * ``features``: ``(n, d)`` numbers or a file, as in :class:`TabularEnv`.
    * ``labels``: ``(n,)`` integers in ``[0, n_classes)``, or a file of them (one column).
    * ``n_classes``: the number of classes (default: the largest label + 1; at least 2).
    * ``noise``, ``noise_sd``, ``eval_fraction``, ``n_eval``, ``task_seed``, ``render_mode``: :class:`DataOptions`,
      as in :class:`TabularEnv`.

    ``labels`` is kept; ``batch.hidden["user"]`` is each context's row.

    ## Version History

    * v0: Initial version.
    """

    FILE_ARGUMENTS: ClassVar[tuple[str, ...]] = ("features", "labels")

    def __init__(self, features: Any, labels: Any, n_classes: int | None = None, **options: Any) -> None:
        self._classify(features, labels, n_classes, DataOptions.of(type(self).__name__, options))

    def _classify(self, features: Any, labels: Any, n_classes: int | None, options: DataOptions) -> None:
        labels = as_array(labels, "labels")
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]  # a one-column file
        if labels.ndim != 1 or len(labels) == 0:
            raise ValueError(f"labels must be a 1-d array of class indices, got shape {labels.shape}")
        check_finite(labels, "labels")
        if labels.dtype.kind not in "iu":
            raise ValueError(f"labels must be integers (class indices), got dtype {labels.dtype}")
        if n_classes is None:
            n_classes = max(int(labels.max()) + 1, 2 if labels.min() < 0 else 0)  # a negative label: named below
            if n_classes < 2:
                raise ValueError(f"labels hold one class only ({labels.max()}): a task needs n_classes >= 2; give it")
            present = np.unique(labels)
            if labels.min() >= 0 and len(present) < n_classes:  # classes without an example would be actions
                raise ValueError(
                    f"labels take {len(present)} values, {_shown(present)}, not 0..{n_classes - 1}: an action per "
                    f"class up to the largest label would make {n_classes - len(present)} actions of classes without "
                    "an example. Map them to 0..K-1 (np.unique(labels, return_inverse=True)[1]), or give n_classes "
                    "to keep classes without examples"
                )
        n_classes = check_integer("n_classes", n_classes, minimum=2)
        outside = (labels < 0) | (labels >= n_classes)
        if outside.any():
            first = int(np.flatnonzero(outside)[0])
            raise ValueError(
                f"labels must be class indices in [0, {n_classes}) (n_classes={n_classes}); {int(outside.sum())} are "
                f"not, the first is labels[{first}] = {labels[first]}"
            )
        if options.noise == "bernoulli":
            raise ValueError(
                "noise='bernoulli' needs rewards in [0, 1], and a classification task's wrong labels earn "
                "-1/(K-1); use noise='none' or 'gaussian'"
            )
        self.labels = labels.astype(np.int64)
        self.labels.flags.writeable = False
        self.n_classes = n_classes
        self.reward_matrix = classification_rewards(n_classes)
        self.reward_matrix.flags.writeable = False
        self._build(as_array(features, "features"), self.reward_matrix[self.labels], options)

    def _batch(self, users: np.ndarray) -> Batch:
        batch = super()._batch(users)
        return Batch(batch.obs, batch.expected, {"user": users, "label": self.labels[users]})


class DigitsEnv(ClassificationEnv):
    """Handwritten digits (scikit-learn's bundled copy of UCI's optical digits) as a personalization task.

    ## Description

    :class:`ClassificationEnv` on scikit-learn's ``load_digits()``: 1,797 images of 8 x 8 pixels with 16 grey
    levels, 10 classes (the digits 0-9), bundled with scikit-learn, so no download. A real-data task that trains in
    seconds: the context is an image, the action a digit, the reward 1 for the right digit and -1/9 for a wrong one.

    ## Action Space

    ``Discrete(10)``: the digit.

    ## Observation Space

    ``Box(0, 1, (64,), float32)``: the pixels divided by 16, row by row.

    ## Rewards

    Deterministic: ``R[label, action]`` with ``R = (10 I - 1) / 9``.

    ## Starting State

    Each reset draws one of the training images (80 %, 1,438 with the default split) uniformly at random.

    ## Episode End

    Every episode ends after one step (``terminated=True``).

    ## Arguments

    ```python
    env = gym.make("Personalization/Digits-v0")
    ```

    * ``eval_fraction``: the share of images held out for evaluation (default 0.2: 359 images, each once).
    * ``n_eval``: evaluate on the first ``n_eval`` held-out images.
    * ``task_seed``: seeds the split.
    * ``noise``, ``noise_sd``, ``render_mode``: as every table task takes them (:class:`DataOptions`).

    ## Version History

    * v0: Initial version.
    """

    FILE_ARGUMENTS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **options: Any) -> None:
        options = DataOptions.of(type(self).__name__, options)
        try:
            from sklearn.datasets import load_digits  # bundled with scikit-learn: read from its package, offline
        except ImportError:
            raise ImportError(
                "Personalization/Digits-v0 reads scikit-learn's bundled digits: pip install "
                '"personalization-gym[study]" (or scikit-learn)'
            ) from None

        digits = load_digits()
        self._classify(digits.data / 16.0, digits.target, 10, options)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(64,), dtype=np.float32)
