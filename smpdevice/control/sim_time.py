"""A built-in simulated pen on virtual time (a mixin of `PenController`).

`pensim://?clock=virtual` (or SMP_SIM_CLOCK=virtual) makes the simulator run on a virtual
clock that the host connected to it advances: the port says so with `port.host_clock` (duck
typed: smpdevice never imports simulators). The controller then adopts that clock, so every
wait of the controller, a session or a calibration is measured on it, and runs a
`VirtualTimeDriver` while connected: the clock moves a step whenever the host waits and has
caught up, so a session plays as fast as the computer computes it, and plays the same.

Only a `pensim://` port is ever asked, and only when the caller gave no clock of its own: a
real pen, a simulator over a pty or TCP, and plain `pensim://` stay on wall time.
"""

from __future__ import annotations

import weakref
from datetime import UTC, datetime, timedelta
from typing import Any

from smpdevice.control import calibration as _calibration  # its today_utc: the validity clock
from smpdevice.control.core import ControllerCore
from smpdevice.link.clock import MONOTONIC, AdvancingClock, Clock, VirtualTimeDriver, timebase_for
from smpdevice.link.notifier import QueuedNotifier

# A step of the simulated pen's clock: as fine as the real-time simulator's own tick (POLL_S)
# and twice as often as its 100 Hz reports; finer costs CPU for nothing the figures show.
SIM_STEP_S = 0.005
# A virtual clock -> the latest time a record made on it carries. Programs that take turns on
# one simulated pen (a run, a clear, a resume) date their records on from there: a virtual
# clock runs ahead of the wall, and a later program anchored on the wall alone dated its
# resume before the pass it resumed (a screening "due", a pen "restarted", review 17).
_LAST_DATED: weakref.WeakKeyDictionary[Any, datetime] = weakref.WeakKeyDictionary()


class SimTimeMixin(ControllerCore):
    """Adopting a simulated pen's host-driven clock, and driving it while connected."""

    _time_driver: VirtualTimeDriver | None = None
    _record_anchor: tuple[datetime, float] | None = None  # (wall time, clock time) on virtual
    _replayed_at: bool = False  # a replay: its recording's time, not today's (replay_at)

    def record_now(self) -> datetime:
        """The time (UTC) a record made now carries: the wall clock's; on a virtual clock, the
        wall time when this controller took that clock plus the clock's time since, so a
        pass's recorded start and end are as far apart as the pen ran it."""
        anchor = self._record_anchor
        if anchor is None:
            return datetime.now(UTC)
        wall, since_s = anchor
        dated = wall + timedelta(seconds=max(self.clock.now() - since_s, 0.0))
        if not self._replayed_at:
            try:
                if dated > _LAST_DATED.get(self.clock, dated - timedelta(seconds=1)):
                    _LAST_DATED[self.clock] = dated
            except TypeError:  # a clock that takes no weak references
                pass
        return dated

    def replay_at(self, wall: datetime) -> None:
        """A replay only (`replay://` on a virtual clock): from this moment of the clock on,
        records and the calibration's validity are timed from `wall`, the recording's own
        time, as they were live; a kept incident replay does not expire with its calibration
        (review9b R04). Nothing that drives a needle can take another time than today's."""
        from smpdevice import checks
        from smpdevice.control.states import StateError

        checks.instance("wall", wall, datetime, "a datetime with a time zone (UTC)")
        if wall.tzinfo is None or wall.utcoffset() is None:
            raise checks.InvalidArgument(
                f"wall={wall!r:.60} is refused: it has no time zone; allowed: a datetime with "
                "a time zone (UTC). Correct wall to an allowed value.")
        if not (self.clock.is_virtual and self.port_url.strip().lower().startswith("replay://")):
            raise StateError("replay_at is for a replay (a replay:// port on a virtual clock); "
                             "a pen is always judged at today's time")
        self._record_anchor, self._replayed_at = (wall, self.clock.now()), True

    def validity_now(self) -> datetime:
        """The time a calibration's expiry is judged at: now (the wall clock); in a replay,
        the recording's time (`replay_at`)."""
        return self.record_now() if self._replayed_at else _calibration.today_utc()

    def _bind_clock(self, clock: Clock) -> None:
        """Measure every wait (and queue every delivery) of this controller on `clock`."""
        self.clock = clock
        self._record_anchor = (_dated_from(clock), clock.now()) if clock.is_virtual else None
        timebase = timebase_for(clock)
        old_news = getattr(self, "_news", None)
        # notified on every telemetry frame and state change; waits on it are on self.clock
        self._news = timebase.condition()
        for name in ("telemetry_listeners", "event_listeners"):
            old = getattr(self, name, None)
            fresh: QueuedNotifier[Any] = QueuedNotifier(name.split("_")[0], timebase=timebase)
            for listener in old._listeners if old is not None else ():  # added before open()
                fresh.add(listener)
            setattr(self, name, fresh)
        if old_news is not None:
            old_news.notify_all()  # a waiter on the old clock looks again

    def _adopt_port_clock(self, port: object) -> None:
        """Just after the port opened: on a host-driven simulated pen, run on its clock."""
        if not self.port_url.strip().lower().startswith("pensim://") or self._clock_given:
            return
        clock = getattr(port, "host_clock", None)
        if not (isinstance(clock, AdvancingClock) and clock.is_virtual
                and callable(getattr(clock, "advance", None))):
            if self.clock is not MONOTONIC:  # reconnected to a real-time pen
                self._stop_time_driver()
                self._bind_clock(MONOTONIC)
            return
        if clock is not self.clock:
            self._stop_time_driver()
            self._bind_clock(clock)
        if self._time_driver is None:
            self._time_driver = VirtualTimeDriver(clock, SIM_STEP_S, name="smp-sim-time",
                                                  wall_pace=True)
            self._time_driver.start()

    def _stop_time_driver(self) -> None:
        driver, self._time_driver = self._time_driver, None
        if driver is not None:
            driver.close()


def _dated_from(clock: Clock) -> datetime:
    """Where a controller taking virtual `clock` dates its records from: now, or the latest
    time a record on that clock carried if later (`_LAST_DATED`)."""
    now = datetime.now(UTC)
    try:
        return max(now, _LAST_DATED.get(clock, now))
    except TypeError:
        return now
