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

import contextlib
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterator
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
# A `Timebase.participant` thread busy this long (wall) between two waits is taken to wait on
# something other than the clock (a lock, the wall): time goes on rather than hang for good.
PARTICIPANT_STUCK_S = 2.0
BUSY_POLL_S = 0.05  # how often the driver looks meanwhile


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

    On a virtual clock it keeps four counts the time driver reads (under `activity`):
    `parked` threads wait for time to pass, `runnable` ones were woken and have not yet looked,
    `pending` work items are queued in an engine, `busy` participant threads work between two
    waits (`participant`). Time may move when `quiet()`.
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
        self.busy = 0
        self._participant = threading.local()  # .depth: this thread's `participant` blocks
        # The conditions a thread is inside `wait_for` of (on a virtual clock): an advance
        # wakes those, not every condition ever made (most have nobody waiting).
        self._watched: dict[TimedCondition, None] = {}
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
        return TimedCondition(self, lock)

    def add_advance_hook(self, hook: Callable[[float], None]) -> None:
        """Call `hook(now_s)` after every advance of a virtual clock (in the advancing thread)."""
        self._on_advance.append(hook)

    def remove_advance_hook(self, hook: Callable[[float], None]) -> None:
        if hook in self._on_advance:
            self._on_advance.remove(hook)

    def _advanced(self, now_s: float) -> None:
        for hook in list(self._on_advance):
            hook(now_s)
        for cond in list(self._watched):
            cond._advanced(now_s)  # predicates may hold now, deadlines may have passed

    @contextlib.contextmanager
    def participant(self) -> Iterator[None]:
        """This thread's work between two waits on this timebase is work in flight: time
        stands still until it waits again, as if its computing took no time (`smp replay`'s
        session: a starved thread must not let the controller's own timers fire first).
        Past PARTICIPANT_STUCK_S of wall time busy, the driver steps on anyway."""
        if not self.virtual:
            yield
            return
        local = self._participant
        depth = getattr(local, "depth", 0)
        local.depth = depth + 1
        if depth == 0:
            self.count(busy=1)
        try:
            yield
        finally:
            local.depth = depth
            if depth == 0:
                self.count(busy=-1)

    def _busy_share(self) -> int:
        """1 if this thread is a participant (its waits hand its `busy` count over)."""
        return 1 if getattr(self._participant, "depth", 0) else 0

    # ---- accounting (virtual clocks only; the callers check `virtual`)

    def count(self, parked: int = 0, runnable: int = 0, pending: int = 0,
              busy: int = 0) -> None:
        with self.activity:
            self.parked += parked
            self.runnable += runnable
            self.pending += pending
            self.busy += busy
            # Only the time driver waits on `activity`, and only for quiet() (or its own
            # stop, which close() notifies): a wake for any other count was a context switch
            # for nothing (Condition.wait_for sleeps again until its predicate holds).
            if self.quiet():
                self.activity.notify_all()

    def quiet(self) -> bool:
        """Nothing in flight, and somebody waits for time to pass."""
        return (self.pending == 0 and self.runnable == 0 and self.busy == 0
                and self.parked > 0)


class _Parked:
    __slots__ = ("until_s", "woken")

    def __init__(self, until_s: float | None = None) -> None:
        self.woken = False
        self.until_s = until_s  # a sleeper's deadline: only an advance past it wakes it


