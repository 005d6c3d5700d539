"""One fan-out type for every listener list (telemetry, pen events, state changes, frames).

A listener that raises is logged and skipped: one broken display never silences the others,
and never kills the thread that delivers (the reader, the controller loop).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, ParamSpec

import structlog

P = ParamSpec("P")
log = structlog.get_logger("smpdevice.link")


class Notifier(Generic[P]):
    """Listeners called in order with the same arguments; safe to change from any thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._listeners: tuple[Callable[P, object], ...] = ()
        self._lock = threading.Lock()

    def add(self, listener: Callable[P, object]) -> None:
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def remove(self, listener: Callable[P, object]) -> None:
        with self._lock:
            items = list(self._listeners)
            if listener in items:
                items.remove(listener)
            self._listeners = tuple(items)

    def __len__(self) -> int:
        return len(self._listeners)

    def notify(self, *args: P.args, **kwargs: P.kwargs) -> None:
        for listener in self._listeners:  # a snapshot: listeners may come and go meanwhile
            try:
                listener(*args, **kwargs)
            except Exception:
                log.exception(f"{self.name} listener failed", listener=repr(listener))
