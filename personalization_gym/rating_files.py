"""Rating files as researchers have them: MovieLens's own formats, RecBole's atomic files, and plain CSV.

A file's format is detected from its first line (or named): ``::`` between fields is MovieLens-1M/10M's
``ratings.dat``; tabs with a header of ``name:type`` fields is RecBole's ``.inter``; tabs between numbers is
MovieLens-100K's ``u.data``; anything else is read as CSV, where MovieLens-latest's ``ratings.csv`` (header
``userId,movieId,rating,timestamp``) is recognised by its header. Files are read as UTF-8, a byte-order mark
included.

A file of integer ids is read by numpy's C parser (``np.loadtxt``): MovieLens-32M's 32 million ratings in seconds,
holding the file and three columns. A file it cannot read that way (ids that are text, a row it refuses) is read
again line by line, which names the first bad line and returns text ids.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from pathlib import Path

import numpy as np

from personalization_gym.arrays import utf8_text
from personalization_gym.checks import check_choice, is_number_text

__all__ = ["DEFAULT_COLUMNS", "MOVIELENS_COLUMNS", "RATINGS_FORMATS", "detect_ratings_format", "read_ratings"]

DEFAULT_COLUMNS = ("user", "item", "rating")
MOVIELENS_COLUMNS = ("userId", "movieId", "rating")  # MovieLens-latest's ratings.csv (and 20M, 25M, 32M)
RECBOLE_COLUMNS = ("user_id", "item_id", "rating")  # RecBole's atomic .inter files
RATINGS_FORMATS = {
    "csv": "comma-separated; a header naming the user, item and rating columns (MovieLens-latest's ratings.csv "
    "among them), or no header and exactly those three columns",
    "movielens-100k": "MovieLens-100K's u.data: user, item, rating, timestamp, tab-separated, no header",
    "movielens-dat": "MovieLens-1M's and 10M's ratings.dat: user::item::rating::timestamp, no header",
    "recbole": "RecBole's atomic .inter: tab-separated, a header of name:type fields (user_id:token, "
    "item_id:token, rating:float, ...)",
}


def read_ratings(
    path: str | os.PathLike[str], columns: tuple[str, str, str] = DEFAULT_COLUMNS, ratings_format: str = "auto"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(users, items, ratings)`` from a rating file in one of :data:`RATINGS_FORMATS`, detected from its first
    line when ``ratings_format`` is ``"auto"``. ``columns`` names the user, item and rating columns of a file with
    a header (other columns, such as a timestamp, are ignored); left at its default it also finds MovieLens's and
    RecBole's names. Ids are integers when every one is an integer, else strings."""
    path = Path(path)
    if ratings_format != "auto":
        check_choice("ratings_format", ratings_format, ("auto", *RATINGS_FORMATS))
    read = _read_integer_ids(path, columns, ratings_format)
    return read if read is not None else _read_lines(path, columns, ratings_format)


