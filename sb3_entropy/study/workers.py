"""Worker processes of a study or a tuning run: they leave Ctrl-C to the main process and die with it.

The main process handles Ctrl-C (it terminates the pool at once and keeps the finished runs). If the main process
itself is killed (SIGKILL, an out-of-memory kill, a closed terminal), nothing terminates the pool, and the workers
would train on for nobody: each worker watches its parent and exits when the parent is gone.
"""

from __future__ import annotations

import ast
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["PARENT_CHECK_SECONDS", "check_main_is_guarded", "init_worker", "progress_sender"]

PARENT_CHECK_SECONDS = 1.0
_progress_queue = None  # where this worker sends its runs' progress, if the parent shows it


def init_worker(parent_pid: int, progress_queue: Any = None) -> None:
    """A multiprocessing pool's initializer: ignore SIGINT, and exit soon after ``parent_pid`` has died. Runs
    report their progress into ``progress_queue`` when one is given (:func:`progress_sender`)."""
    global _progress_queue
    _progress_queue = progress_queue
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True, name="parent-watch").start()


def check_main_is_guarded() -> None:
    """A RuntimeError, before any worker starts, when this call runs in a script's top level outside an
    ``if __name__ == "__main__":`` block.

    Worker processes are spawned, and each runs the main script again; a script that starts a study at its top level
    would then start it again in every worker, which Python refuses, and the pool would start new workers forever.
    The script's source is read (with :mod:`ast`) to see whether the line running now is inside such a block.
    Interactive sessions, notebooks and ``python -c`` have no script to run again and are never refused.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or path is None or not os.path.isfile(path):
        return
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals is not vars(main):
        frame = frame.f_back
    while frame is not None and frame.f_back is not None and frame.f_back.f_globals is vars(main):
        frame = frame.f_back  # from a function of the script out to the script's own top level
    if frame is None or frame.f_code.co_name != "<module>":
        return
    try:
        tree = ast.parse(Path(path).read_text(), path)
    except (OSError, SyntaxError, UnicodeDecodeError):
        return
    if not _inside_main_guard(tree, frame.f_lineno):
        raise RuntimeError(
            f"{path}, line {frame.f_lineno}: a study runs its runs in worker processes, each of which runs this script "
            'again; put the code that starts it under `if __name__ == "__main__":` (or pass workers=1)'
        )


def _inside_main_guard(tree: ast.Module, line: int) -> bool:
    """Whether ``line`` of a module lies in the body of an ``if __name__ == "__main__":`` at its top level."""
    for node in tree.body:
        if isinstance(node, ast.If) and _is_main_test(node.test) and node.lineno <= line <= (node.end_lineno or 0):
            return any(child.lineno <= line <= (child.end_lineno or 0) for child in node.body)
    return False


def _is_main_test(test: ast.expr) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = [side for side in sides if isinstance(side, ast.Name) and side.id == "__name__"]
    texts = [side for side in sides if isinstance(side, ast.Constant) and side.value == "__main__"]
    return len(names) == 1 and len(texts) == 1


def progress_sender() -> Callable[[Any], None] | None:
    """How a run in this worker reports its progress: the queue's ``put_nowait``, or None when nobody listens."""
    return None if _progress_queue is None else _progress_queue.put_nowait


def _exit_when_orphaned(parent_pid: int) -> None:
    # An orphan is re-parented (to init or a subreaper), so its parent pid changes; no polling of the parent itself.
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)  # no cleanup to wait for: the run's files are written atomically, or not at all
