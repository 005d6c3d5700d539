"""A speed check's own stop (`SpinCancel`) and its end by a stop (`SpinStopped`): apart from
calibrating.py, which re-exports both."""

from __future__ import annotations

import threading
from collections.abc import Callable

from smpdevice.errors import SmpError


class SpinStopped(SmpError):
    """A speed check (calibration_spin) ended early by a stop of the needle: nothing measured."""

    part_sent = False  # refused at a later step than its first: the pen may be armed


class SpinCancel:
    """One speed check's own stop (`calibration_spin(..., cancel=)`): `set()`, from any thread,
    ends that spin (or refuses it before it starts) and never another (`stop_spin()` stops
    whichever spin runs)."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self._event = threading.Event()
        self._wake = wake

    def set(self) -> None:
        self._event.set()
        self._wake()  # the spin waits on the controller's news: it hears of it now

    def is_set(self) -> bool:
        return self._event.is_set()
