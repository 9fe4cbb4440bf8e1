"""Files written whole or not at all: write to a temporary file beside the target, then rename it over the target.

A crash, a kill or a full disk while a file is written leaves the old file (or none), never half of a new one, so
``--resume`` and a reader of the results never meet a truncated file. The rename is ``os.replace``, atomic on
POSIX and Windows within one folder; the data is flushed to disk before it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "output_folder", "write_text_atomically"]


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; it replaces ``path`` when the block ends without an error.

    The temporary file keeps ``path``'s suffix (matplotlib and others choose the format from it) and is removed
    if the block raises.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        yield temporary
        with open(temporary, "rb") as stream:
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomically(path: str | os.PathLike[str], text: str) -> Path:
    with atomic_path(path) as temporary:
        temporary.write_text(text)
    return Path(path)


def output_folder(flag: str, text: str) -> Path:
    """The folder an option names for outputs, created if needed and checked writable before anything runs; a
    ValueError naming ``flag`` if it is empty, a file, or cannot be written in."""
    if not text.strip():
        raise ValueError(f"{flag} is empty: give a folder")
    folder = Path(text).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{flag} {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write_test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ValueError(f"{flag} {folder}: cannot write there ({error.strerror})") from None
    return folder
