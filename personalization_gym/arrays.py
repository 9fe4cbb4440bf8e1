"""Arrays that a user's own task is built from: read from ``.npy``, ``.npz`` or ``.csv`` files, or taken as given,
and checked before anything trains.

Every check raises a ValueError that names the argument, what is wrong (the first bad row and column) and what
is valid; nothing is converted silently (a float array of labels is refused, not rounded).
"""

from __future__ import annotations

import csv
import io
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from personalization_gym.checks import check_number, is_number_text

__all__ = ["ARRAY_SUFFIXES", "as_array", "check_finite", "check_table", "held_out_count", "read_array", "utf8_text"]

ARRAY_SUFFIXES = (".npy", ".npz", ".csv")


def read_array(path: str | os.PathLike[str], name: str) -> np.ndarray:
    """The array in a ``.npy`` file, a ``.npz`` file (its only array, or the one called ``name``) or a ``.csv`` file
    of numbers (one row per line; a first line none of whose cells is a number is a header). Every error names
    the argument and the file."""
    path = Path(path)
    if path.suffix not in ARRAY_SUFFIXES:
        raise ValueError(f"{name}: cannot read {path}: the file must end in one of {list(ARRAY_SUFFIXES)}")
    if path.is_dir():
        raise ValueError(f"{name}: {path} is a folder, not a file")
    if not path.is_file():
        raise FileNotFoundError(f"{name}: file {path} not found")
    if path.suffix == ".csv":
        return _read_csv(path, name)
    try:
        return _read_numpy(path, name)
    except (EOFError, OSError, ValueError, zipfile.BadZipFile) as error:
        if str(error).startswith(f"{name}: "):
            raise
        kind = "np.save" if path.suffix == ".npy" else "np.savez"
        raise ValueError(
            f"{name}: {path} is not a {path.suffix} file as {kind} writes it ({_why_not_numpy(error)}); save the "
            f"array with {kind}, or give a .csv"
        ) from None


def _why_not_numpy(error: Exception) -> str:
    """What numpy's refusal of a file means, in words that do not advise unpickling it."""
    if isinstance(error, EOFError):
        return "EOFError: the file is empty or cut short"
    if isinstance(error, zipfile.BadZipFile):
        return "BadZipFile: it is not a zip archive"
    if "pickle" in str(error):
        return "it has no array header: a text file, or a pickled object, which is never loaded"
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else 'unreadable'}"


def _read_numpy(path: Path, name: str) -> np.ndarray:
    """A .npy file's array, or a .npz file's only array (or the one called ``name``); never a pickled object."""
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    with np.load(path, allow_pickle=False) as archive:
        keys = list(archive.keys())
        if len(keys) == 1:
            return archive[keys[0]]
        if name in keys:
            return archive[name]
    raise ValueError(f"{name}: {path} holds arrays {keys}: it must hold one array, or one called {name!r}")


COMPRESSED = {b"\x1f\x8b": "gzip", b"PK\x03\x04": "zip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"(\xb5/\xfd": "zstd"}


def utf8_text(path: Path, name: str) -> str:
    """A text file's content as UTF-8, a byte-order mark read as one (not as the first cell's), newlines as they
    are; a file in another encoding is a ValueError naming ``name`` and the file."""
    data = path.read_bytes()
    packed = next((kind for magic, kind in COMPRESSED.items() if data.startswith(magic)), None)
    if packed is not None:
        raise ValueError(f"{name}: {path} is a {packed} file, not text: decompress it first, and give the file "
                         "inside")  # fmt: skip
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{name}: {path} is not UTF-8 text ({error.reason} at byte {error.start}); save it as "
                         "UTF-8") from None  # fmt: skip


def _read_csv(path: Path, name: str) -> np.ndarray:
    rows = csv.reader(io.StringIO(utf8_text(path, name), newline=""))
    lines = [(number, row) for number, row in enumerate(rows, start=1) if row]
    # The rule for a header: a first line none of whose cells reads as a number (a typo in a number is no header).
    if lines and not any(is_number_text(cell) for cell in lines[0][1]):
        lines = lines[1:]
    if not lines:
        raise ValueError(f"{name}: {path} has no rows of numbers")
    width = len(lines[0][1])
    for number, row in lines:
        if len(row) != width:
            raise ValueError(f"{name}: {path}, line {number}: {len(row)} columns, the first row has {width}")
        for column, cell in enumerate(row):
            if not is_number_text(cell):
                raise ValueError(f"{name}: {path}, line {number}, column {column}: {cell!r} is not a number")
    rows = [row for _, row in lines]
    array = np.array([[float(cell) for cell in row] for row in rows])
    integral = all("." not in cell and "e" not in cell.lower() for row in rows for cell in row)
    # Whole numbers stay integers (labels, ids); anything with a decimal point is float64.
    return array.astype(np.int64) if integral and np.isfinite(array).all() else array


def as_array(value: Any, name: str) -> np.ndarray:
    """``value`` as a numeric numpy array: read from a file when it is a path, else ``np.asarray(value)``."""
    if isinstance(value, (str, os.PathLike)):
        array = read_array(value, name)
    else:
        try:
            array = np.asarray(value)
        except ValueError as error:  # ragged lists of lists
            raise ValueError(f"{name} must be a table whose rows have one length: {_ragged(value) or error}") from None
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be an array of numbers, got dtype {array.dtype}")
    return array


def _ragged(value: Any) -> str | None:
    """Where a list of rows is ragged: 'row 0 has 2 entries, row 1 has 1', or None if not a list of lists."""
    try:
        lengths = [len(row) for row in value]
    except TypeError:
        return None
    first = lengths[0]
    other = next((index for index, length in enumerate(lengths) if length != first), None)
    return None if other is None else f"row 0 has {first} entries, row {other} has {lengths[other]}"


def check_finite(array: np.ndarray, name: str) -> None:
    """Refuse NaN and inf, naming how many entries and the first one."""
    if array.dtype.kind != "f":
        return
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f"row {first[0]}, column {first[1]}" if len(first) == 2 else f"entry {first}"
        raise ValueError(
            f"{name} contains NaN or inf in {int(bad.sum())} of {array.size} entries; the first at {where} "
            f"({array[first]}). Every value must be finite."
        )


def check_table(array: np.ndarray, name: str, rows: str, columns: str, min_columns: int = 1) -> np.ndarray:
    """A finite 2-d array with at least one row and ``min_columns`` columns (``rows`` and ``columns`` name them)."""
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array ({rows}, {columns}), got shape {array.shape}")
    if len(array) == 0 or array.shape[1] < min_columns:
        raise ValueError(
            f"{name} must have at least 1 row ({rows}) and {min_columns} column(s) ({columns}), got shape {array.shape}"
        )
    check_finite(array, name)
    return array


def held_out_count(fraction: Any, n: int, name: str = "eval_fraction") -> int:
    """How many of ``n`` users a held-out fraction takes (rounded, at least 1), or a ValueError."""
    fraction = check_number(name, fraction, above=0, below=1)
    return max(1, math.floor(fraction * n + 0.5))
