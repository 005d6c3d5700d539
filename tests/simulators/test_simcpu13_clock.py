"""Waits on a virtual clock: who an advance wakes, and who it leaves asleep (session 13).

A wait for a deadline alone (predicate None) is woken by the first advance that
reaches its deadline and by nothing before it: not by earlier steps, not by a notify. A wait
with a predicate is still re-checked after every step, notified or not. And a reader of the
simulated pen is woken when the pen writes, though the simulator only notifies when someone
reads.
"""

from __future__ import annotations

import threading
import time

from simulators import PenSimulator, VirtualClock
from smpdevice.link.clock import VirtualTimeDriver, timebase_for

STEP_S = 0.001


def _settled(tb, parked: int) -> None:
    """Wait (on the timebase's own condition) until `parked` threads wait for time."""
    with tb.activity:
        assert tb.activity.wait_for(lambda: tb.parked == parked and tb.runnable == 0, 30.0)


def _in_thread(fn) -> tuple[threading.Thread, list]:
    result: list = []
    thread = threading.Thread(target=lambda: result.append((fn(), clock_now[0]())), daemon=True)
    thread.start()
    return thread, result


clock_now: list = [time.monotonic]


def test_a_deadline_alone_sleeps_through_earlier_steps_and_notifies():
    clock = VirtualClock()
    tb = timebase_for(clock)
    cond = tb.condition()
    clock_now[0] = clock.now

    def sleep() -> bool:
        with cond:
            return cond.wait_for(None, 0.0105)

    thread, result = _in_thread(sleep)
    _settled(tb, parked=1)
    for _ in range(10):  # 10 ms: short of the deadline
        clock.advance(STEP_S)
        cond.notify_all()
        assert (tb.parked, tb.runnable) == (1, 0)  # not woken: nothing to hand off
    assert thread.is_alive()
    clock.advance(STEP_S)  # 11 ms: past it
    thread.join(30.0)
    assert result and result[0][0] is False
    assert abs(result[0][1] - 0.011) < 1e-9  # woken at the first step past the deadline
    assert (tb.parked, tb.runnable) == (0, 0)


def test_a_predicate_is_looked_at_after_every_step_though_nobody_notifies():
    clock = VirtualClock()
    tb = timebase_for(clock)
    cond = tb.condition()
    clock_now[0] = clock.now
    box = {"done": False}

    def wait() -> bool:
        with cond:
            return cond.wait_for(lambda: box["done"], 1.0)

    thread, result = _in_thread(wait)
    for step in range(1, 5):
        _settled(tb, parked=1)
        if step == 4:
            box["done"] = True  # no notify: only the step makes it look
        clock.advance(STEP_S)
    thread.join(30.0)
    assert result and result[0][0] is True
    assert abs(result[0][1] - 0.004) < 1e-9  # it looked at the step after the change


def test_a_sleeping_host_lets_the_driver_step_to_its_deadline_and_wakes_once():
    clock = VirtualClock()
    driver = VirtualTimeDriver(clock, 0.002)
    cond = driver.timebase.condition()
    driver.start()
    try:
        with cond:
            assert cond.wait_for(None, 1.0) is False
        assert 1.0 <= clock.now() < 1.0 + 0.002 + 1e-9
        assert driver.steps in (500, 501)  # one step each 2 ms, no more
    finally:
        driver.close()


def test_a_reader_waiting_on_a_virtual_pen_is_woken_by_the_frame_it_waits_for():
    clock = VirtualClock()
    with PenSimulator(seed=3, clock=clock) as sim:
        sim.advance(0.06)
        port = sim.open_port()
        got: list[bytes] = []
        started = time.monotonic()
        reader = threading.Thread(target=lambda: got.append(port.read(1, timeout_s=60.0)),
                                  daemon=True)
        reader.start()
        end = time.monotonic() + 30.0  # the reader counts itself, notifying nobody: look
        while sim._readers == 0:  # (it waits before the pen writes anything)
            assert time.monotonic() < end, "the reader never waited"
            time.sleep(0.0005)
        sim.advance(0.02)  # telemetry is due (100 Hz): the pen writes
        reader.join(60.0)
        assert got == [b"\xaa"]  # a frame's first byte
        assert time.monotonic() - started < 30.0  # woken by the write, not by its timeout