class TimedCondition:
    """A `threading.Condition` whose timeouts are measured on a `Timebase`'s clock."""

    def __init__(self, timebase: Timebase,
                 lock: threading.Lock | threading.RLock | None = None) -> None:
        self.timebase = timebase
        lock = threading.RLock() if lock is None else lock  # what Condition() would make
        self._cond = threading.Condition(lock)
        self._lock_enter, self._lock_exit = lock.__enter__, lock.__exit__  # one frame less
        self._waiting = 0  # threads inside `wait_for` with a predicate (counted under the lock)
        self._inside = 0  # every thread inside `wait_for` on a virtual clock (the same)
        # Virtual clock: parked waiters by what wakes them (see wait_for), each kind on a
        # condition of its own, so that a wake for one kind leaves the others asleep.
        self._parked: list[_Parked] = []  # a notify, and every advance
        self._sleep = threading.Condition(lock)
        self._sleepers: list[_Parked] = []  # the advance to their deadline alone

    def __enter__(self) -> bool:
        return self._lock_enter()

    def __exit__(self, *exc: Any) -> None:
        self._lock_exit(*exc)

    def notify_all(self) -> None:
        """Wake every waiter (call it holding the lock, or not: it takes the lock itself)."""
        with self._cond:
            if self._parked:
                self._wake(self._parked, None)
            if self._waiting:  # every waiter is counted (under the lock) while inside wait_for
                self._cond.notify_all()

    def _advanced(self, now_s: float) -> None:
        """The virtual clock moved to `now_s`: the predicates may hold now, deadlines passed."""
        with self._cond:
            if self._parked:
                self._wake(self._parked, None)
            if self._waiting:
                self._cond.notify_all()
            if self._sleepers and self._wake(self._sleepers, now_s):
                self._sleep.notify_all()

    def _wake(self, parked: list[_Parked], now_s: float | None) -> int:
        woken = 0
        for p in parked:
            if not p.woken and (now_s is None or p.until_s is None or now_s >= p.until_s):
                p.woken = True
                woken += 1
        if woken:
            self.timebase.count(parked=-woken, runnable=woken)
        return woken

    def notify_waiting(self) -> None:
        """`notify_all`, skipped (no lock taken) when no thread waits: call it after making
        the predicate true. A waiter counts itself under the lock before it checks the
        predicate, so it either sees the change or is counted here."""
        if self._waiting:
            self.notify_all()

    def wait_for(self, predicate: Callable[[], bool] | None, timeout_s: float | None) -> bool:
        """Wait (holding the lock) until `predicate()` or `timeout_s` of clock time; returns
        the predicate's last value. `timeout_s` None waits without a deadline. On a virtual
        clock the predicate is looked at again after every advance. A `predicate` of None
        waits for the deadline alone, woken by nothing before it: the time driver then steps
        on without a hand-off. It steps on while no counted thread is runnable, so a thread
        that is not counted (one started beside the wait, a thread waiting on the wall clock)
        sees virtual time run far ahead: a test holds such a thread (virtual_time.held())."""
        tb = self.timebase
        never = predicate is None
        if not tb.virtual:
            self._waiting += 1
            try:
                return self._cond.wait_for(_false if never else predicate,  # type: ignore[arg-type]
                                           timeout=timeout_s)
            finally:
                self._waiting -= 1
        clock = tb.clock
        deadline = None if timeout_s is None else clock.now() + timeout_s
        guard_end = time.monotonic() + WALL_GUARD_S
        # Watched before the first look at the predicate and the clock: an advance either
        # finds this condition to wake, or moved the clock (and ran its hooks) before the look.
        self._inside += 1
        if self._inside == 1:
            tb._watched[self] = None
        if never:
            cond, parked_list = self._sleep, self._sleepers
        else:
            self._waiting += 1
            cond, parked_list = self._cond, self._parked
        until_s = (math.inf if deadline is None else deadline) if never else None
        busy = tb._busy_share()  # a participant is busy again the moment it stops waiting
        try:
            while True:
                if not never and predicate():  # type: ignore[misc]
                    return True
                if (deadline is not None and clock.now() >= deadline) \
                        or time.monotonic() > guard_end:
                    return False
                parked = _Parked(until_s)
                parked_list.append(parked)
                tb.count(parked=1, busy=-busy)
                try:
                    cond.wait(WALL_GUARD_S)
                finally:
                    parked_list.remove(parked)
                    if parked.woken:
                        tb.count(runnable=-1, busy=busy)
                    else:
                        tb.count(parked=-1, busy=busy)
        finally:
            if not never:
                self._waiting -= 1
            self._inside -= 1
            if not self._inside:
                tb._watched.pop(self, None)


def _false() -> bool:
    return False


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
        go_on = lambda: self._stop or tb.quiet()  # noqa: E731
        while True:
            with tb.activity:
                if not go_on():  # (the common case on a quiet host: no wait at all)
                    tb.activity.wait_for(go_on, timeout=min(poll_s, BUSY_POLL_S)
                                         if tb.busy else poll_s)
                if self._stop:
                    return
                quiet = tb.quiet()
                idle = tb.pending == 0 and tb.runnable == 0 and tb.parked == 0
                held = tb.busy > 0 and tb.pending == 0 and tb.runnable == 0
            wall_s = time.monotonic()
            if quiet or idle:
                caught_up_s = wall_s
            lag_s = wall_s - last_wall_s
            if quiet or (held and wall_s - caught_up_s >= PARTICIPANT_STUCK_S):
                dt_s = self.step_s
            elif (self.wall_pace and lag_s >= poll_s
                  and (idle or wall_s - caught_up_s >= WALL_PACE_STUCK_S)):
                # Keep up with the wall in whole steps: the clock stays on its step grid, so
                # what the pen writes at a step's end is read then, not a part-step later, and
                # a recording's pen times are exact (smp replay --into-sim aligns on them).
                dt_s = max(1, int(min(lag_s, WALL_PACE_MAX_S) / self.step_s)) * self.step_s
                wall_s -= max(0.0, min(lag_s, WALL_PACE_MAX_S) - dt_s)  # the rest: next time
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
