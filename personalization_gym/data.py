"""Finding, checking and downloading the data files that some tasks need.

A *data root* holds one folder per dataset (``spotify/``, ``MNIST/``, ...), the way torchvision's ``root``
does. A task looks for its dataset folder in these roots, in order:

1. the ``data_dir`` argument of the task,
2. the environment variable ``PERSONALIZATION_GYM_DATA``,
3. the user cache directory (``$XDG_CACHE_HOME/personalization_gym``, by default
   ``~/.cache/personalization_gym``),

and, when none has it and downloading is allowed, downloads the pinned files into the cache. Every file is
checked against its sha256 wherever it was found.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DATA_ENV_VAR",
    "DataIntegrityError",
    "DataNotFoundError",
    "RemoteDataset",
    "data_roots",
    "resolve_dataset",
    "user_cache_dir",
]

DATA_ENV_VAR = "PERSONALIZATION_GYM_DATA"
DOWNLOAD_TIMEOUT_S = 30.0


class DataNotFoundError(FileNotFoundError):
    """A dataset is in none of the data roots and could not be downloaded."""


class DataIntegrityError(OSError):
    """A data file is missing from its dataset folder or its sha256 does not match."""


@dataclass(frozen=True)
class RemoteDataset:
    """A dataset folder of pinned files.

    Attributes:
        name: the folder's name under a data root.
        base_url: where ``<base_url>/<relative path>`` downloads each file.
        sha256: relative path (with ``/``) -> expected sha256 hex digest, for every file of the dataset.
    """

    name: str
    base_url: str
    sha256: Mapping[str, str]


def user_cache_dir() -> Path:
    """The per-user cache directory for downloaded data (XDG base-directory convention)."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache_home) / "personalization_gym"


def data_roots(data_dir: str | os.PathLike[str] | None = None) -> list[tuple[str, Path]]:
    """The data roots to search, in order, each with a label saying where it came from."""
    roots = []
    if data_dir is not None:
        if not isinstance(data_dir, (str, os.PathLike)):
            raise TypeError(f"data_dir must be a path (str or os.PathLike) or None, got {type(data_dir).__name__}")
        roots.append(("data_dir argument", Path(data_dir).expanduser()))
    if os.environ.get(DATA_ENV_VAR):
        roots.append((f"${DATA_ENV_VAR}", Path(os.environ[DATA_ENV_VAR]).expanduser()))
    roots.append(("user cache", user_cache_dir()))
    return roots


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_files(folder: Path, digests: Mapping[str, str], name: str, algorithm: str = "sha256") -> None:
    """Raise DataIntegrityError unless every file of ``digests`` is in ``folder`` with its pinned digest.

    ``digests`` maps a path relative to ``folder`` to its hex digest; ``name`` names the dataset in errors.
    """
    missing = [relative_path for relative_path in digests if not (folder / relative_path).is_file()]
    if missing:
        raise DataIntegrityError(
            f"{name} data in {folder} is incomplete: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
            f"missing. Restore it, or delete {folder} so that the dataset is looked for elsewhere or downloaded."
        )
    for relative_path, expected in digests.items():
        path = folder / relative_path
        actual = file_digest(path, algorithm)
        if actual != expected:
            raise DataIntegrityError(
                f"checksum mismatch for {path}: {algorithm} {actual}, expected {expected}. The file is corrupted "
                f"or not the pinned version; replace it, or delete {folder} to download the dataset again."
            )