def _read_lines(
    path: Path, columns: tuple[str, str, str], ratings_format: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``read_ratings`` line by line, in Python: slower, for text ids, and the reader that names a bad line."""
    lines = _lines(path)
    if ratings_format == "auto":
        ratings_format = detect_ratings_format(path, lines[0][1])
    header, rows = _split(path, lines, ratings_format)
    positions = _positions(path, header, columns, len(rows[0][1]) if rows else 0, ratings_format)
    if not rows:
        raise ValueError(f"ratings: {path} has a header and no ratings")
    for number, row in rows:
        if len(row) <= max(positions):
            raise ValueError(f"ratings: {path}, line {number}: {len(row)} columns, expected at least "
                             f"{max(positions) + 1}")  # fmt: skip
    users, items, texts = ([row[p].strip() for _, row in rows] for p in positions)
    numbers = [number for number, _ in rows]
    return _ids(path, users, numbers, "user"), _ids(path, items, numbers, "item"), _numbers(path, texts, numbers)


def _read_integer_ids(
    path: Path, columns: tuple[str, str, str], ratings_format: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The file read by numpy's C parser, when its ids are integers and every row reads; else None (the file is then
    read line by line, which names what is wrong). The header, the format and the columns follow the same rules."""
    try:
        data = path.read_bytes()
        head = data[:65536].decode("utf-8-sig", errors="replace")  # a cut character: loadtxt decodes the whole
        first = next((line for line in head.splitlines() if line.strip()), None)
    except (OSError, UnicodeDecodeError):
        return None
    if first is None:
        return None
    try:
        if ratings_format == "auto":
            ratings_format = detect_ratings_format(path, first)
        header, width = _first_row(first, ratings_format)
        positions = _positions(path, header, columns, width, ratings_format)
    except ValueError:
        return None
    return _loadtxt(data, ratings_format, header is not None, positions)


def _loadtxt(
    data: bytes, ratings_format: str, has_header: bool, positions: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The user, item and rating columns (at ``positions``) of a file's bytes, ids as integers, by numpy's C parser;
    None when it refuses a row (a text id, a missing field, a rating that is not a number)."""
    if ratings_format == "movielens-dat":
        data = data.replace(b"::", b"\t")  # np.loadtxt takes a one-character delimiter
    names = [("user", np.int64), ("item", np.int64), ("rating", np.float64)]
    dtype = np.dtype([names[k] for k in np.argsort(positions)])  # np.loadtxt gives the columns in file order
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")
    quote = '"' if ratings_format == "csv" else None
    delimiter = "," if ratings_format == "csv" else "\t"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a header alone: read line by line, which says so
        try:
            table = np.loadtxt(text, dtype=dtype, delimiter=delimiter, skiprows=int(has_header),
                               usecols=sorted(positions), comments=None, quotechar=quote, ndmin=1)  # fmt: skip
        except (ValueError, UnicodeDecodeError):
            return None
    if len(table) == 0 or not np.isfinite(table["rating"]).all():
        return None  # read line by line, which names the line
    return tuple(np.ascontiguousarray(table[name]) for name, _ in names)


def _first_row(line: str, ratings_format: str) -> tuple[list[str] | None, int]:
    """The header's names (None without one) and the number of fields, from a file's first non-empty line."""
    if ratings_format == "csv":
        fields = next(csv.reader([line]))
        return (None if is_number_text(fields[-1]) else [name.strip() for name in fields]), len(fields)
    fields = line.split("::" if ratings_format == "movielens-dat" else "\t")
    if ratings_format == "recbole":
        return [field.partition(":")[0].strip() for field in fields], len(fields)
    return None, len(fields)


def detect_ratings_format(path: str | os.PathLike[str], first_line: str) -> str:
    """The format of a rating file whose first non-empty line is ``first_line``; a ValueError for a tab-separated
    line that is neither MovieLens-100K's nor RecBole's."""
    if "::" in first_line:
        return "movielens-dat"
    if "\t" not in first_line:
        return "csv"
    fields = first_line.split("\t")
    if all(":" in field for field in fields):
        return "recbole"
    if all(is_number_text(field) for field in fields):
        return "movielens-100k"
    raise ValueError(
        f"ratings: {path} is tab-separated, but its first line {first_line!r} is neither a RecBole header "
        "(name:type fields) nor a row of numbers (MovieLens-100K's u.data); name the format with ratings_format "
        f"(one of {list(RATINGS_FORMATS)}) or write the file as CSV"
    )


def _lines(path: Path) -> list[tuple[int, str]]:
    """The file's non-empty lines with their numbers (from 1), read as UTF-8 with or without a byte-order mark."""
    if path.is_dir():
        raise ValueError(f"ratings: {path} is a folder; give the rating file in it")
    if not path.is_file():
        raise FileNotFoundError(f"ratings: file {path} not found")
    text = utf8_text(path, "ratings")
    lines = [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise ValueError(f"ratings: {path} is empty")
    return lines


def _split(path: Path, lines: list[tuple[int, str]], ratings_format: str) -> tuple[list[str] | None, list]:
    """The header's names (None without one) and the numbered rows of fields, as the format splits them."""
    if ratings_format == "csv":
        rows = [(number, row) for (number, _), row in zip(lines, csv.reader(line for _, line in lines), strict=True)]
        # The rule for a header: a first row whose last field does not read as a number (a rating would).
        if is_number_text(rows[0][1][-1]):
            return None, rows
        return [name.strip() for name in rows[0][1]], rows[1:]
    separator = "::" if ratings_format == "movielens-dat" else "\t"
    rows = [(number, line.split(separator)) for number, line in lines]
    if ratings_format == "recbole":
        header = [field.partition(":")[0].strip() for field in rows[0][1]]
        return header, rows[1:]
    return None, rows


def _positions(
    path: Path, header: list[str] | None, columns: tuple[str, str, str], width: int, ratings_format: str
) -> list[int]:
    """Where the user, item and rating columns are: named by the header, or the first three without one."""
    if header is None:
        if tuple(columns) != DEFAULT_COLUMNS:  # they name a header's columns: without one they would be ignored
            raise ValueError(
                f"columns={tuple(columns)} names the columns of a header, but {path} has none (its first line is a "
                "rating): its fields are read in order as user, item, rating; leave columns out, or add a header"
            )
        if ratings_format == "csv" and width != 3:
            raise ValueError(
                f"ratings: {path} has no header and {width} columns: a headerless file holds exactly three "
                f"({', '.join(columns)}); or give a header naming {list(columns)}"
            )
        if width not in (3, 4):
            raise ValueError(f"ratings: {path} has {width} fields per line; {RATINGS_FORMATS[ratings_format]}")
        return [0, 1, 2]
    if tuple(columns) == DEFAULT_COLUMNS:
        for known in (MOVIELENS_COLUMNS, RECBOLE_COLUMNS):
            if all(name in header for name in known) and not all(name in header for name in columns):
                columns = known
    missing = [name for name in columns if name not in header]
    if missing:
        raise ValueError(
            f"ratings: {path}'s header {header} lacks column(s) {missing}; name the user, item and rating columns "
            f"with columns=(user, item, rating), now {tuple(columns)}" + _separator_hint(header)
        )
    return [header.index(name) for name in columns]


def _separator_hint(header: list[str]) -> str:
    """A hint for a "header" that is a row of numbers joined by a separator no format uses (``1:31:2.5:0``)."""
    for separator in (":", ";", "|", " "):
        parts = [part for field in header for part in field.split(separator)]
        if len(parts) >= 3 and all(is_number_text(part) for part in parts):
            return (
                f". Its first line looks like a rating with fields separated by {separator!r}, which no format uses: "
                f"write it comma-separated, or as MovieLens-1M's ratings.dat with '::'"
            )
    return ""


def _numbers(path: Path, texts: list[str], line_numbers: list[int]) -> np.ndarray:
    """The ratings as floats, or a ValueError naming the first line whose rating is not a finite number."""
    try:
        numbers = np.array(texts, dtype=np.float64)
    except ValueError:
        for number, text in zip(line_numbers, texts, strict=True):
            if not is_number_text(text):
                raise ValueError(f"ratings: {path}, line {number}: rating {text!r} is not a number") from None
        raise
    bad = np.flatnonzero(~np.isfinite(numbers))
    if len(bad):
        raise ValueError(f"ratings: {path}, line {line_numbers[bad[0]]}: rating {texts[bad[0]]!r} is not a finite "
                         f"number ({len(bad)} line(s) have one)")  # fmt: skip
    return numbers


def _ids(path: Path, texts: list[str], line_numbers: list[int], kind: str) -> np.ndarray:
    """Ids read from a file: integers when every one is an integer (so that 10 sorts after 9), else strings. An
    empty id, or one number written two ways (``1`` and ``1.0``, which would be two users), is a ValueError naming
    the lines."""
    empty = [number for number, text in zip(line_numbers, texts, strict=True) if not text]
    if empty:
        raise ValueError(f"ratings: {path}, line {empty[0]}: empty {kind} id ({len(empty)} line(s) have one); every "
                         f"rating needs a {kind}")  # fmt: skip
    try:
        return np.array([int(text) for text in texts], dtype=np.int64)
    except ValueError:
        pass
    first_written: dict[float, tuple[str, int]] = {}
    for number, text in zip(line_numbers, texts, strict=True):
        if not is_number_text(text):
            continue
        written, line = first_written.setdefault(float(text), (text, number))
        if written != text:
            raise ValueError(
                f"ratings: {path}: {kind} ids {written!r} (line {line}) and {text!r} (line {number}) are one number "
                f"written two ways, so they would be two {kind}s; write each id one way"
            )
    return np.array(texts)
