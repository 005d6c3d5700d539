"""Virtual time for host tests: the simulator's `VirtualClock`, shared with the host.

smpdevice never imports simulators and simulators never import smpdevice; they meet here. The
simulator's clock already has the host `Clock` shape (`now()`, `is_virtual`, `on_advance`), so
it is handed to `PenController(clock=...)` as it is. What the tests add is the driver: a thread
that advances the clock by `step_s` whenever somebody on the host waits for time to pass and
the host has caught up with the last step (no engine work queued, no woken waiter that has not
looked yet: `Timebase.quiet()`). So a test calls the blocking API as a script would
(`pen.start_needle()`, `pen.wait_for_state(...)`), every timeout is measured in virtual time,
and a loaded machine only makes the test slower, never different.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from simulators.clock import VirtualClock
from smpdevice.link.clock import Clock, VirtualTimeDriver

STEP_S = 0.002  # the firmware ticks every 1 ms and reports every 10 ms (100 Hz)


class TimeDriver(VirtualTimeDriver):
    """Advances `clock` while the host waits on it (see the module's docstring)."""

    def __init__(self, clock: VirtualClock, step_s: float = STEP_S) -> None:
        super().__init__(clock, step_s)

    def __enter__(self) -> TimeDriver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- what a test calls

    def sleep(self, duration_s: float) -> None:
        """Let `duration_s` of virtual time pass (the host keeps running meanwhile)."""
        cond = self.timebase.condition()
        with cond:
            cond.wait_for(lambda: False, duration_s)

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 2.0,
                   what: str = "condition") -> None:
        """Wait until `predicate()` (re-checked after every step), at most `timeout_s` of
        virtual time."""
        cond = self.timebase.condition()
        with cond:
            if not cond.wait_for(predicate, timeout_s):
                raise AssertionError(f"{what} not reached within {timeout_s} s (virtual)")


def elapsed(clock: Clock, since_s: float) -> float:
    """Virtual seconds since `since_s`."""
    return clock.now() - since_s


class virtual_sim:
    """A `PenSimulator` on a fresh `VirtualClock` with its driver as `sim.time`, booted."""

    def __init__(self, step_s: float = STEP_S, **kwargs: object) -> None:
        from simulators import PenSimulator

        self.clock = VirtualClock()
        self.sim = PenSimulator(clock=self.clock, **kwargs)  # type: ignore[arg-type]
        self.driver = TimeDriver(self.clock, step_s)

    def __enter__(self):  # -> PenSimulator
        self.sim.advance(0.06)
        self.sim.time = self.driver  # type: ignore[attr-defined]
        self.driver.__enter__()
        return self.sim

    def __exit__(self, *exc: object) -> None:
        self.driver.close()
        self.sim.close()


def wait_until(sim: object, predicate: Callable[[], bool], timeout_s: float = 2.0) -> None:
    """On a virtual sim: `sim.time.wait_until`; on a real-time one (pty, TCP): poll wall time."""
    driver = getattr(sim, "time", None)
    if driver is not None:
        driver.wait_until(predicate, timeout_s)
        return
    import time

    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.002)


def after(clock: VirtualClock, delay_s: float, action: Callable[[], object],
          in_thread: bool = False) -> None:
    """Run `action` once `delay_s` of virtual time has passed (threading.Timer on the clock).
    In the advancing thread (keep it short: no waits), or in a new thread with `in_thread`
    (for an action that waits, such as `pen.estop`)."""
    due_s = clock.now() + delay_s

    def check(now_s: float) -> None:
        if now_s + 1e-9 >= due_s:
            clock.remove_listener(check)
            if in_thread:
                threading.Thread(target=action, daemon=True).start()
            else:
                action()

    clock.on_advance(check)
