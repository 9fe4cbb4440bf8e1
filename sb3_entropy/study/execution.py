"""Where a study's runs run: in this process, in a pool of spawned worker processes, or as Ray tasks on a cluster;
the worker processes themselves, the progress display, and Ctrl-C.

Each executor takes the runs as ``(key, RunSpec)`` items and hands every outcome to ``finish(key, outcome)`` as it
arrives (a history, or the error and traceback of a run that failed: one failing run does not stop the others).
:func:`execute` picks one; the results are the same wherever the runs ran, since each run is seeded on its own.

Workers leave Ctrl-C to the main process, which terminates the pool at once and keeps the finished runs. If the
main process itself is killed (SIGKILL, an out-of-memory kill, a closed terminal), nothing terminates the pool, so
each worker watches its parent and exits when the parent is gone.

Progress: one bar on a terminal, plain lines elsewhere (CI logs, nohup). Each run counts for its steps times its
agent's measured cost (``RUN_COST``), so the share done and the time left follow the work, not the number of runs.

:class:`CtrlC` stops an agent's training at once, but never a write to a tuning storage half-way: a sequential
tuning run trains in the main process between Optuna's writes of each trial, and a KeyboardInterrupt inside one of
those writes can leave the trial marked running for ever, or break Optuna's own bookkeeping.
"""

from __future__ import annotations

import ast
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm

from sb3_entropy.study.runs import RunSpec, one_torch_thread, run_environment, train

__all__ = [
    "PARENT_CHECK_SECONDS",
    "RAY_CONNECT_SECONDS",
    "RUN_COST",
    "CtrlC",
    "StepsReporter",
    "StudyProgress",
    "check_main_is_guarded",
    "check_ray_address",
    "clock",
    "connect_ray",
    "execute",
    "init_worker",
    "progress_sender",
    "run_in_pool",
    "run_in_worker",
    "run_on_ray",
]


# ------------------------------------------------------------------------------------------------------------
# Worker processes
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


# ------------------------------------------------------------------------------------------------------------
# Ctrl-C
class CtrlC:
    """SIGINT as a KeyboardInterrupt inside ``stoppable()`` blocks, held (then raised by ``check()`` or at the next
    ``stoppable()`` block) outside them."""

    def __init__(self) -> None:
        self._held = False
        self._stoppable = False

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self._stoppable:
            raise KeyboardInterrupt
        self._held = True

    @contextmanager
    def handling(self) -> Iterator[None]:
        """Take SIGINT for the block. Only in the main thread of a process with Python's own handler: a pool worker
        that ignores SIGINT (its main process handles Ctrl-C) keeps ignoring it."""
        if (
            threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        ):
            yield
            return
        previous = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def check(self) -> None:
        """Raise the Ctrl-C held since the last check, if there is one."""
        if self._held:
            self._held = False
            raise KeyboardInterrupt

    @contextmanager
    def stoppable(self) -> Iterator[None]:
        """A block that Ctrl-C stops at once; one held before it stops it as it starts."""
        self.check()
        self._stoppable = True
        try:
            yield
        finally:
            self._stoppable = False

    @contextmanager
    def held(self) -> Iterator[None]:
        """Inside a stoppable block, a part not to be cut (a write): a Ctrl-C during it is raised right after it."""
        stoppable, self._stoppable = self._stoppable, False
        try:
            yield
        finally:
            self._stoppable = stoppable
        if stoppable:
            self.check()


# ------------------------------------------------------------------------------------------------------------
# Progress across a study's runs
# CPU seconds of one music run of each algorithm relative to DQN's (benchmarks/bench_study.py, docs/performance.md).
# Runs start dearest first, so that the last to finish are short ones; the progress display weighs runs by it.
# Other algorithms count as 1.
RUN_COST = {"trpo": 5.0, "qrdqn": 4.2, "ppo": 1.4, "a2c": 1.3, "dqn": 1.0}


