"""Ctrl-C for the command line: one honest line and exit 130, at any moment.

Two modes. *Immediate* (the default, and at prompts): Ctrl-C raises KeyboardInterrupt at once,
because nothing has been touched yet. *Deferred* (`with CTRL_C.deferred():`, while a pen or
the records are in use): Ctrl-C only sets `requested`, and the work polls it at safe points: a
running pass stops its needle and records itself, no pass begins after it, and no Ctrl-C can
land between a record's write and its commit or inside a connection being set up. Only the
first Ctrl-C counts; more presses are ignored while the needle is stopped and the records are
closed (each step of that is bounded by a timeout).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any


class Interrupted(Exception):  # a request to stop, not an error
    """Raised at a safe point after Ctrl-C was pressed in a deferred section."""


class CtrlC:
    def __init__(self) -> None:
        self.requested = False
        self._deferred = 0
        self._installed = 0
        # what signal.signal() returned, restored when the last user leaves
        self._previous: Callable[[int, FrameType | None], Any] | int | signal.Handlers | None = None

    def is_requested(self) -> bool:
        """For `TreatmentSession.play(should_stop=...)`."""
        return self.requested

    def check(self) -> None:
        """A safe point: raise Interrupted if Ctrl-C was pressed."""
        if self.requested:
            raise Interrupted

    def _on_sigint(self, _signum, _frame) -> None:
        first = not self.requested
        self.requested = True
        if first and self._deferred == 0:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self) -> Iterator[CtrlC]:
        """Handle SIGINT for the duration (main thread only; elsewhere Python's default)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        if self._installed == 0:
            self.requested = False
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        self._installed += 1
        try:
            yield self
        finally:
            self._installed -= 1
            if self._installed == 0:
                signal.signal(signal.SIGINT, self._previous)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self._deferred += 1
        try:
            yield
        finally:
            self._deferred -= 1

    @contextlib.contextmanager
    def immediate(self) -> Iterator[None]:
        """At a prompt inside a deferred section: Ctrl-C must interrupt the waiting at once."""
        saved, self._deferred = self._deferred, 0
        try:
            if self.requested:
                raise KeyboardInterrupt
            yield
        finally:
            self._deferred = saved


CTRL_C = CtrlC()