def _download_dataset(dataset: RemoteDataset, base_url: str, destination: Path) -> None:
    """Download every file into a temporary folder, check it, then move the folder into place at once."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dataset.name}-", dir=destination.parent))
    try:
        for relative_path, expected in dataset.sha256.items():
            url = f"{base_url.rstrip('/')}/{urllib.parse.quote(relative_path)}"
            try:
                with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                    content = response.read()
            except OSError as error:  # URLError, HTTPError and timeouts are OSErrors
                raise DataNotFoundError(f"could not download {url}: {error}") from error
            actual = hashlib.sha256(content).hexdigest()
            if actual != expected:
                raise DataIntegrityError(
                    f"checksum mismatch for downloaded file {relative_path} from {url}: "
                    f"sha256 {actual}, expected {expected}"
                )
            target = staging / relative_path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        try:
            os.replace(staging, destination)
        except OSError:
            # Another process (e.g. a parallel training run) finished the same download first: use its copy.
            if not destination.is_dir():
                raise
            verify_files(destination, dataset.sha256, dataset.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def resolve_dataset(
    dataset: RemoteDataset,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    base_url: str | None = None,
) -> Path:
    """Return the folder holding ``dataset``'s checked files, downloading them into the cache if needed.

    The first data root that has a ``dataset.name`` folder is used; its files must all be there with the
    pinned checksums, otherwise DataIntegrityError names the file at fault. With no such folder anywhere,
    the files are downloaded from ``base_url`` (default ``dataset.base_url``) into the user cache when
    ``download`` is true; otherwise, or when the download fails, DataNotFoundError says where it looked
    and how to provide the data.
    """
    validate_download_arguments(download, base_url)
    base_url = dataset.base_url if base_url is None else base_url
    folder = find_dataset_folder(dataset.name, data_dir, marker=next(iter(dataset.sha256)))
    if folder is not None:
        verify_files(folder, dataset.sha256, dataset.name)
        return folder
    if not download:
        raise data_not_found(dataset.name, dataset.name, data_dir, base_url, "download=False")
    destination = user_cache_dir() / dataset.name
    try:
        _download_dataset(dataset, base_url, destination)
    except DataNotFoundError as error:
        raise data_not_found(
            dataset.name, dataset.name, data_dir, base_url, f"the download failed ({error})"
        ) from error
    return destination


def validate_download_arguments(download: object, url: object) -> None:
    """``download`` must be a bool and ``url`` None or an http(s) URL."""
    if not isinstance(download, bool):
        raise TypeError(f"download must be True or False, got {download!r}")
    if url is not None and (not isinstance(url, str) or urllib.parse.urlparse(url).scheme not in ("http", "https")):
        raise ValueError(f"download URL must be an http:// or https:// URL, got {url!r}")


def find_dataset_folder(folder_name: str, data_dir: str | os.PathLike[str] | None, marker: str) -> Path | None:
    """The ``folder_name`` folder of the first data root that has one, or None.

    ``marker`` is a path inside the dataset folder: a root that holds it directly is the dataset folder itself,
    given by mistake as a root, which raises a ValueError saying so.
    """
    for label, root in data_roots(data_dir):
        folder = root / folder_name
        if folder.is_dir():
            return folder
        if (root / marker).is_file():
            raise ValueError(
                f"{root} ({label}) is a {folder_name} folder, but a data root is expected: the folder that "
                f"holds {folder_name}/. Use {root.parent} instead."
            )
    return None


def data_not_found(
    name: str,
    folder_name: str,
    data_dir: str | os.PathLike[str] | None,
    source: str,
    reason: str,
    also_looked_in: tuple[str, ...] = (),
) -> DataNotFoundError:
    """The error for a dataset found nowhere: where it looked, why it did not download, the three ways."""
    looked_in = [f"  - {root / folder_name} ({label})" for label, root in data_roots(data_dir)]
    looked_in += [f"  - {place}" for place in also_looked_in]
    looked = "\n".join(looked_in)
    return DataNotFoundError(
        f"{name} data not found and {reason}. Looked in:\n{looked}\n"
        f"Provide it in one of three ways: pass data_dir=<root> holding a {folder_name}/ folder, set "
        f"{DATA_ENV_VAR}=<root>, or allow the download (download=True) from {source} into {user_cache_dir()}."
    )
