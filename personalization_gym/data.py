"""Finding and checking the data files that some tasks need.

A *data root* holds one folder per dataset (``spotify/``, ``MNIST/``, ...), the way torchvision's ``root``
does. A task looks for its dataset folder in these roots, in order:

1. the ``data_dir`` argument of the task,
2. the environment variable ``PERSONALIZATION_GYM_DATA``,
3. the user cache directory (``$XDG_CACHE_HOME/personalization_gym``, by default
   ``~/.cache/personalization_gym``).

When none has it, Music-v0 uses the copy shipped in the package and the image tasks download into the cache
(``personalization_gym.image_data``). Every file is checked against its pinned digest wherever it was found.
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from personalization_gym.checks import check_bool

__all__ = [
    "DATA_ENV_VAR",
    "DataIntegrityError",
    "DataNotFoundError",
    "data_roots",
    "find_dataset_folder",
    "user_cache_dir",
    "verify_files",
]

DATA_ENV_VAR = "PERSONALIZATION_GYM_DATA"


class DataNotFoundError(FileNotFoundError):
    """A dataset is in none of the data roots and could not be downloaded."""


class DataIntegrityError(OSError):
    """A data file is missing from its dataset folder or its sha256 does not match."""


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
        root = Path(data_dir).expanduser()
        if not root.is_dir():  # a typo must not fall back to other data without a word
            raise ValueError(
                f"data_dir {root} is not a folder{'' if root.exists() else ' (it does not exist)'}: give a data "
                "root, the folder that holds dataset folders such as spotify/ or MNIST/, or leave data_dir out"
            )
        roots.append(("data_dir argument", root))
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


def validate_download_arguments(download: object, url: object) -> None:
    """``download`` must be a bool and ``url`` None or an http(s) URL."""
    check_bool("download", download, TypeError)
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
