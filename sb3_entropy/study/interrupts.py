"""Ctrl-C that stops an agent's training at once, but never a write to a tuning storage half-way.

A sequential tuning run trains in the main process, between Optuna's writes of each trial to its storage (the new
trial, the sampled values, each pruning report, the result). A KeyboardInterrupt raised inside one of those writes
can leave the trial marked running for ever, or break Optuna's own bookkeeping (it then fails with an
UnboundLocalError instead of the interruption). ``CtrlC`` lets Ctrl-C stop only what is marked safe to stop (the
training) and holds it everywhere else until the next safe point, where it is raised.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["CtrlC"]


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
