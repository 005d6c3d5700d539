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

import contextlib
import threading
from collections.abc import Callable, Iterator

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
            cond.wait_for(None, duration_s)

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 2.0,
                   what: str = "condition") -> None:
        """Wait until `predicate()` (re-checked after every step), at most `timeout_s` of
        virtual time."""
        cond = self.timebase.condition()
        with cond:
            if not cond.wait_for(predicate, timeout_s):
                raise AssertionError(f"{what} not reached within {timeout_s} s (virtual)")

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Virtual time stands still until the block ends (see `held_from`)."""
        self.timebase.count(pending=1)
        try:
            yield
        finally:
            self.timebase.count(pending=-1)

    @contextlib.contextmanager
    def held_from(self, predicate: Callable[[], bool], timeout_s: float = 2.0,
                  what: str = "condition",
                  start: Callable[[], object] | None = None) -> Iterator[None]:
        """`wait_until(predicate)`, then virtual time stands still until the block ends (the
        driver sees work in flight), so what the block does happens at the moment the
        predicate held, however long a loaded machine starves the test's thread. The hold is
        taken inside the wait, as the predicate is seen true. Nothing in the block may wait on
        virtual time: start such a call in a thread and `wall_until` a sign that it began.
        Time runs on until that first look: a thread started before it, parked on virtual time
        (a request waiting for its reply), may reach a timeout meanwhile on a starved machine.
        Where that matters and the condition needs no time to come true, start the thread
        inside `held()` instead (test_host_wire.py's E-stop test); where it needs time, pass
        `start` (e.g. `thread.start`): it is called at that first look, as this thread waits
        on the clock, so time moves only as this thread sees each step."""
        tb = self.timebase
        held: list[bool] = []
        started: list[bool] = []

        def seen_and_held() -> bool:
            if start is not None and not started:
                started.append(True)
                start()
            if not held and predicate():
                tb.count(pending=1)
                held.append(True)
            return bool(held)

        try:
            self.wait_until(seen_and_held, timeout_s, what)
            yield
        finally:
            if held:
                tb.count(pending=-1)


def wall_until(predicate: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Poll `predicate` on wall time, `timeout_s` at most (a hang guard, generous for a loaded
    machine): for a wait inside `held_from`, where virtual time stands still."""
    import time

    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout_s} s (wall)")
        time.sleep(0.001)


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
