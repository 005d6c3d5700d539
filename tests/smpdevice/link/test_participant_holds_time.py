"""A `Timebase.participant` thread's work between two waits takes no virtual time, however long
the machine holds it (`smp replay`'s session: on a starved machine the time driver stepped on
while it worked, so the controller's own planned-end stop fired before the session's, and the
replay reported a difference the recording never had). A participant blocked on something
other than the clock does not hang virtual time for good."""

from __future__ import annotations

import contextlib
import threading
import time

from simulators import VirtualClock
from smpdevice.link import clock as clock_module
from smpdevice.link.clock import VirtualTimeDriver, timebase_for
from tests.smpdevice.virtual_time import wall_until

STEP_S = 0.002


def _timer(timebase, due_s: float, fired: list[float]) -> threading.Thread:
    """Another host thread parked on the clock until `due_s` (a controller's timer)."""

    def run() -> None:
        cond = timebase.condition()
        with cond:
            cond.wait_for(None, due_s - timebase.clock.now())
        fired.append(timebase.clock.now())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _work_between_waits(participant: bool, work) -> tuple[float, float, list[float]]:
    """A thread (a participant or not, from before anything else moves the clock) waits
    0.01 s of virtual time, then works (`work(fired)`, on wall time), beside a timer due at
    0.02 s: the clock before and after the work, and the timer's firings seen as it ended."""
    clock = VirtualClock()
    timebase = timebase_for(clock)
    driver = VirtualTimeDriver(clock, STEP_S, name="test-time")
    fired: list[float] = []
    hold = timebase.participant() if participant else contextlib.nullcontext()
    try:
        with hold:
            driver.start()
            timer = _timer(timebase, 0.02, fired)
            cond = timebase.condition()
            with cond:
                cond.wait_for(None, 0.01)
            before_s = clock.now()
            work(fired)
            after_s = clock.now()
            fired_during = list(fired)
            with cond:
                cond.wait_for(None, 0.02)
        timer.join(10)
    finally:
        driver.close()
    return before_s, after_s, fired_during


def test_virtual_time_stands_still_while_a_participant_works(monkeypatch):
    """0.3 s of wall work (a starved thread); the driver's fallback is kept out of the way."""
    monkeypatch.setattr(clock_module, "PARTICIPANT_STUCK_S", 60.0)
    before_s, after_s, fired_during = _work_between_waits(True, lambda fired: time.sleep(0.3))
    assert after_s == before_s, f"time moved {after_s - before_s:.3f} s during the work"
    assert fired_during == [], "the timer fired while the participant worked"


def test_without_it_time_runs_on_and_the_timer_fires_first():
    """The failure the participant prevents (so the test above can fail): a thread that is
    not one sees the timer fire while it works."""
    _, after_s, fired_during = _work_between_waits(
        False, lambda fired: wall_until(lambda: bool(fired), "the timer's firing"))
    assert after_s >= 0.02
    assert fired_during and fired_during[0] >= 0.02


def test_a_participant_blocked_off_the_clock_does_not_hang_time(monkeypatch):
    """Blocked on an event that only a later moment of virtual time sets: after
    PARTICIPANT_STUCK_S of wall time the driver steps on, and the block ends."""
    monkeypatch.setattr(clock_module, "PARTICIPANT_STUCK_S", 0.2)
    clock = VirtualClock()
    timebase = timebase_for(clock)
    driver = VirtualTimeDriver(clock, STEP_S, name="test-time")
    later = threading.Event()
    fired: list[float] = []
    driver.start()
    try:
        with timebase.participant():
            timer = _timer(timebase, 0.01, fired)
            timer_set = threading.Thread(target=lambda: (timer.join(30), later.set()),
                                         daemon=True)
            timer_set.start()
            assert later.wait(30), "virtual time hung behind a blocked participant"
        assert fired and fired[0] >= 0.01
        assert timebase.busy == 0
    finally:
        driver.close()


def test_participant_counts_nest_and_are_given_back():
    clock = VirtualClock()
    timebase = timebase_for(clock)
    with timebase.participant():
        with timebase.participant():
            busy_inside = timebase.busy
        busy_after_inner = timebase.busy
    assert (busy_inside, busy_after_inner, timebase.busy) == (1, 1, 0)
