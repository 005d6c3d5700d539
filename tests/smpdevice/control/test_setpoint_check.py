"""The controller's quick envelope check (`inside`) lets a setpoint through only where the
full check (`check_setpoints`) finds nothing wrong: for any zone and any values."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from smpdevice.control.pen import Setpoints
from smpdevice.control.requests import inside
from smpdevice.envelope import DEFAULT_ZONES, check_setpoints, narrowed
from smpdevice.errors import SmpError

ZONES = sorted(DEFAULT_ZONES)
values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6),
                   st.floats(0, 200), st.booleans())


def _full_check_passes(zone, sp: Setpoints) -> bool:
    try:
        return check_setpoints(zone, depth_mm=sp.depth_mm, speed_hz=sp.speed_hz,
                               duty_pct=sp.duty_pct, period_ms=sp.period_ms) == []
    except SmpError:  # not a finite number: refused
        return False


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ZONES), values, values, values, values)
def test_the_quick_check_never_lets_through_what_the_full_check_refuses(name, d, s, du, p):
    sp = Setpoints(d, s, du, p)
    if inside(DEFAULT_ZONES[name], sp):
        assert _full_check_passes(DEFAULT_ZONES[name], sp)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ZONES), st.data())
def test_for_finite_floats_both_checks_agree(name, data):
    zone = DEFAULT_ZONES[name]
    if data.draw(st.booleans()):  # narrowed to a pen's limits, as the controller uses it
        hi = data.draw(st.floats(zone.epidermal_floor_mm + 0.01, zone.dermal_ceiling_mm + 1.0))
        zone = narrowed(zone, depth_mm=(0.0, hi))

    def near(low: float, high: float) -> float:  # around the limits, where it matters
        span = high - low
        return data.draw(st.one_of(st.floats(low - span, high + span), st.sampled_from(
            [low, high, math.nextafter(low, -math.inf), math.nextafter(high, math.inf)])))

    sp = Setpoints(near(zone.epidermal_floor_mm, zone.dermal_ceiling_mm),
                   near(zone.speed_min_hz, zone.speed_max_hz),
                   near(zone.duty_min_pct, zone.duty_max_pct),
                   near(zone.period_min_ms, zone.period_max_ms))
    assert inside(zone, sp) == _full_check_passes(zone, sp)
