"""The host's clock: what the request engine and the controller read time from.

The same shape as the simulator's `Clock` (`simulators/clock.py`), defined here because the
simulator must stay independent of smpdevice. Any object with `now()` and `is_virtual` fits,
so a `simulators.VirtualClock` can be handed to the host as well.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Seconds as a float, monotonic."""

    @property
    def is_virtual(self) -> bool: ...

    def now(self) -> float: ...


class MonotonicClock:
    """Wall time (time.monotonic): the default."""

    is_virtual = False

    def now(self) -> float:
        return time.monotonic()


MONOTONIC = MonotonicClock()
