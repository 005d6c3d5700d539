"""Review 16 (b16d): the controller ends a pass planned in impressions (`end_pass_after`) at its
count as the pen reports it, when its caller has not stopped it; the plan is for one pass only."""

# ruff: noqa: F811 (fixtures imported from the suite's conftests, used as arguments)
from __future__ import annotations

import pytest

from smpdevice.control import State
from tests.smpdevice.conftest import pen, sim, true_calibration  # noqa: F401

pytestmark = pytest.mark.virtual_time


def _ready(pen) -> None:
    pen.set_zone("crown")
    pen.set_setpoints(depth_mm=0.5, speed_hz=90.0, duty_pct=40.0, period_ms=100.0)
    pen.arm()


@pytest.mark.parametrize("planned", [1, 4])
def test_the_controller_stops_a_pass_at_its_planned_impressions(sim, pen, planned):
    _ready(pen)
    before = pen.telemetry.impressions
    pen.end_pass_after(planned)
    pen.start_needle()
    pen.wait_for_state(State.ARMED, timeout_s=planned * 0.1 + 1.2)  # nobody else stops it
    assert pen.stopped_at_planned_end is not None
    pen.pause(0.1)  # the reports up to the stop
    made = sim.firmware.impressions - before
    assert planned <= made <= planned + 2, made  # + the grace (0.1 s: one period) + one


def test_the_plan_is_for_one_pass_only(sim, pen):
    _ready(pen)
    pen.end_pass_after(2)
    pen.start_needle()
    pen.wait_for_state(State.ARMED, timeout_s=1.5)
    pen.start_needle()  # no plan given: it runs until stopped
    pen.pause(0.6)
    assert pen.state is State.RUNNING and pen.stopped_at_planned_end is None
    pen.stop_needle()


def test_a_stop_before_the_start_drops_the_plan(sim, pen):
    _ready(pen)
    pen.end_pass_after(1)
    pen.stop_needle()  # asked before the pass it was planned for began
    pen.start_needle()
    pen.pause(0.5)
    assert pen.state is State.RUNNING
    pen.stop_needle()