def clock(seconds: float) -> str:
    """``75.2`` -> ``1:15``; ``3725`` -> ``1:02:05``."""
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class StepsReporter(BaseCallback):
    """Sends ``(key, timesteps)`` through ``send`` at the start and then at most every ``interval`` seconds."""

    def __init__(self, send: Callable[[tuple[Hashable, int]], Any], key: Hashable, interval: float = 0.5) -> None:
        super().__init__()
        self.send, self.key, self.interval = send, key, interval
        self._last = -float("inf")

    def _on_step(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self.send((self.key, self.num_timesteps))
        return True


class _Bar(tqdm):
    """tqdm's bar with the study's own words after it (tqdm's ``{postfix}`` would start with a comma)."""

    words = ""

    @property
    def format_dict(self) -> dict[str, Any]:
        return {**super().format_dict, "words": self.words}


class StudyProgress:
    """The progress of one experiment's runs: share of the work done, runs done, elapsed and time left.

    ``runs`` maps each run's key to ``(algo, timesteps)``; ``workers`` is None for runs on a Ray cluster;
    ``kept`` runs (from an earlier call, ``--resume``) are
    passed to :meth:`finished` with ``kept=True`` and left out of the time-left estimate. On a terminal
    (``stream.isatty()``) a tqdm bar shows the whole study and the finished runs' lines are written above it;
    otherwise every finished run's line ends with the runs done, the elapsed time and the time left, and nothing
    else is written between them.
    """

    def __init__(
        self,
        name: str,
        runs: dict[Hashable, tuple[str, int]],
        kept: int,
        workers: int | None,
        stream: TextIO | None = None,
        print_line: Callable[[str], None] = print,
    ) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.print_line = print_line
        self.weight = {key: RUN_COST.get(algo, 1.0) * steps for key, (algo, steps) in runs.items()}
        self.steps = {key: steps for key, (_, steps) in runs.items()}
        self.done = dict.fromkeys(runs, 0.0)
        self.finished_runs = 0
        self.total = sum(self.weight.values()) or 1.0
        self._kept_work = 0.0
        self.start = time.perf_counter()
        interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar = _Bar(
            total=100.0,
            file=self.stream,
            disable=not interactive,
            bar_format="{desc} {percentage:3.0f}%|{bar}| {words}",
            desc=name,
            dynamic_ncols=True,
            leave=True,
        )
        todo = len(runs) - kept
        kept_words = f", {kept} kept from an earlier call" if kept else ""
        if workers is None:
            where = "as Ray tasks"
        else:
            where = "one at a time" if workers <= 1 or todo <= 1 else f"{min(workers, todo)} at a time"
        self._say(f"{name}: {todo} run{'' if todo == 1 else 's'} to train{kept_words}, {where}")
        self._refresh()

    def advanced(self, key: Hashable, timesteps: int) -> None:
        """A run has taken ``timesteps`` of its steps (a worker's report)."""
        if key in self.done:
            self.done[key] = self.weight[key] * min(1.0, timesteps / max(self.steps[key], 1))
            self._refresh()

    def finished(self, key: Hashable, line: str, kept: bool = False) -> None:
        """A run is over (trained, failed, or ``kept`` from an earlier call): count it whole and write its line."""
        self._kept_work += self.weight[key] if kept else 0.0
        self.done[key] = self.weight[key]
        self.finished_runs += 1
        if self.bar.disable:
            line = f"{line} [{self.times()}]"
        self._say(line)
        self._refresh()

    def share_done(self) -> float:
        return sum(self.done.values()) / self.total

    def seconds_left(self) -> float | None:
        """Elapsed time times the work left over the work done in this call; None until 2 % of the work is done
        (before that, the workers' start-up weighs too much)."""
        done_here = sum(self.done.values()) - self._kept_work
        if done_here < 0.02 * self.total:
            return None
        return (time.perf_counter() - self.start) * (self.total - sum(self.done.values())) / done_here

    def times(self) -> str:
        left = self.seconds_left()
        left_words = "time left not known yet" if left is None else f"about {clock(left)} left"
        elapsed = clock(time.perf_counter() - self.start)
        return f"{self.finished_runs}/{len(self.done)} runs, {elapsed} elapsed, {left_words}"

    def close(self) -> None:
        self._refresh()
        self.bar.close()

    def _refresh(self) -> None:
        if not self.bar.disable:
            self.bar.n, self.bar.words = 100.0 * self.share_done(), self.times()
            self.bar.refresh()

    def _say(self, line: str) -> None:
        if self.bar.disable:
            self.print_line(line)
        else:
            self.bar.write(line, file=sys.stdout)


# ------------------------------------------------------------------------------------------------------------
# Executors: this process, a pool, Ray
Finish = Callable[[tuple[str, int], dict[str, Any]], None]


def execute(
    items: list[tuple[tuple[str, int], RunSpec]],
    finish: Finish,
    workers: int = 1,
    ray_address: str | None = None,
    progress: StudyProgress | None = None,
) -> None:
    """Run ``items``: as Ray tasks with ``ray_address``, in this process with one worker (or one run), else in a
    pool of ``workers`` processes. ``progress`` hears from the runs while they train (not from Ray's)."""
    if ray_address is not None:
        run_on_ray(ray_address, items, finish)
    elif workers <= 1 or len(items) <= 1:
        send = None if progress is None else (lambda message: progress.advanced(*message))
        for key, spec in items:
            finish(key, run_in_worker(spec, send, key))
    else:
        run_in_pool(workers, items, finish, progress)


RAY_CONNECT_SECONDS = 30  # how long a Ray cluster may take to answer before its address is an error


def run_in_worker(spec: RunSpec, send: Callable | None = None, key: Any = None) -> dict[str, Any]:
    """One run, its failure caught: a bad hyperparameter or a crash in one run must not stop the others. With
    ``send``, the run's progress goes there as ``(key, timesteps)`` a few times a second."""
    start = time.perf_counter()
    try:
        with one_torch_thread():  # in a worker process or, with workers=1, in the caller's (restored after)
            _, callback = train(spec, callbacks=() if send is None else (StepsReporter(send, key),))
    except Exception as error:  # reported with the run (its first line; the traceback in a file); the study goes on
        first_line = (str(error).strip().splitlines() or [""])[0]
        return {
            "error": f"{type(error).__name__}: {first_line}",
            "traceback": traceback.format_exc(),
            "seconds": time.perf_counter() - start,
        }
    history = [{**row, "p": row["p"].tolist()} for row in callback.history]
    return {"history": history, "seconds": time.perf_counter() - start, "environment": run_environment()}


def _keyed_run(item: tuple[tuple[str, int], RunSpec]) -> tuple[tuple[str, int], dict[str, Any]]:
    key, spec = item
    return key, run_in_worker(spec, progress_sender(), key)


def run_in_pool(
    workers: int,
    items: list[tuple[tuple[str, int], RunSpec]],
    finish: Finish,
    progress: StudyProgress | None,
) -> None:
    """The runs in a pool of spawned processes; outcomes handed to ``finish`` as they arrive, and the workers'
    progress messages to ``progress`` by a thread of this process."""
    check_main_is_guarded()
    context = multiprocessing.get_context("spawn")
    messages = context.Queue() if progress is not None else None
    pool = context.Pool(min(workers, len(items)), initializer=init_worker, initargs=(os.getpid(), messages))
    listening = threading.Event()
    if messages is not None:
        listening.set()
        threading.Thread(target=_relay, args=(messages, progress, listening), daemon=True, name="progress").start()
    try:
        for key, outcome in pool.imap_unordered(_keyed_run, items):
            finish(key, outcome)
        pool.close()
    except BaseException:  # Ctrl-C included: stop every worker now, keep the runs already written
        pool.terminate()
        raise
    finally:
        listening.clear()
        pool.join()


def _relay(messages: Any, progress: StudyProgress, listening: threading.Event) -> None:
    """Hand the workers' ``(key, timesteps)`` messages to ``progress`` until ``listening`` is cleared."""
    while listening.is_set():
        try:
            key, timesteps = messages.get(timeout=0.2)
        except Exception:  # queue.Empty; or the queue closed as the pool ends
            continue
        if listening.is_set():
            progress.advanced(key, timesteps)


def check_ray_address(address: str, timeout: float = 10.0) -> None:
    """A ValueError within ``timeout`` seconds if nothing listens at a Ray address (``host:port`` or
    ``ray://host:port``): ``ray.init`` itself retries an unreachable address for minutes. ``"auto"`` is left to
    Ray, which says at once when no cluster runs on this machine."""
    if address == "auto":
        return
    host, separator, port = address.removeprefix("ray://").rpartition(":")
    if not separator or not host or not port.isdigit():
        raise ValueError(f"Ray address {address}: give host:port (such as 10.0.0.5:6379), ray://host:port or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        raise ValueError(
            f"Ray address {address}: no Ray cluster answers there ({error.strerror or error}, waited at most "
            f"{timeout:g} s); start one with `ray start --head` and give the address it prints, or use auto"
        ) from None


def connect_ray(address: str) -> None:
    """Connect to the Ray cluster at ``address`` (unless Ray is already initialized): a ValueError within about
    half a minute when there is none (``check_ray_address`` first, then Ray's own attempt)."""
    try:
        import ray
    except ImportError as error:
        raise ImportError('running on Ray needs the ray extra: pip install -e ".[ray]"') from error
    if ray.is_initialized():
        return
    check_ray_address(address)
    # ray.init retries a port that accepts connections but is not Ray's for many minutes: try it first in a child
    # process that is given RAY_CONNECT_SECONDS
    probe = "import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); ray.shutdown()"
    try:
        tried = subprocess.run(
            [sys.executable, "-c", probe, address], capture_output=True, text=True, timeout=RAY_CONNECT_SECONDS
        )
    except subprocess.TimeoutExpired:
        raise ValueError(
            f"Ray address {address}: no Ray cluster answered within {RAY_CONNECT_SECONDS} s (something listens "
            "there, but not Ray's GCS server); give the address `ray start --head` printed, or auto"
        ) from None
    if tried.returncode != 0:
        last = [line for line in tried.stderr.splitlines() if line.strip()][-1:] or ["(no message)"]
        raise ValueError(f"Ray address {address}: cannot connect: {last[0]}")
    ray.init(address=address, log_to_driver=False)


def run_on_ray(address: str, items: list[tuple[tuple[str, int], RunSpec]], finish: Finish) -> None:
    """Each run a Ray task of one CPU; outcomes handed to ``finish`` as they arrive."""
    import ray

    connect_ray(address)
    remote_run = ray.remote(num_cpus=1)(_keyed_run)
    pending = [remote_run.remote(item) for item in items]
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            finish(*ray.get(ready[0]))
    except BaseException:  # Ctrl-C included: cancel what has not finished
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
