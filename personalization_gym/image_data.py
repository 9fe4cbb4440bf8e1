"""Image-classification datasets read with torchvision and kept in memory once, as uint8.

Lookup order, as for every dataset (see :mod:`personalization_gym.data`): the ``data_dir`` argument,
``$PERSONALIZATION_GYM_DATA``, the user cache; then system folders (Debian's ``dataset-fashion-mnist``
package); then torchvision's download into the user cache. The folder layout is torchvision's:
``<root>/MNIST/raw/``, ``<root>/FashionMNIST/raw/``, ``<root>/cifar-10-batches-py/``, ``<root>/cifar-100-python/``.

Integrity: every file is checked against a pinned digest before it is read (sha256 of the uncompressed IDX
files for MNIST and Fashion-MNIST, whose raw files torchvision does not check; torchvision's own md5 sums for
CIFAR), and downloads are checked by torchvision against its md5 sums. ``verify=False`` turns both off, for
data you made yourself (a subset, or the small files of the tests); it is never turned off silently.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from personalization_gym.checks import check_bool
from personalization_gym.data import (
    DataIntegrityError,
    DataNotFoundError,
    data_not_found,
    find_dataset_folder,
    user_cache_dir,
    validate_download_arguments,
    verify_files,
)

__all__ = ["CIFAR10", "CIFAR100", "FASHION_MNIST", "IMAGE_DATASETS", "MNIST", "ImageDataset", "LoadedImages"]

_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass(frozen=True)
class ImageDataset:
    """What we need to know of one torchvision classification dataset.

    Attributes:
        name: the torchvision class, e.g. ``"MNIST"``.
        folder: the dataset's folder under a data root, in torchvision's layout.
        digests: path relative to ``folder`` -> pinned hex digest of every file read.
        algorithm: the digests' hash algorithm.
        n_classes: number of labels.
        image_shape: ``(channels, height, width)``.
        system_dirs: folders that may hold the gzipped IDX files (Debian's dataset packages).
    """

    name: str
    folder: str
    digests: Mapping[str, str]
    algorithm: str
    n_classes: int
    image_shape: tuple[int, int, int]
    system_dirs: tuple[str, ...] = ()

    @property
    def is_idx(self) -> bool:
        """MNIST-family datasets (IDX files) as opposed to CIFAR's pickled batches."""
        return self.name in ("MNIST", "FashionMNIST")


MNIST = ImageDataset(
    name="MNIST",
    folder="MNIST",
    digests={
        "raw/train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "raw/train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "raw/t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "raw/t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    algorithm="sha256",
    n_classes=10,
    image_shape=(1, 28, 28),
)
FASHION_MNIST = ImageDataset(
    name="FashionMNIST",
    folder="FashionMNIST",
    digests={
        "raw/train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "raw/train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "raw/t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "raw/t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    algorithm="sha256",
    n_classes=10,
    image_shape=(1, 28, 28),
    system_dirs=("/usr/share/datasets/fashion-mnist",),
)
# md5 sums as torchvision pins them (torchvision.datasets.CIFAR10/CIFAR100 train_list, test_list, meta).
CIFAR10 = ImageDataset(
    name="CIFAR10",
    folder="cifar-10-batches-py",
    digests={
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
        "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
    },
    algorithm="md5",
    n_classes=10,
    image_shape=(3, 32, 32),
)
CIFAR100 = ImageDataset(
    name="CIFAR100",
    folder="cifar-100-python",
    digests={
        "train": "16019d7e3df5f24257cddd939b257f8d",
        "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
        "meta": "7973b15100ade9c7d40fb424638fde48",
    },
    algorithm="md5",
    n_classes=100,
    image_shape=(3, 32, 32),
)
IMAGE_DATASETS = {dataset.name: dataset for dataset in (MNIST, FASHION_MNIST, CIFAR10, CIFAR100)}


@dataclass(eq=False)
class LoadedImages:
    """One dataset in memory: uint8 images ``(n, C, H, W)``, int64 labels, all arrays read-only."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...]
    folder: Path


# Tasks built on the same files share one copy; it is freed when the last task using it is.
_loaded: weakref.WeakValueDictionary[tuple[str, bool], LoadedImages] = weakref.WeakValueDictionary()


def load_image_dataset(
    dataset: ImageDataset,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    verify: bool = True,
    download_url: str | None = None,
    system_dirs: tuple[str, ...] | None = None,
) -> LoadedImages:
    """Find (or download) ``dataset``, check its files and read both splits into memory.

    ``download_url`` replaces torchvision's download location: for MNIST and Fashion-MNIST a folder
    URL holding the four ``.gz`` files, for CIFAR a folder URL holding the ``.tar.gz`` archive.
    ``system_dirs`` replaces ``dataset.system_dirs``.
    """
    validate_download_arguments(download, download_url)
    check_bool("verify", verify, TypeError)
    system_dirs = dataset.system_dirs if system_dirs is None else system_dirs
    folder = find_dataset_folder(dataset.folder, data_dir, marker=next(iter(dataset.digests)))
    if folder is None:
        folder = _install_from_system_dirs(dataset, system_dirs, verify)
    if folder is None:
        source = download_url or "torchvision's download location"
        if not download:
            raise data_not_found(dataset.name, dataset.folder, data_dir, source, "download=False", system_dirs)
        try:
            folder = _download(dataset, verify, download_url)
        except DataNotFoundError as error:
            raise data_not_found(
                dataset.name, dataset.folder, data_dir, source, f"the download failed ({error})", system_dirs
            ) from error

    key = (str(folder.resolve()), verify)
    loaded = _loaded.get(key)
    if loaded is None:
        if verify:
            verify_files(folder, dataset.digests, dataset.name, dataset.algorithm)
        loaded = _read(dataset, folder)
        _loaded[key] = loaded
    return loaded


def _torchvision_class(dataset: ImageDataset, verify: bool, download_url: str | None) -> type:
    """torchvision's dataset class, adjusted through its class attributes only.

    We check files ourselves before reading, so CIFAR's read-time md5 checks are off (they would hash 180 MB
    again). MNIST-family downloads skip torchvision's md5 of each ``.gz`` file: the sha256 of every
    decompressed file, checked before the download is moved into the cache, is the stronger check, and it
    holds whichever server the files came from. ``verify=False`` also drops CIFAR's md5 of the archive;
    ``download_url`` replaces the mirrors. The subclass keeps the class name, which torchvision's MNIST uses
    for its folder.
    """
    import torchvision.datasets

    base = getattr(torchvision.datasets, dataset.name)
    changes: dict[str, Any] = {}
    if dataset.is_idx:
        if download_url:
            changes["mirrors"] = [download_url.rstrip("/") + "/"]
        changes["resources"] = [(filename, None) for filename, _ in base.resources]
    else:
        changes["train_list"] = [[filename, None] for filename, _ in base.train_list]
        changes["test_list"] = [[filename, None] for filename, _ in base.test_list]
        changes["meta"] = {**base.meta, "md5": None}
        if download_url:
            changes["url"] = f"{download_url.rstrip('/')}/{base.filename}"
        if not verify:
            changes["tgz_md5"] = None
    return type(base.__name__, (base,), changes)


def _read(dataset: ImageDataset, folder: Path) -> LoadedImages:
    reader = _torchvision_class(dataset, verify=True, download_url=None)
    root = str(folder.parent)
    splits = []
    for train in (True, False):
        try:
            split = reader(root=root, train=train, download=False)
        except (RuntimeError, ValueError, KeyError, EOFError, OSError) as error:  # truncated or malformed files
            raise DataIntegrityError(f"{dataset.name} data in {folder} could not be read: {error!r}") from error
        if dataset.is_idx:
            images = split.data.numpy()[:, None]  # (n, 28, 28) -> (n, 1, 28, 28), no copy
        else:
            images = np.ascontiguousarray(split.data.transpose(0, 3, 1, 2))  # torchvision gives HWC
        labels = np.asarray(split.targets, dtype=np.int64)
        if images.shape[1:] != dataset.image_shape or len(labels) != len(images):
            raise DataIntegrityError(
                f"{dataset.name} data in {folder}: images of shape {images.shape[1:]} and {len(labels)} labels for "
                f"{len(images)} images; expected images of shape {dataset.image_shape} and one label each"
            )
        if labels.size and not 0 <= labels.min() <= labels.max() < dataset.n_classes:
            raise DataIntegrityError(
                f"{dataset.name} data in {folder}: labels must lie in [0, {dataset.n_classes}), "
                f"found {labels.min()}..{labels.max()}"
            )
        for array in (images, labels):
            array.flags.writeable = False
        splits.append((images, labels))
        classes = tuple(str(name) for name in split.classes)
    (train_images, train_labels), (test_images, test_labels) = splits
    return LoadedImages(train_images, train_labels, test_images, test_labels, classes, folder)


def _install_from_system_dirs(dataset: ImageDataset, system_dirs: tuple[str, ...], verify: bool) -> Path | None:
    """Decompress the gzipped IDX files of a system folder (e.g. Debian's) into the user cache."""
    if not dataset.is_idx:
        return None
    for system_dir in map(Path, system_dirs):
        if not all((system_dir / f"{name}.gz").is_file() for name in _IDX_FILES):
            continue

        def fill(staging: Path, system_dir: Path = system_dir) -> None:
            raw = staging / dataset.folder / "raw"
            raw.mkdir(parents=True)
            for name in _IDX_FILES:
                try:
                    with gzip.open(system_dir / f"{name}.gz") as source, open(raw / name, "wb") as target:
                        shutil.copyfileobj(source, target)
                except (OSError, EOFError) as error:
                    raise DataIntegrityError(f"cannot decompress {system_dir / name}.gz: {error}") from error

        return _into_cache(dataset, verify, fill, origin=str(system_dir))
    return None


def _download(dataset: ImageDataset, verify: bool, download_url: str | None) -> Path:
    def fill(staging: Path) -> None:
        downloader = _torchvision_class(dataset, verify, download_url)
        try:
            downloader(root=str(staging), train=True, download=True)  # fetches both splits
        except Exception as error:  # torchvision raises URLError, RuntimeError, OSError, tarfile errors, ...
            raise DataNotFoundError(f"{type(error).__name__}: {error}") from error

    return _into_cache(dataset, verify, fill, origin=download_url or "torchvision's download location")


def _into_cache(dataset: ImageDataset, verify: bool, fill: Callable[[Path], None], origin: str) -> Path:
    """Build the dataset folder in a staging folder, check it, then move it into the user cache at once."""
    cache = user_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    destination = cache / dataset.folder
    staging = Path(tempfile.mkdtemp(prefix=f".{dataset.folder}-", dir=cache))
    try:
        fill(staging)
        if verify:
            try:
                verify_files(staging / dataset.folder, dataset.digests, dataset.name, dataset.algorithm)
            except DataIntegrityError as error:
                raise DataIntegrityError(f"{error} The files came from {origin}.") from error
        try:
            os.replace(staging / dataset.folder, destination)
        except OSError:
            if not destination.is_dir():  # not a parallel process that got there first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination
