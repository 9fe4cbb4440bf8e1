"""Where a study's runs run: in this process, in a pool of spawned worker processes, or as Ray tasks on a cluster.

Each executor takes the runs as ``(key, RunSpec)`` items and hands every outcome to ``finish(key, outcome)`` as it
arrives (a history, or the error and traceback of a run that failed: one failing run does not stop the others).
:func:`execute` picks one; the results are the same wherever the runs ran, since each run is seeded on its own.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from sb3_entropy.study.progress import StepsReporter, StudyProgress
from sb3_entropy.study.provenance import run_environment
from sb3_entropy.study.runs import RunSpec, one_torch_thread, train
from sb3_entropy.study.workers import check_main_is_guarded, init_worker, progress_sender

__all__ = [
    "RAY_CONNECT_SECONDS",
    "check_ray_address",
    "connect_ray",
    "execute",
    "run_in_pool",
    "run_in_worker",
    "run_on_ray",
]

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
