"""Image tasks: the real MNIST against an independent IDX parser; the other datasets on small files in their formats."""

from __future__ import annotations

import gzip
import pickle
import shutil
import struct
import tarfile
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from personalization_gym import (
    DATA_ENV_VAR,
    CIFAR10Env,
    CIFAR100Env,
    DataIntegrityError,
    DataNotFoundError,
    FashionMNISTEnv,
    MNISTEnv,
)

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

# --------------------------------------------------------------------------------------------------
# Independent readers and writers of the datasets' own formats


def parse_idx(path: Path) -> np.ndarray:
    """IDX (MNIST's format): 0x00 0x00, a type byte (0x08 = ubyte), the number of dimensions, big-endian sizes."""
    data = path.read_bytes()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    assert zero == 0 and dtype == 0x08
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def expected_rewards(labels: np.ndarray, n_classes: int) -> np.ndarray:
    rewards = np.full((len(labels), n_classes), -1.0 / (n_classes - 1))
    rewards[np.arange(len(labels)), labels] = 1.0
    return rewards


class SmallIdxDataset:
    """An MNIST-format dataset of a few images, written under <root>/<folder>/raw/ (and optionally gzipped)."""

    def __init__(self, root: Path, folder: str, seed: int, n_train: int = 40, n_test: int = 15) -> None:
        rng = np.random.default_rng(seed)
        self.train_images = rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8)
        self.train_labels = rng.integers(0, 10, size=n_train).astype(np.uint8)
        self.test_images = rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8)
        self.test_labels = rng.integers(0, 10, size=n_test).astype(np.uint8)
        self.arrays = dict(
            zip(IDX_FILES, (self.train_images, self.train_labels, self.test_images, self.test_labels), strict=True)
        )
        self.raw = root / folder / "raw"
        for name, array in self.arrays.items():
            write_idx(self.raw / name, array)

    def write_gz(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name in IDX_FILES:
            (folder / f"{name}.gz").write_bytes(gzip.compress((self.raw / name).read_bytes()))
        return folder


class SmallCifar:
    """A CIFAR-format dataset (pickled dicts of uint8 rows R..G..B.. and labels), as torchvision reads it."""

    def __init__(self, root: Path, n_classes: int, seed: int, per_file: int = 12) -> None:
        rng = np.random.default_rng(seed)
        self.n_classes = n_classes
        if n_classes == 10:
            self.folder = root / "cifar-10-batches-py"
            train_files, test_file, label_key = [f"data_batch_{i}" for i in range(1, 6)], "test_batch", "labels"
            meta_file, meta = "batches.meta", {"label_names": [f"class{i}" for i in range(10)]}
        else:
            self.folder = root / "cifar-100-python"
            train_files, test_file, label_key = ["train"], "test", "fine_labels"
            meta_file, meta = "meta", {"fine_label_names": [f"fine{i}" for i in range(100)]}
        self.folder.mkdir(parents=True)
        rows, labels = {}, {}
        for name in [*train_files, test_file]:
            rows[name] = rng.integers(0, 256, size=(per_file, 3072), dtype=np.uint8)
            labels[name] = rng.integers(0, n_classes, size=per_file).tolist()
            entry = {"data": rows[name], label_key: labels[name]}
            if n_classes == 100:
                entry["coarse_labels"] = [label // 5 for label in labels[name]]
            with open(self.folder / name, "wb") as stream:
                pickle.dump(entry, stream, protocol=2)
        with open(self.folder / meta_file, "wb") as stream:
            pickle.dump(meta, stream, protocol=2)
        self.train_rows = np.concatenate([rows[name] for name in train_files])
        self.train_labels = np.concatenate([labels[name] for name in train_files])
        self.test_rows, self.test_labels = rows[test_file], np.array(labels[test_file])
        self.class_names = next(iter(meta.values()))

    def archive(self, folder: Path, filename: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(folder / filename, "w:gz") as tar:
            tar.add(self.folder, arcname=self.folder.name)
        return folder


def fashion_env(system_dirs: tuple[str, ...] = ()) -> type[FashionMNISTEnv]:
    """FashionMNISTEnv with the system folders a test chooses (not this machine's Debian package)."""
    return type("FashionMNISTEnv", (FashionMNISTEnv,), {"SYSTEM_DIRS": system_dirs})


@pytest.fixture(scope="module")
def small_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("small-datasets")
    SmallIdxDataset(root, "FashionMNIST", seed=1)
    SmallCifar(root, 10, seed=2)
    SmallCifar(root, 100, seed=3)
    return root


# --------------------------------------------------------------------------------------------------
# The real MNIST


@pytest.fixture(scope="module")
def mnist_raw(data_root: Path) -> dict[str, np.ndarray]:
    raw = data_root / "MNIST" / "raw"
    if not (raw / IDX_FILES[0]).is_file():
        pytest.fail(f"real MNIST not found in {raw}")
    return {name: parse_idx(raw / name) for name in IDX_FILES}


@pytest.fixture(scope="module")
def mnist(data_root: Path) -> MNISTEnv:
    return MNISTEnv(data_dir=data_root)


def test_mnist_splits_match_the_idx_files(mnist: MNISTEnv, mnist_raw) -> None:
    assert len(mnist.data.train_labels) == 60_000 and len(mnist.data.test_labels) == 10_000
    np.testing.assert_array_equal(mnist.data.train_labels, mnist_raw["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(mnist.data.test_labels, mnist_raw["t10k-labels-idx1-ubyte"])
    np.testing.assert_array_equal(mnist.data.train_images[:, 0], mnist_raw["train-images-idx3-ubyte"])
    assert mnist.data.train_images.dtype == np.uint8
    assert sorted(np.unique(mnist.data.test_labels)) == list(range(10))


def test_mnist_eval_set_is_the_test_split_in_file_order(mnist: MNISTEnv, mnist_raw) -> None:
    eval_set = mnist.eval_set()
    images, labels = mnist_raw["t10k-images-idx3-ubyte"], mnist_raw["t10k-labels-idx1-ubyte"]
    assert eval_set.obs.shape == (10_000, 784) and eval_set.obs.dtype == np.float32
    np.testing.assert_array_equal(eval_set.obs, images.reshape(10_000, 784).astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(eval_set.expected, expected_rewards(labels, 10))
    assert eval_set.obs.min() == 0.0 and eval_set.obs.max() == 1.0


def test_mnist_training_contexts_are_train_images_and_rewards_per_action(mnist: MNISTEnv, mnist_raw) -> None:
    images, labels = mnist_raw["train-images-idx3-ubyte"], mnist_raw["train-labels-idx1-ubyte"]
    batch = mnist.sample(500, np.random.default_rng(0))
    index = batch.hidden["index"]
    np.testing.assert_array_equal(batch.obs, images[index].reshape(500, 784) / np.float32(255))
    np.testing.assert_array_equal(batch.hidden["label"], labels[index])
    for seed in range(5):
        obs, _ = mnist.reset(seed=seed)
        matches = np.flatnonzero((images.reshape(60_000, 784) / np.float32(255) == obs).all(axis=1))
        label = labels[matches[0]]
        for action in range(10):
            mnist.reset(seed=seed)
            reward = mnist.step(action)[1]
            assert reward == (1.0 if action == label else -1.0 / 9)


def test_mnist_contexts_are_uniform_over_the_train_split(mnist: MNISTEnv) -> None:
    index = mnist.sample(300_000, np.random.default_rng(1)).hidden["index"]
    counts = np.bincount(index // 6000, minlength=10)  # ten blocks of 6,000 images
    expected = len(index) / 10
    assert ((counts - expected) ** 2 / expected).sum() < 30.0  # chi-square, 9 dof: P(> 30) ~ 4e-4


def test_image_observations_are_channel_first(data_root: Path, mnist_raw) -> None:
    env = MNISTEnv(data_dir=data_root, obs_shape="image", n_eval=7)
    assert env.observation_space.shape == (1, 28, 28)
    eval_set = env.eval_set()
    assert eval_set.obs.shape == (7, 1, 28, 28)
    np.testing.assert_array_equal(eval_set.obs[:, 0], mnist_raw["t10k-images-idx3-ubyte"][:7] / np.float32(255))
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


def test_tasks_share_one_copy_of_the_data(data_root: Path, mnist: MNISTEnv) -> None:
    other = MNISTEnv(data_dir=data_root, obs_shape="image")
    assert other.data is mnist.data
    assert not mnist.data.train_images.flags.writeable


def test_corrupted_mnist_file_raises_naming_it(data_root: Path, tmp_path: Path) -> None:
    shutil.copytree(data_root / "MNIST", tmp_path / "MNIST")
    victim = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    victim.chmod(0o644)
    content = bytearray(victim.read_bytes())
    content[5000] ^= 0xFF
    victim.write_bytes(bytes(content))
    with pytest.raises(DataIntegrityError, match=rf"checksum mismatch for {victim}: sha256"):
        MNISTEnv(data_dir=tmp_path)


# --------------------------------------------------------------------------------------------------
# Fashion-MNIST and CIFAR through the same code path, on small files


def test_fashion_mnist_small_files(small_root: Path) -> None:
    truth = SmallIdxDataset(small_root.parent / "again", "FashionMNIST", seed=1)  # same seed, same arrays
    env = fashion_env()(data_dir=small_root, verify=False)
    assert env.data_folder == small_root / "FashionMNIST"
    assert env.classes[0] == "T-shirt/top" and env.action_space.n == 10
    eval_set = env.eval_set()
    np.testing.assert_array_equal(eval_set.obs, truth.test_images.reshape(-1, 784) / np.float32(255))
    np.testing.assert_array_equal(eval_set.expected, expected_rewards(truth.test_labels, 10))
    batch = env.sample(100, np.random.default_rng(0))
    np.testing.assert_array_equal(
        batch.obs, truth.train_images[batch.hidden["index"]].reshape(100, -1) / np.float32(255)
    )


@pytest.mark.parametrize(("env_class", "n_classes", "seed"), [(CIFAR10Env, 10, 2), (CIFAR100Env, 100, 3)])
def test_cifar_small_files(small_root: Path, tmp_path: Path, env_class, n_classes: int, seed: int) -> None:
    truth = SmallCifar(tmp_path, n_classes, seed=seed)  # same seed: the same rows as in small_root
    env = env_class(data_dir=small_root, verify=False)
    assert env.action_space.n == n_classes and env.observation_space.shape == (3072,)
    assert env.classes == tuple(truth.class_names)
    assert len(env.data.train_labels) == len(truth.train_labels)
    eval_set = env.eval_set()
    # CIFAR rows are R, G, B planes: exactly the flattened channel-first image
    np.testing.assert_array_equal(eval_set.obs, truth.test_rows / np.float32(255))
    np.testing.assert_array_equal(eval_set.expected, expected_rewards(truth.test_labels, n_classes))
    batch = env.sample(50, np.random.default_rng(1))
    np.testing.assert_array_equal(batch.obs, truth.train_rows[batch.hidden["index"]] / np.float32(255))
    np.testing.assert_array_equal(batch.hidden["label"], truth.train_labels[batch.hidden["index"]])
    image_env = env_class(data_dir=small_root, verify=False, obs_shape="image")
    assert image_env.eval_set().obs.shape == (len(truth.test_labels), 3, 32, 32)
    np.testing.assert_array_equal(image_env.eval_set().obs.reshape(-1, 3072), eval_set.obs)


@pytest.mark.parametrize(
    ("env_class", "victim"),
    [(fashion_env(), "FashionMNIST/raw/train-images-idx3-ubyte"), (CIFAR10Env, "cifar-10-batches-py/data_batch_1"),
     (CIFAR100Env, "cifar-100-python/train")],
)  # fmt: skip
def test_files_that_are_not_the_pinned_ones_raise_naming_the_first(small_root: Path, env_class, victim: str) -> None:
    # The small files are not the real datasets: with verification on (the default) they are rejected.
    with pytest.raises(DataIntegrityError, match=rf"checksum mismatch for {small_root / victim}"):
        env_class(data_dir=small_root)


def test_truncated_file_raises_even_without_verification(tmp_path: Path) -> None:
    SmallIdxDataset(tmp_path, "FashionMNIST", seed=4)
    victim = tmp_path / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte"
    victim.write_bytes(victim.read_bytes()[:-100])
    with pytest.raises(DataIntegrityError, match=r"FashionMNIST data in .* could not be read"):
        fashion_env()(data_dir=tmp_path, verify=False)


def test_missing_file_raises_naming_it(tmp_path: Path) -> None:
    SmallCifar(tmp_path, 10, seed=5)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataIntegrityError, match=r"incomplete: data_batch_3 is missing"):
        CIFAR10Env(data_dir=tmp_path)


def test_fashion_mnist_from_a_debian_style_folder_of_gz_files(tmp_path: Path, isolated_data_locations: Path) -> None:
    truth = SmallIdxDataset(tmp_path / "made", "FashionMNIST", seed=6)
    debian = truth.write_gz(tmp_path / "usr-share-datasets-fashion-mnist")
    env = fashion_env((str(tmp_path / "empty"), str(debian)))(verify=False)
    cached = isolated_data_locations / "personalization_gym" / "FashionMNIST"
    assert env.data_folder == cached
    np.testing.assert_array_equal(env.data.test_images[:, 0], truth.test_images)
    for name in IDX_FILES:
        assert (cached / "raw" / name).read_bytes() == (truth.raw / name).read_bytes()
    # with verification the decompressed small files are rejected, naming where they came from
    shutil.rmtree(cached)
    with pytest.raises(DataIntegrityError, match=rf"checksum mismatch.*came from {debian}"):
        fashion_env((str(debian),))()
    assert not cached.exists()


# --------------------------------------------------------------------------------------------------
# Downloads (torchvision's download code, against a server on 127.0.0.1)


def test_mnist_family_download_from_a_local_server(
    tmp_path: Path, serve_folder, monkeypatch: pytest.MonkeyPatch, isolated_data_locations: Path
) -> None:
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    truth = SmallIdxDataset(tmp_path / "made", "FashionMNIST", seed=7)
    server = serve_folder(truth.write_gz(tmp_path / "served"))
    env = fashion_env()(download_url=server.url, verify=False)
    assert env.data_folder == isolated_data_locations / "personalization_gym" / "FashionMNIST"
    assert set(server.requests) == {f"/{name}.gz" for name in IDX_FILES}
    np.testing.assert_array_equal(env.data.train_images[:, 0], truth.train_images)
    # with verify on, every decompressed file is checked against its sha256 before it enters the cache: small
    # files fail, naming the file and where it came from
    shutil.rmtree(env.data_folder)
    with pytest.raises(DataIntegrityError, match=rf"checksum mismatch for .*raw/t.*-ubyte.*came from {server.url}"):
        fashion_env()(download_url=server.url)
    assert sorted(p.name for p in (isolated_data_locations / "personalization_gym").iterdir()) == []


def test_cifar_download_from_a_local_server(
    tmp_path: Path, serve_folder, monkeypatch: pytest.MonkeyPatch, isolated_data_locations: Path
) -> None:
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    truth = SmallCifar(tmp_path / "made", 10, seed=8)
    server = serve_folder(truth.archive(tmp_path / "served", "cifar-10-python.tar.gz"))
    env = CIFAR10Env(download_url=server.url, verify=False)
    assert env.data_folder == isolated_data_locations / "personalization_gym" / "cifar-10-batches-py"
    assert set(server.requests) == {"/cifar-10-python.tar.gz"}
    np.testing.assert_array_equal(env.eval_set().obs, truth.test_rows / np.float32(255))
    # the archive itself is not kept: only the dataset folder lands in the cache
    assert sorted(p.name for p in (isolated_data_locations / "personalization_gym").iterdir()) == [
        "cifar-10-batches-py"
    ]


@pytest.mark.parametrize("env_class", [MNISTEnv, fashion_env(), CIFAR10Env, CIFAR100Env])
def test_no_data_and_no_network_fails_at_construction(
    env_class, serve_folder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    server = serve_folder(tmp_path)
    url = server.url
    server.close()  # connection refused from now on
    with pytest.raises(DataNotFoundError) as error:
        env_class(data_dir=tmp_path, download_url=url)
    message = str(error.value)
    assert "the download failed" in message and "data_dir" in message and DATA_ENV_VAR in message
    assert str(tmp_path / env_class.DATASET.folder) in message
    with pytest.raises(DataNotFoundError, match="download=False"):
        env_class(data_dir=tmp_path, download=False)


# --------------------------------------------------------------------------------------------------
# Arguments, determinism, checkers


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"obs_shape": "flat2"}, ValueError, r"obs_shape must be one of \('flat', 'image'\), got 'flat2'"),
        ({"obs_shape": None}, ValueError, r"obs_shape must be one of \('flat', 'image'\), got None"),
        ({"n_eval": 10_001}, ValueError, r"n_eval must be at most the test split's size, 10000, got 10001"),
        ({"n_eval": 0}, ValueError, r"n_eval must be an integer >= 1, got 0"),
        ({"verify": "no"}, TypeError, r"verify must be True or False, got 'no'"),
        ({"download": 1}, TypeError, r"download must be True or False, got 1"),
        ({"download_url": "file:///tmp"}, ValueError, r"http:// or https:// URL, got 'file:///tmp'"),
    ],
)
def test_bad_arguments_raise(data_root: Path, kwargs, error, message) -> None:
    with pytest.raises(error, match=message):
        MNISTEnv(data_dir=data_root, **kwargs)


def test_determinism(data_root: Path) -> None:
    def stream(seed: int) -> np.ndarray:
        env = MNISTEnv(data_dir=data_root, n_eval=10)
        return np.array([env.reset(seed=seed)[0]] + [env.reset()[0] for _ in range(99)])

    np.testing.assert_array_equal(stream(3), stream(3))
    assert not np.array_equal(stream(3), stream(4))


@pytest.mark.parametrize(
    ("env_id", "needs_small_files"),
    [
        ("Personalization/MNIST-v0", False),
        ("Personalization/FashionMNIST-v0", True),
        ("Personalization/CIFAR10-v0", True),
        ("Personalization/CIFAR100-v0", True),
    ],
)
@pytest.mark.parametrize("obs_shape", ["flat", "image"])
def test_checkers_pass(env_id: str, needs_small_files: bool, obs_shape: str, data_root: Path, small_root: Path) -> None:
    kwargs = {"data_dir": small_root, "verify": False} if needs_small_files else {"data_dir": data_root}
    env = gym.make(env_id, n_eval=10, obs_shape=obs_shape, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gymnasium_check_env(env.unwrapped, skip_render_check=True)
    if obs_shape == "flat":
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sb3_check_env(env.unwrapped)
    else:
        # SB3 only advises that float images in [0, 1], 28x28 or 32x32, do not suit its default CnnPolicy.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sb3_check_env(env.unwrapped)
        advice = ("is an image but its `dtype` is", "upper and lower bounds are not in [0, 255]", "minimal resolution")
        assert caught and all(any(a in str(w.message) for a in advice) for w in caught), [
            str(w.message) for w in caught
        ]
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    _, reward, terminated, _, info = env.step(env.action_space.sample())
    assert terminated and reward == info["expected_reward"]
