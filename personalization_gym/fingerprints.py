"""A task's data fingerprint: a content hash of the arrays it was built from, so that results made on one copy of
the data are never mixed with results made on another (a regenerated file keeps its name, not its content)."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

__all__ = ["data_fingerprint"]


def data_fingerprint(task: Any) -> str | None:
    """The sha256 of the arrays ``task.data_arrays()`` names (their names, dtypes, shapes and bytes), or None for a
    task built from its arguments alone (no data arrays): its arguments are its fingerprint."""
    arrays = task.data_arrays() if hasattr(task, "data_arrays") else {}
    if not arrays:
        return None
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()
