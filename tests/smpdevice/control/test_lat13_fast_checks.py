"""The setpoint path's quicker forms of its checks (issue 13, session 13) answer exactly as the
full ones: `_setpoints` as `_setpoint_number` of each value in order (the same Setpoints, or
the same refusal), and `_valid_calibration` as `require_calibration` at every call, whatever
changed in between (the calibration, the pen, its kind, the date)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smpdevice.control import PenController
from smpdevice.control.calibration import FUTURE_SLACK, Calibration, require_calibration
from smpdevice.control.pen import Setpoints
from smpdevice.control.requests import RequestsMixin
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time

values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 200),
    st.integers(-10**6, 10**6), st.sampled_from([10**400, -10**400, 10**308, 2**1024]),
    st.booleans(), st.none(), st.sampled_from([Decimal("0.5"), Fraction(1, 3), "0.5", 1j]),
    st.sampled_from([1e308, -1e308, math.nextafter(0.0, 1.0)]))


@pytest.fixture(scope="module")
def pen():
    with virtual_sim(seed=5) as sim, PenController.connect(
            sim.url, calibration=true_calibration(sim), clock=sim.clock) as pen:
        pen.set_zone("crown")
        yield pen


def outcome(fn, *args, **kwargs):
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:  # the refusal: its type and its words
        return ("refused", type(exc), str(exc))
    return ("ok", result)


def one_by_one(pen, d, s, du, p) -> Setpoints:
    number = pen._setpoint_number
    return Setpoints(number("depth_mm", d), number("speed_hz", s), number("duty_pct", du),
                     number("period_ms", p))


@settings(max_examples=400, deadline=None)
@given(values, values, values, values)
def test_the_setpoints_in_one_call_are_each_value_checked_in_order(pen, d, s, du, p):
    quick, full = outcome(pen._setpoints, d, s, du, p), outcome(one_by_one, pen, d, s, du, p)
    assert quick == full
    if quick[0] == "ok":  # floats only: the envelope's quick check counts on it
        assert all(type(v) is float for v in (quick[1].depth_mm, quick[1].speed_hz,
                                              quick[1].duty_pct, quick[1].period_ms))


CREATED = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def _cal(serial: str, simulated: bool, days: int = 30) -> Calibration:
    return Calibration(pen_serial=serial, technician="bench", created_at=CREATED,
                       expires_at=CREATED + timedelta(days=days), offset_mm=0.1, gain=1.0,
                       simulated=simulated)


CALIBRATIONS = [_cal("PEN-A", False), _cal("PEN-A", True), _cal("PEN-B", False),
                _cal("PEN-A", False, days=2), None]
EDGES = [CREATED - FUTURE_SLACK, CREATED + timedelta(days=2), CREATED + timedelta(days=30)]
ONE_US = timedelta(microseconds=1)


class Host(RequestsMixin):
    """The requests mixin with its inputs only: the calibration, the pen, its kind, the date
    (the real controller's are a connected pen's)."""

    def __init__(self) -> None:
        self._calibration: Calibration | None = None
        self.serial, self.simulated, self.now = "PEN-A", False, CREATED
        self.port_url = "/dev/ttyUSB0"

    @property
    def _ident(self):
        return SimpleNamespace(serial=self.serial)

    def validity_now(self) -> datetime:
        return self.now


step = st.tuples(st.sampled_from(range(len(CALIBRATIONS))), st.sampled_from(["PEN-A", "PEN-B"]),
                 st.booleans(),
                 st.one_of(st.sampled_from(EDGES).flatmap(
                     lambda t: st.sampled_from([t - ONE_US, t, t + ONE_US])),
                     st.integers(-3 * 86400, 40 * 86400).map(
                         lambda s: CREATED + timedelta(seconds=s))))


@settings(max_examples=300, deadline=None)
@given(st.lists(step, min_size=1, max_size=12))
def test_the_calibration_check_answers_as_the_full_one_at_every_call(steps):
    host = Host()
    for index, serial, simulated, now in steps:
        host._calibration, host.serial, host.simulated, host.now = (
            CALIBRATIONS[index], serial, simulated, now)
        full = outcome(require_calibration, host._calibration, serial,
                       simulated_pen=simulated, port=host.port_url, now=now)
        assert outcome(host._valid_calibration) == full


def test_a_calibration_found_valid_is_refused_the_moment_it_expires():
    host = Host()
    host._calibration = CALIBRATIONS[0]
    host.now = CREATED + timedelta(days=30) - ONE_US
    assert host._valid_calibration() is CALIBRATIONS[0]
    host.now += ONE_US
    with pytest.raises(Exception, match="expired on"):
        host._valid_calibration()
