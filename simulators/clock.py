"""Clocks the simulator runs on: a virtual one tests advance by hand, and the monotonic clock.

Every part of the simulator reads time through one of these, so a test of a watchdog or a
timeout advances a `VirtualClock` instead of sleeping, and runs the same every time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """What the simulator needs of a clock: seconds as a float, monotonic."""

    @property
    def is_virtual(self) -> bool: ...

    def now(self) -> float: ...


class RealClock:
    """Wall time (time.monotonic)."""

    is_virtual = False

    def now(self) -> float:
        return time.monotonic()


class VirtualClock:
    """Time that only moves when `advance` is called.

    Listeners registered with `on_advance` run after every advance, so a simulator (or a host
    under test) sharing this clock catches up whoever advanced it.
    """

    is_virtual = True

    def __init__(self, start_s: float = 0.0) -> None:
        self._now_s = float(start_s)
        self._lock = threading.RLock()
        self._listeners: list[Callable[[float], None]] = []

    def now(self) -> float:
        return self._now_s

    def advance(self, dt_s: float) -> float:
        """Move time forward by `dt_s` seconds (>= 0) and run the listeners; returns now()."""
        if dt_s < 0:
            raise ValueError(f"a clock cannot go back: dt_s={dt_s}")
        with self._lock:
            self._now_s += dt_s
            now_s = self._now_s
            for listener in list(self._listeners):
                listener(now_s)
        return now_s

    def on_advance(self, listener: Callable[[float], None]) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[float], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)
