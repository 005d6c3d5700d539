"""Review 11, F12 and F13: the errors docs/integration.md's Errors table names are the ones
raised. A calibration move outside the actuator's travel is an `EnvelopeError` (with its
`.violations`); a setpoint that is not a finite number is a `NumberError` (also a
`ValueError`). Both stay `InvalidArgument`s too, as every other checked argument is."""

from __future__ import annotations

import pytest

from smpdevice.checks import InvalidArgument
from smpdevice.control import State
from smpdevice.envelope import EnvelopeError, NumberError

pytestmark = pytest.mark.virtual_time


@pytest.mark.parametrize("actuator_mm", [99.0, -0.5, 10**400 // 10**399])
def test_a_calibration_move_outside_travel_is_an_envelope_error(pen, actuator_mm):
    pen.begin_calibration()
    lo, hi = pen.identity.limits.depth_min_mm, pen.identity.limits.depth_max_mm
    with pytest.raises(EnvelopeError) as caught:
        pen.calibration_move(actuator_mm)
    error = caught.value
    assert isinstance(error, InvalidArgument)
    assert "actuator_mm=" in str(error) and "actuator travel" in str(error)
    (violation,) = error.violations
    assert violation.parameter == "actuator_mm" and violation.value == actuator_mm
    assert violation.limit == (hi if actuator_mm > hi else lo)
    assert pen.state is State.CALIBRATING  # nothing was sent: the move never started
    assert pen.calibration_move(hi / 2) == pytest.approx(hi / 2, abs=0.02)


@pytest.mark.parametrize("bad", [True, "0.5", float("nan"), None])
def test_a_calibration_move_to_a_non_number_is_an_invalid_argument_only(pen, bad):
    pen.begin_calibration()
    with pytest.raises(InvalidArgument, match="actuator_mm=") as caught:
        pen.calibration_move(bad)
    assert not isinstance(caught.value, EnvelopeError)  # no travel limit was crossed


@pytest.mark.parametrize("name", ["depth_mm", "speed_hz", "duty_pct", "period_ms"])
@pytest.mark.parametrize("bad", [True, "0.5", float("inf"), float("nan"), 10**400],
                         ids=["bool", "text", "inf", "nan", "huge-int"])
def test_a_setpoint_that_is_not_a_number_is_a_number_error(pen, name, bad):
    pen.set_zone("crown")
    good = dict(depth_mm=0.5, speed_hz=100.0, duty_pct=40.0, period_ms=120.0)
    with pytest.raises(NumberError) as caught:
        pen.set_setpoints(**{**good, name: bad})
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, InvalidArgument)
    assert str(caught.value).startswith(f"{name}=")
    assert pen.setpoints is None  # nothing was sent
