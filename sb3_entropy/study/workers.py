"""Worker processes of a study or a tuning run: they leave Ctrl-C to the main process and die with it.

The main process handles Ctrl-C (it terminates the pool at once and keeps the finished runs). If the main process
itself is killed (SIGKILL, an out-of-memory kill, a closed terminal), nothing terminates the pool, and the workers
would train on for nobody: each worker watches its parent and exits when the parent is gone.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["PARENT_CHECK_SECONDS", "init_worker", "progress_sender"]

PARENT_CHECK_SECONDS = 1.0
_progress_queue = None  # where this worker sends its runs' progress, if the parent shows it


def init_worker(parent_pid: int, progress_queue: Any = None) -> None:
    """A multiprocessing pool's initializer: ignore SIGINT, and exit soon after ``parent_pid`` has died. Runs
    report their progress into ``progress_queue`` when one is given (:func:`progress_sender`)."""
    global _progress_queue
    _progress_queue = progress_queue
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True, name="parent-watch").start()


def progress_sender() -> Callable[[Any], None] | None:
    """How a run in this worker reports its progress: the queue's ``put_nowait``, or None when nobody listens."""
    return None if _progress_queue is None else _progress_queue.put_nowait


def _exit_when_orphaned(parent_pid: int) -> None:
    # An orphan is re-parented (to init or a subreaper), so its parent pid changes; no polling of the parent itself.
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)  # no cleanup to wait for: the run's files are written atomically, or not at all
