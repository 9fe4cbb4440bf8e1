"""Image classification as personalization: MNIST-v0, FashionMNIST-v0, CIFAR10-v0 and CIFAR100-v0."""

from __future__ import annotations

import os

import numpy as np
from gymnasium import spaces

from personalization_gym.checks import check_choice, check_integer
from personalization_gym.core import BanditEnv, Batch
from personalization_gym.image_data import CIFAR10, CIFAR100, FASHION_MNIST, MNIST, ImageDataset, load_image_dataset

__all__ = ["CIFAR10Env", "CIFAR100Env", "FashionMNISTEnv", "ImageClassificationEnv", "MNISTEnv"]

OBS_SHAPES = ("flat", "image")


class ImageClassificationEnv(BanditEnv):
    """Base of the image tasks: the context is an image, the action a label (see the subclasses' docstrings)."""

    DATASET: ImageDataset
    # Folders searched for gzipped IDX files after the data roots; None: the dataset's own (Debian's package).
    SYSTEM_DIRS: tuple[str, ...] | None = None

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        download: bool = True,
        obs_shape: str = "flat",
        verify: bool = True,
        download_url: str | None = None,
        n_eval: int | None = None,
        task_seed: int = 0,
        render_mode: str | None = None,
    ) -> None:
        self.obs_shape = check_choice("obs_shape", obs_shape, OBS_SHAPES)
        # Shared read-only uint8 arrays: only the contexts handed out are converted to float32.
        self.data = load_image_dataset(self.DATASET, data_dir, download, verify, download_url, self.SYSTEM_DIRS)
        n_test = len(self.data.test_labels)
        n_eval = n_test if n_eval is None else check_integer("n_eval", n_eval, minimum=1)
        if n_eval > n_test:
            raise ValueError(f"n_eval must be at most the test split's size, {n_test}, got {n_eval}")
        super().__init__(n_eval=n_eval, task_seed=task_seed, render_mode=render_mode)

        n_classes = self.DATASET.n_classes
        self.classes = self.data.classes
        # 1 for the right label, -1/(K-1) for a wrong one: mean 0 over actions, best 1.
        self.reward_matrix = (n_classes * np.eye(n_classes) - 1.0) / (n_classes - 1)
        self.reward_matrix.flags.writeable = False
        channels, height, width = self.DATASET.image_shape
        shape = (channels * height * width,) if obs_shape == "flat" else (channels, height, width)
        self.observation_space = spaces.Box(0.0, 1.0, shape=shape, dtype=np.float32)
        self.action_space = spaces.Discrete(n_classes)

    @property
    def data_folder(self):
        return self.data.folder

    def _batch(self, images: np.ndarray, labels: np.ndarray, index: np.ndarray) -> Batch:
        obs = images.astype(np.float32)
        obs /= 255.0
        return Batch(
            obs=obs.reshape(len(obs), *self.observation_space.shape),
            expected=self.reward_matrix[labels],
            hidden={"label": labels, "index": index},
        )

    def data_arrays(self) -> dict[str, np.ndarray]:
        return {
            "train_images": self.data.train_images, "train_labels": self.data.train_labels,
            "test_images": self.data.test_images, "test_labels": self.data.test_labels,
        }  # fmt: skip

    def sample(self, n: int, rng: np.random.Generator) -> Batch:
        index = rng.integers(len(self.data.train_labels), size=n)
        return self._batch(self.data.train_images[index], self.data.train_labels[index], index)

    def make_eval_set(self) -> Batch:
        # The test split in file order (its first n_eval images).
        return self._batch(
            self.data.test_images[: self.n_eval], self.data.test_labels[: self.n_eval], np.arange(self.n_eval)
        )


