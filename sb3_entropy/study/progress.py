"""A study's progress across its runs: one bar on a terminal, plain lines elsewhere (CI logs, nohup).

Each run counts for its steps times its agent's measured cost (``RUN_COST``), so the share done and the time left
follow the work, not the number of runs: a TRPO run is five DQN runs. Workers send ``(key, timesteps)`` a few
times a second while they train (:class:`StepsReporter`); finished runs are counted whole.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Hashable
from typing import Any, TextIO

from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm

__all__ = ["RUN_COST", "StepsReporter", "StudyProgress", "clock"]

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
