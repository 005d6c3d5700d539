"""The host's clock, and every wait the host makes measured on it.

`Clock` has the same shape as the simulator's (`simulators/clock.py`), defined here because the
simulator must stay independent of smpdevice: any object with `now()` and `is_virtual` fits, so
a `simulators.VirtualClock` can be handed to the host as it is. A virtual clock that also has
`on_advance(listener)` / `remove_listener(listener)` (an `AdvancingClock`) wakes the host's
waits when it moves, so the controller, sessions and calibration run on virtual time in tests.

Every wait in `link/` and `control/` is a `TimedCondition.wait_for` with a deadline computed
on the clock: on a wall clock a plain `threading.Condition` wait, on a virtual one a wait that
ends when the predicate holds or virtual time passes the deadline. The `Timebase` of a virtual
clock also counts what is in flight (engine work, woken waiters), so a test's time driver can
advance only once the host has caught up (see tests/smpdevice/virtual_time.py).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

# A virtual wait never blocks forever on wall time: with nobody advancing the clock it gives up
# after this long (a hung test fails instead of hanging the suite).
WALL_GUARD_S = 120.0
# A wall-paced driver (VirtualTimeDriver(wall_pace=True)) looks this often whether nobody waits
# on the clock, and then moves it by the wall time since its last move, at most this much at
# once (a stalled process catches up in steps the host can follow, renewing its lease).
WALL_PACE_POLL_S = 0.005
WALL_PACE_MAX_S = 0.02
WALL_PACE_STUCK_S = 0.5  # host work in flight this long (wall): it hangs; time goes on


@runtime_checkable
class Clock(Protocol):
    """Seconds as a float, monotonic."""

    @property
    def is_virtual(self) -> bool: ...

    def now(self) -> float: ...


@runtime_checkable
class AdvancingClock(Clock, Protocol):
    """A virtual clock that says when it moves (the simulator's `VirtualClock` is one)."""

    def on_advance(self, listener: Callable[[float], None]) -> None: ...

    def remove_listener(self, listener: Callable[[float], None]) -> None: ...


class MonotonicClock:
    """Wall time (time.monotonic): the default."""

    is_virtual = False

    def now(self) -> float:
        return time.monotonic()


MONOTONIC = MonotonicClock()


def now_function(clock: Clock) -> Callable[[], float]:
    """`clock.now`, or `time.monotonic` itself for wall time (one Python frame less, on every
    one of the ten readings of a request's path)."""
    return time.monotonic if type(clock) is MonotonicClock else clock.now


class Timebase:
    """The waits of every host object on one clock.

    On a virtual clock it keeps three counts the time driver reads (under `activity`):
    `parked` threads wait for time to pass, `runnable` ones were woken and have not yet looked,
    `pending` work items are queued in an engine. Time may move when `quiet()`.
    """

    def __init__(self, clock: Clock) -> None:
        # Weakly held: the registry's entry must not keep its own key (the clock) alive.
        try:
            ref: Callable[[], Clock | None] = weakref.ref(clock)
        except TypeError:
            ref = lambda: clock  # noqa: E731
        self._clock = ref
        self.virtual = bool(clock.is_virtual) and isinstance(clock, AdvancingClock)
        self.activity = threading.Condition()
        self.parked = 0
        self.runnable = 0
        self.pending = 0
        self._conditions: weakref.WeakSet[TimedCondition] = weakref.WeakSet()
        self._on_advance: list[Callable[[float], None]] = []
        if self.virtual:
            clock.on_advance(self._advanced)  # type: ignore[attr-defined]

    @property
    def clock(self) -> Clock:
        clock = self._clock()
        if clock is None:
            raise RuntimeError("the clock of this timebase is gone")
        return clock

    def condition(self, lock: threading.Lock | threading.RLock | None = None) -> TimedCondition:
        cond = TimedCondition(self, lock)
        if self.virtual:
            self._conditions.add(cond)
        return cond

    def add_advance_hook(self, hook: Callable[[float], None]) -> None:
        """Call `hook(now_s)` after every advance of a virtual clock (in the advancing thread)."""
        self._on_advance.append(hook)

    def remove_advance_hook(self, hook: Callable[[float], None]) -> None:
        if hook in self._on_advance:
            self._on_advance.remove(hook)

    def _advanced(self, now_s: float) -> None:
        for hook in list(self._on_advance):
            hook(now_s)
        for cond in list(self._conditions):
            cond.notify_all()  # deadlines may have passed

    # ---- accounting (virtual clocks only; the callers check `virtual`)

    def count(self, parked: int = 0, runnable: int = 0, pending: int = 0) -> None:
        with self.activity:
            self.parked += parked
            self.runnable += runnable
            self.pending += pending
            self.activity.notify_all()

    def quiet(self) -> bool:
        """Nothing in flight, and somebody waits for time to pass."""
        return self.pending == 0 and self.runnable == 0 and self.parked > 0


class _Parked:
    __slots__ = ("woken",)

    def __init__(self) -> None:
        self.woken = False


class TimedCondition:
    """A `threading.Condition` whose timeouts are measured on a `Timebase`'s clock."""

    def __init__(self, timebase: Timebase,
                 lock: threading.Lock | threading.RLock | None = None) -> None:
        self.timebase = timebase
        lock = threading.RLock() if lock is None else lock  # what Condition() would make
        self._cond = threading.Condition(lock)
        self._lock_enter, self._lock_exit = lock.__enter__, lock.__exit__  # one frame less
        self._parked: list[_Parked] = []
        self._waiting = 0  # threads inside `wait_for` (counted under the lock)

    def __enter__(self) -> bool:
        return self._lock_enter()

    def __exit__(self, *exc: Any) -> None:
        self._lock_exit(*exc)

    def notify_all(self) -> None:
        """Wake every waiter (call it holding the lock, or not: it takes the lock itself)."""
        with self._cond:
            if self._parked:
                woken = 0
                for p in self._parked:
                    if not p.woken:
                        p.woken = True
                        woken += 1
                if woken:
                    self.timebase.count(parked=-woken, runnable=woken)
            self._cond.notify_all()

    def notify_waiting(self) -> None:
        """`notify_all`, skipped (no lock taken) when no thread waits: call it after making
        the predicate true. A waiter counts itself under the lock before it checks the
        predicate, so it either sees the change or is counted here."""
        if self._waiting or self.timebase.virtual:
            self.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float | None) -> bool:
        """Wait (holding the lock) until `predicate()` or `timeout_s` of clock time; returns
        the predicate's last value. `None` waits without a deadline."""
        tb = self.timebase
        if not tb.virtual:
            self._waiting += 1
            try:
                return self._cond.wait_for(predicate, timeout=timeout_s)
            finally:
                self._waiting -= 1
        clock = tb.clock
        deadline = None if timeout_s is None else clock.now() + timeout_s
        guard_end = time.monotonic() + WALL_GUARD_S
        while True:
            if predicate():
                return True
            if (deadline is not None and clock.now() >= deadline) or time.monotonic() > guard_end:
                return False
            parked = _Parked()
            self._parked.append(parked)
            tb.count(parked=1)
            try:
                self._cond.wait(WALL_GUARD_S)
            finally:
                self._parked.remove(parked)
                if parked.woken:
                    tb.count(runnable=-1)
                else:
                    tb.count(parked=-1)