_DOCSTRING = """{title}

    ## Description

    Image classification framed as personalization, as in "Examining Policy Entropy of Reinforcement Learning
    Agents for Personalization Tasks" (arXiv 2211.11869): the context is an image of {dataset}, the action a
    label, and the reward matrix is ``R = (K I - 1) / (K - 1)`` with K = {n_classes} labels: 1 for the right label,
    ``-1/(K-1)`` for a wrong one, so that the mean over actions is 0 and the best is 1. The dataset is read with
    ``torchvision.datasets.{name}`` and kept in memory once, as uint8; only the images handed out are converted.

    ## Action Space

    ``Discrete({n_classes})``: the predicted label (``self.classes`` names them).

    ## Observation Space

    float32 pixels in [0, 1] (uint8 / 255): ``Box(0, 1, ({flat},), float32)``, the flattened image
    (``obs_shape="flat"``, the default, for MLP policies), or ``Box(0, 1, {image_shape}, float32)``, channel-first
    (``obs_shape="image"``, for CNN policies; with SB3's ``CnnPolicy`` pass ``normalize_images=False``).

    ## Rewards

    Deterministic: ``R[label, action]``.

    ## Starting State

    Each reset draws an image uniformly at random from the training split ({n_train:,} images). The evaluation
    set, ``eval_set()``, is the test split in file order ({n_test:,} images, or its first ``n_eval``).

    ## Episode End

    Every episode ends after one step (``terminated=True``). ``info`` holds ``expected_reward``,
    ``optimal_reward`` and ``regret``.

    ## Arguments

    ```python
    import gymnasium as gym
    import personalization_gym

    env = gym.make("Personalization/{name}-v0", data_dir=None, download=True, obs_shape="flat")
    ```

    * ``data_dir``: a data root (torchvision's ``root``) holding ``{folder}/``. If not given or without that
      folder, ``$PERSONALIZATION_GYM_DATA`` and then the user cache are searched{system_note}, and then the
      dataset is downloaded into the user cache with torchvision when ``download`` is true (the default).
    * ``obs_shape``: ``"flat"`` or ``"image"``.
    * ``verify``: check every file against its pinned digest (default True; see
      :mod:`personalization_gym.image_data`). Turn it off only for data you made yourself.
    * ``download_url``: a folder URL to download from instead of torchvision's.
    * ``n_eval``: use the first ``n_eval`` test images as the evaluation set (default: all).
    * ``task_seed``: accepted for a uniform interface; the task is fixed data, so it changes nothing.

    ## Version History

    * v0: Initial version.
    """


def _document(env_class: type[ImageClassificationEnv], title: str, dataset: str, n_train: int, n_test: int) -> None:
    spec = env_class.DATASET
    channels, height, width = spec.image_shape
    system_note = (
        f", then the gzipped IDX files of Debian's dataset package in {', '.join(spec.system_dirs)}"
        if spec.system_dirs
        else ""
    )
    env_class.__doc__ = _DOCSTRING.format(
        title=title,
        dataset=dataset,
        name=spec.name,
        n_classes=spec.n_classes,
        flat=channels * height * width,
        image_shape=spec.image_shape,
        n_train=n_train,
        n_test=n_test,
        folder=spec.folder,
        system_note=system_note,
    )


class MNISTEnv(ImageClassificationEnv):
    DATASET = MNIST


class FashionMNISTEnv(ImageClassificationEnv):
    DATASET = FASHION_MNIST


class CIFAR10Env(ImageClassificationEnv):
    DATASET = CIFAR10


class CIFAR100Env(ImageClassificationEnv):
    DATASET = CIFAR100


_document(MNISTEnv, "Handwritten digits (MNIST) as a personalization task.", "a handwritten digit", 60_000, 10_000)
_document(FashionMNISTEnv, "Fashion-MNIST as a personalization task.", "a Zalando fashion article", 60_000, 10_000)
_document(CIFAR10Env, "CIFAR-10 as a personalization task.", "a small colour photo (10 classes)", 50_000, 10_000)
_document(CIFAR100Env, "CIFAR-100 as a personalization task.", "a small colour photo (100 classes)", 50_000, 10_000)
