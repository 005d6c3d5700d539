"""A virtual clock's time driver outlives a listener that raises: otherwise the clock would
stand still for good (on `pensim://?clock=virtual`, the pen's lease with it: a needle left
running in the simulation would never stop)."""

from __future__ import annotations

import threading

from simulators import VirtualClock
from smpdevice.link.clock import VirtualTimeDriver


def test_a_listener_that_raises_does_not_stop_virtual_time():
    clock = VirtualClock()
    broke = threading.Event()
    later = threading.Event()

    def flaky(now_s: float) -> None:
        if not broke.is_set():
            broke.set()
            raise RuntimeError("a listener broke")
        if now_s >= 0.5:
            later.set()

    clock.on_advance(flaky)
    driver = VirtualTimeDriver(clock, 0.005, name="test-time", wall_pace=True)
    driver.start()
    try:
        assert broke.wait(30), "time never moved"
        assert later.wait(30), f"time stopped at {clock.now():.3f} s after the listener broke"
        assert driver.failures >= 1
    finally:
        driver.close()


def test_a_listener_that_raises_does_not_hide_the_step_from_the_others():
    clock = VirtualClock()
    seen: list[float] = []

    def broken(now_s: float) -> None:
        raise RuntimeError("a listener broke")

    clock.on_advance(broken)
    clock.on_advance(seen.append)
    try:
        clock.advance(0.25)
    except RuntimeError as exc:
        assert "a listener broke" in str(exc)
    else:
        raise AssertionError("the listener's error was swallowed")
    assert seen == [0.25] and clock.now() == 0.25
