"""Review 16 (b16d).

A zone change (or a client's floor) keeps the setpoints in force when their floats fit the
new zone, but the pen keeps the integers rounded for the old zone: they can lie past the new
zone's limit. Promised: docs/safety.md "Rounding to the wire's integer units never crosses a
limit ... of the active zone (as narrowed to the pen and the client's floor)"."""

# ruff: noqa: F811
from __future__ import annotations

import pytest

from smpdevice.envelope import EnvelopeError, strokes_per_impression
from tests.smpdevice.conftest import pen, sim, true_calibration  # noqa: F401

pytestmark = pytest.mark.virtual_time


def _on_pen(sim, pen):
    fw = sim.firmware
    return (pen.calibration.to_depth_mm(fw.depth_cmd_um / 1000), fw.speed_set_centihz / 100,
            fw.duty_permille / 10, fw.period_us / 1000)


def test_depth_rounded_for_crown_runs_past_the_hairline_ceiling(sim, pen):
    pen.set_zone("crown")  # ceiling 0.75: 0.55 goes out nearest (846 um = 0.5504 mm, seed 7)
    pen.set_setpoints(depth_mm=0.55, speed_hz=80.0, duty_pct=35.0, period_ms=120.0)
    zone = pen.set_zone("hairline")  # ceiling 0.55: the setpoints (0.55) are kept
    pen.arm()
    pen.start_needle()
    try:
        depth_mm = _on_pen(sim, pen)[0]
        assert depth_mm <= zone.dermal_ceiling_mm, (
            f"the pen runs {sim.firmware.depth_cmd_um} um = {depth_mm:.6f} mm in skin in "
            f"'hairline' (ceiling {zone.dermal_ceiling_mm})")
    finally:
        pen.stop_needle()


def test_strokes_rounded_for_crown_run_past_the_hairline_maximum(sim, pen):
    pen.set_zone("crown")  # 12 strokes: 8.0 exactly in floats rounds up on the wire
    speed_hz, duty_pct = 109.996, 59.96
    period_ms = 8.0 / (speed_hz * duty_pct / 100) * 1000
    pen.set_setpoints(depth_mm=0.4, speed_hz=speed_hz, duty_pct=duty_pct, period_ms=period_ms)
    zone = pen.set_zone("hairline")  # max 8 strokes: the floats fit, they are kept
    pen.arm()
    pen.start_needle()
    try:
        strokes = strokes_per_impression(*_on_pen(sim, pen)[1:])
        assert strokes <= zone.max_strokes_per_impression, strokes
    finally:
        pen.stop_needle()


def test_depth_rounded_before_the_client_floor_runs_under_it(sim, pen):
    cal = pen.calibration
    depth_mm = next(d / 10_000 for d in range(4000, 5000)  # one nearest rounding falls below
                    if cal.to_depth_mm(round(cal.to_actuator_mm(d / 10_000) * 1000) / 1000)
                    < d / 10_000)
    pen.set_zone("crown")
    pen.set_setpoints(depth_mm=depth_mm, speed_hz=80.0, duty_pct=35.0, period_ms=120.0)
    zone = pen.set_client_skin(round(depth_mm - 0.05, 4))  # floor = the setpoint: it is kept
    assert zone.epidermal_floor_mm == depth_mm
    pen.arm()
    pen.start_needle()
    try:
        on_pen_mm = _on_pen(sim, pen)[0]
        assert on_pen_mm >= zone.epidermal_floor_mm, (
            f"{depth_mm} asked, the pen runs {on_pen_mm:.7f} mm under the client's floor")
    finally:
        pen.stop_needle()


def test_an_armed_zone_change_sends_integers_that_fit_the_new_zone(sim, pen):
    pen.set_zone("crown")
    pen.set_setpoints(depth_mm=0.55, speed_hz=80.0, duty_pct=35.0, period_ms=120.0)
    pen.arm()
    zone = pen.set_zone("hairline")  # armed: sent again, rounded for hairline
    assert pen.setpoints is not None and pen.state.value == "armed"
    pen.start_needle()
    try:
        assert _on_pen(sim, pen)[0] <= zone.dermal_ceiling_mm
    finally:
        pen.stop_needle()


def test_a_floor_whose_integers_do_not_fit_is_refused_while_running(sim, pen):
    cal = pen.calibration
    depth_mm = next(d / 10_000 for d in range(4000, 5000)
                    if cal.to_depth_mm(round(cal.to_actuator_mm(d / 10_000) * 1000) / 1000)
                    < d / 10_000)
    pen.set_zone("crown")
    pen.set_setpoints(depth_mm=depth_mm, speed_hz=80.0, duty_pct=35.0, period_ms=120.0)
    pen.arm()
    pen.start_needle()
    try:
        with pytest.raises(EnvelopeError, match="Nothing changed: stop first"):
            pen.set_client_skin(round(depth_mm - 0.05, 4))
        assert pen.client_epidermis_mm is None  # nothing changed
        assert pen.setpoints is not None
    finally:
        pen.stop_needle()