_TIMEBASES: weakref.WeakKeyDictionary[object, Timebase] = weakref.WeakKeyDictionary()
_TIMEBASES_LOCK = threading.Lock()


def timebase_for(clock: Clock) -> Timebase:
    """The one `Timebase` of `clock` (shared by every controller, link and engine on it)."""
    with _TIMEBASES_LOCK:
        try:
            tb = _TIMEBASES.get(clock)
        except TypeError:  # a clock that takes no weak references: a private timebase
            return Timebase(clock)
        if tb is None:
            tb = _TIMEBASES[clock] = Timebase(clock)
        return tb


class VirtualTimeDriver:
    """Advances a virtual clock by `step_s` whenever the host waits on it and has caught up
    (no engine work queued, no woken waiter that has not looked yet: `Timebase.quiet()`), so
    blocking host code runs on virtual time as a script would. Used by `smp replay`, a
    controller on `pensim://?clock=virtual`, and the tests.

    With `wall_pace`, time also moves while nobody waits on the clock and nothing is in flight
    (a host thread sleeping on wall time, reading a terminal, computing), and while the host
    has not caught up for WALL_PACE_STUCK_S (a hung loop, a listener that never returns): then
    at the wall clock's pace. So virtual time never stands still for long, a program that
    polls on wall time sees the pen live, and a hung host lets the pen's lease lapse, as on
    a real-time simulator."""

    def __init__(self, clock: Any, step_s: float, name: str = "virtual-time",
                 wall_pace: bool = False) -> None:
        self.clock = clock  # advance(step_s) moves it: the simulator's VirtualClock
        self.step_s = step_s
        self.wall_pace = wall_pace
        self.timebase = timebase_for(clock)
        self.steps = 0
        self.failures = 0  # advances during which a listener of the clock raised
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        tb = self.timebase
        with tb.activity:
            self._stop = True
            tb.activity.notify_all()
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        tb = self.timebase
        poll_s = max(self.step_s, WALL_PACE_POLL_S) if self.wall_pace else 1.0
        last_wall_s = caught_up_s = time.monotonic()  # the last advance; the host last quiet
        while True:
            with tb.activity:
                tb.activity.wait_for(lambda: self._stop or tb.quiet(), timeout=poll_s)
                if self._stop:
                    return
                quiet = tb.quiet()
                idle = tb.pending == 0 and tb.runnable == 0 and tb.parked == 0
            wall_s = time.monotonic()
            if quiet or idle:
                caught_up_s = wall_s
            lag_s = wall_s - last_wall_s
            if quiet:
                dt_s = self.step_s
            elif (self.wall_pace and lag_s >= poll_s
                  and (idle or wall_s - caught_up_s >= WALL_PACE_STUCK_S)):
                dt_s = min(lag_s, WALL_PACE_MAX_S)  # keep up with the wall
            else:
                continue
            try:
                self.clock.advance(dt_s)
            except Exception:  # a listener broke (the pen's model, a host hook): time goes
                self._listener_failed()  # on, or every lease on this clock would stand still
            self.steps += 1
            last_wall_s = wall_s

    def _listener_failed(self) -> None:
        import structlog  # only here: this module is on every command's import path

        self.failures += 1
        if self.failures == 1 or self.failures % 1000 == 0:
            structlog.get_logger("smpdevice.link").exception(
                "virtual time: a listener of the clock failed; time goes on",
                failures=self.failures)
