"""The controller's own measurements never ride the integrator's listener queue (review9a R06's
root, found again in the calibration's speed check): `calibration_spin` collected its samples as
one more telemetry listener, so a slow display made it average stale reports (from before the
motor reached speed, or none: 0.0 Hz and 27.6 Hz measured for 60 and 120 Hz with a 50 ms
listener). It now takes every report as read (`PenController.add_inline_telemetry_reader`).

The pen runs on a clock its controller drives (`VirtualClock(host_driven=True)`, as
`pensim://?clock=virtual`): a frozen listener holds that clock half a second at most, then it
goes at the wall's pace (docs/simulator.md, "Virtual time"), while a loaded machine can no
longer starve a wall-clock pen's count (a spin measured on the wall is the figure a starved
pen gets wrong)."""

from __future__ import annotations

import threading

import pytest

from simulators import PenSimulator, VirtualClock
from smpdevice.control import PenController
from tests.smpdevice.conftest import true_calibration


def test_a_frozen_listener_does_not_change_the_measured_spin_speed():
    release = threading.Event()
    frozen: list = []

    def frozen_ui(t) -> None:  # holds the listeners' queue until the test is over
        frozen.append(t)
        release.wait(60)

    try:
        with (PenSimulator(seed=3, clock=VirtualClock(host_driven=True)) as sim,
              PenController.connect(sim.url, calibration=true_calibration(sim)) as pen):
            pen.begin_calibration()
            pen.add_telemetry_listener(frozen_ui)
            measured = [pen.calibration_spin(hz, 0.6) for hz in (60.0, 120.0)]
            held = len(frozen) == 1 and not release.is_set()
            pen.end_calibration()
    finally:
        release.set()
    assert held, "the listener was meant to hold its queue for the whole check"
    assert measured == [pytest.approx(60.0, rel=0.03), pytest.approx(120.0, rel=0.03)]


def test_a_counter_sees_every_report_in_order_and_a_failing_one_is_skipped():
    """The feed itself: every report, in the order read, on the reading thread; a counter that
    raises is logged and skipped (the reader lives on, the others still count)."""
    seen: list[int] = []

    def broken(t) -> None:
        raise RuntimeError("a broken counter")

    with (PenSimulator(seed=3, clock=VirtualClock(host_driven=True)) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim)) as pen):
        pen.add_inline_telemetry_reader(broken)
        pen.add_inline_telemetry_reader(lambda t: seen.append(t.telemetry_seq))
        start = pen.telemetry.telemetry_seq
        pen.pause(0.3)
        pen.remove_inline_telemetry_reader(broken)
        last = pen.telemetry.telemetry_seq
    assert len(seen) >= 5 and seen == list(range(seen[0], seen[0] + len(seen)))
    assert seen[0] <= start + 1 and seen[-1] >= last
