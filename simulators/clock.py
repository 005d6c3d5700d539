"""Clocks the simulator runs on: a virtual one tests advance by hand, and the monotonic clock.

Every part of the simulator reads time through one of these, so a test of a watchdog or a
timeout advances a `VirtualClock` instead of sleeping, and runs the same every time.
"""

from __future__ import annotations

import math
import numbers
import os
import threading
import time
from collections.abc import Callable
from typing import Protocol

# Which clock a built-in simulated pen runs on when its URL does not say (pensim://?clock=...):
# "real" (the default) or "virtual" (the host that opens it advances the clock; see
# VirtualClock.host_driven). Only pensim:// pens, `smp demo` and `smp serve --port pensim://`
# read it; `smp sim` never does.
SIM_CLOCK_ENV = "SMP_SIM_CLOCK"
SIM_CLOCKS = ("real", "virtual")


def finite_seconds(name: str, value: object, negative_ok: bool = False) -> float:
    """`value` as a float of seconds, else ValueError (TypeError if no number) naming `name`,
    the value and what is allowed."""
    allowed = "a finite number of seconds" + ("" if negative_ok else " >= 0")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={value!r} is no number: give {allowed}")
    try:
        seconds = float(value)
    except OverflowError:  # an int past the float range
        seconds = math.inf
    if not math.isfinite(seconds):
        raise ValueError(f"{name}={value!r} is refused: give {allowed}")
    if seconds < 0 and not negative_ok:
        raise ValueError(f"a clock cannot go back: {name}={value!r}; give {allowed}")
    return seconds


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
    under test) sharing this clock catches up whoever advanced it. A listener may say how far
    it can follow (`until_s`, a pen's firmware counting milliseconds): a step past the nearest
    such time is refused before the clock moves, so it stays where it was.

    `host_driven`: the host that connects to this pen advances it (a controller runs a time
    driver while it is connected: `pensim://?clock=virtual`); otherwise whoever made it does.
    """

    is_virtual = True

    def __init__(self, start_s: float = 0.0, host_driven: bool = False) -> None:
        self.host_driven = bool(host_driven)
        self._now_s = finite_seconds("start_s", start_s, negative_ok=True)
        self._lock = threading.RLock()
        self._listeners: list[Callable[[float], None]] = []
        self._limits: dict[Callable[[float], None], float] = {}  # listener -> its until_s
        self._until_s = math.inf  # the nearest of them

    def now(self) -> float:
        return self._now_s

    def advance(self, dt_s: float) -> float:
        """Move time forward by `dt_s` seconds (a finite number >= 0) and run the listeners;
        returns now(). A NaN or inf would poison the clock (and every pen on it) for good. A
        listener that raises does not keep the others from this step; its error is raised
        once they have all run."""
        if not (type(dt_s) is float and 0.0 <= dt_s < math.inf):  # the hot path: a float
            dt_s = finite_seconds("dt_s", dt_s)
        failed: Exception | None = None
        with self._lock:
            now_s = self._now_s + dt_s
            if now_s == math.inf:  # two finite values can overflow: refuse, stay where it was
                raise ValueError(f"dt_s={dt_s!r} from now {self._now_s!r} s passes the largest "
                                 "finite time: give a smaller step")
            if now_s > self._until_s:  # a pen on it could not follow: it would be wedged
                raise ValueError(f"dt_s={dt_s!r} from now {self._now_s!r} s passes "
                                 f"{self._until_s!r} s, the furthest a simulated pen on this "
                                 "clock can count in milliseconds: give a smaller step")
            self._now_s = now_s
            for listener in list(self._listeners):
                try:
                    listener(now_s)
                except Exception as exc:  # the others still see this step (the pen, a host)
                    failed = failed or exc
        if failed is not None:
            raise failed
        return now_s

    def on_advance(self, listener: Callable[[float], None],
                   until_s: float | None = None) -> None:
        """`listener(now_s)` after every step; with `until_s`, a step past that time is
        refused while the listener is on (it cannot follow there)."""
        self._listeners.append(listener)
        if until_s is not None:
            self._limits[listener] = until_s
            self._until_s = min(self._limits.values())

    def remove_listener(self, listener: Callable[[float], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)
        if self._limits.pop(listener, None) is not None:
            self._until_s = min(self._limits.values(), default=math.inf)


def sim_clock(choice: str | None = None) -> VirtualClock | None:
    """The clock of a new built-in simulated pen: `choice` ("real" or "virtual"), else the
    SMP_SIM_CLOCK environment setting, else real time. None means real time; "virtual" is a
    fresh host-driven `VirtualClock`. ValueError names the bad value and the choices."""
    source = "clock"
    if choice is None:
        choice, source = os.environ.get(SIM_CLOCK_ENV) or "real", SIM_CLOCK_ENV
    value = choice.strip().lower()
    if value not in SIM_CLOCKS:
        raise ValueError(f"{source}={choice!r} is not a simulator clock: use one of "
                         f"{', '.join(SIM_CLOCKS)} (e.g. pensim://?clock=virtual)")
    return VirtualClock(host_driven=True) if value == "virtual" else None
