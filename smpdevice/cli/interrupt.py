"""Ctrl-C for the command line: one honest line and exit 130, at any moment.

Two modes. *Immediate* (the default, and at prompts): Ctrl-C raises KeyboardInterrupt at once,
because nothing has been touched yet. *Deferred* (`with CTRL_C.deferred():`, while a pen or
the records are in use): Ctrl-C only sets `requested`, and the work polls it at safe points: a
running pass stops its needle and records itself, no pass begins after it, and no Ctrl-C can
land between a record's write and its commit or inside a connection being set up. Only the
first Ctrl-C counts; more presses are ignored while the needle is stopped and the records are
closed (each step of that is bounded by a timeout), and, in the `smp` program, from the moment
its command ends: the exit status is decided then, and a key held down must not turn it into a
death by SIGINT (review 12, REVG-5).
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
        self._work = 0  # stop_signals() sections open (SIGTERM and SIGHUP taken as Ctrl-C)
        self._installed = 0
        self._closing = False  # the command is ending: no Ctrl-C raises any more
        self._owner = False  # this process is the `smp` program (smpdevice.entry)
        self._settled = False  # the session's outcome is recorded: see settle()
        self._held: dict[int, Any] = {}  # SIGTERM, SIGHUP handlers to restore, once settled
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
        if first and self._deferred == 0 and not self._closing:
            raise KeyboardInterrupt

    def settle(self) -> None:
        """The session ended and its outcome is recorded: the exit status is decided. From
        here to the command's end no stop signal raises (Ctrl-C) or kills (SIGTERM, SIGHUP,
        still taken as Ctrl-C) the command while it prints its report: it exits with the
        recorded outcome's status and a `note:` line (README, Exit status 130; review 16)."""
        self._settled = True
        self._closing = True

    def own_process(self) -> None:
        """The `smp` program: when its command ends, SIGINT is ignored instead of Python's
        handler put back (a test's process, which runs many commands, keeps its Ctrl-C)."""
        self._owner = True

    @contextlib.contextmanager
    def installed(self) -> Iterator[CtrlC]:
        """Handle SIGINT for the duration (main thread only; elsewhere Python's default)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        if self._installed == 0:
            self.requested = False
            self._closing = self._settled = False
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        self._installed += 1
        try:
            yield self
        finally:
            self._installed -= 1
            if self._installed == 0:
                if self._owner:  # the exit status is decided: Ctrl-C changes nothing now
                    self._closing = True
                    signal.signal(signal.SIGINT, signal.SIG_IGN)
                else:
                    signal.signal(signal.SIGINT, self._previous)
                    self._closing = self._settled = False
                # (the `smp` program keeps SIGTERM, SIGHUP taken as a Ctrl-C that changes
                # nothing: a settled command's report is never cut by them)
                held, self._held = self._held, {}
                if not self._owner:
                    for signum, previous in held.items():
                        signal.signal(signum, previous)

    @contextlib.contextmanager
    def command(self) -> Iterator[None]:
        """A whole command: installed and deferred (its `invoke` answers Ctrl-C at once), and,
        as it ends, not one Ctrl-C may raise: the exit status is being decided."""
        with self.installed():
            self._deferred += 1
            try:
                yield
            finally:
                self._closing = True  # before the deferral ends: no gap where Ctrl-C raises
                self._deferred -= 1

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """While a pen or the records are in use: Ctrl-C (and SIGTERM, SIGHUP: `stop_signals`)
        stops the work at its next safe point."""
        with self.stop_signals():
            self._deferred += 1
            try:
                yield
            finally:
                self._deferred -= 1

    @contextlib.contextmanager
    def stop_signals(self) -> Iterator[None]:
        """SIGTERM (a service manager's stop) and SIGHUP (the terminal closed) taken as Ctrl-C
        for the duration (main thread only): a session stops its needle and records what ran,
        rather than the process dying with its pass open (its pen would stop by its lease, the
        pass recovered as crashed)."""
        taken = {}
        if self._work == 0 and threading.current_thread() is threading.main_thread():
            taken = {s: signal.signal(s, self._on_sigint) for s in (signal.SIGTERM,
                                                                   signal.SIGHUP)}
        self._work += 1
        try:
            yield
        finally:
            self._work -= 1
            # held until the command ends: settled (settle()), or stopping already (a second
            # SIGTERM or SIGHUP, as systemd sends, changes nothing; review 16c)
            if (self._settled or self.requested) and self._installed:
                for signum, previous in taken.items():
                    self._held.setdefault(signum, previous)
            else:
                for signum, previous in taken.items():
                    signal.signal(signum, previous)

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
