"""Every public entry point refuses wrong types, non-finite and absurd numbers with one typed
SmpError naming the parameter, before anything is sent or stored (issue 11, item 2)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_protocol.codes import MsgType
from simulators import PenSimulator
from smpdevice.checks import InvalidArgument, is_finite_real
from smpdevice.control import PenController, State
from smpdevice.control.calibration import Calibration, CalibrationError
from smpdevice.errors import SmpError
from tests.smpdevice.conftest import CROWN, true_calibration
from tests.smpdevice.virtual_time import virtual_sim

NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf, -math.nan])
WRONG_TYPE = st.one_of(
    st.booleans(), st.none(), st.text(max_size=8), st.sampled_from(["0.5", "1e9", "nan", ""]),
    st.lists(st.floats(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(),
                                                       max_size=1),
    st.just(object()), st.binary(max_size=3), st.complex_numbers(allow_nan=False),
)
ABSURD = st.one_of(st.floats(min_value=1e6, allow_infinity=False),
                   st.floats(max_value=-1e-9, allow_infinity=False),
                   st.integers(min_value=10**7), st.integers(max_value=-1))
BAD = st.one_of(NON_FINITE, WRONG_TYPE, ABSURD)
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def idle_pen():
    # Virtual time: a refusal needs none, and a starved process cannot lose the link meanwhile
    # (seen once in CI on wall time: "silent for 0.39 s" while hypothesis ran).
    with virtual_sim(seed=5) as sim, PenController.connect(
        sim.url, calibration=true_calibration(sim), lease_ms=200, clock=sim.clock
    ) as pen:
        pen.set_zone("crown")
        pen.set_setpoints(**CROWN)
        yield sim, pen


def _nothing_sent(pen: PenController, sim: PenSimulator, call) -> SmpError:
    tx = pen.link.stats.tx_frames
    executed = sum(sim.firmware.executed.values())
    setpoints = pen.setpoints
    with pytest.raises(SmpError) as err:
        call()
    assert pen.link.stats.tx_frames == tx, "a frame was sent for a refused argument"
    assert sum(sim.firmware.executed.values()) == executed
    assert pen.setpoints == setpoints and pen.state is State.IDLE
    return err.value


@SETTINGS
@given(field=st.sampled_from(sorted(CROWN)), value=BAD)
def test_set_setpoints_refuses_bad_numbers_before_sending(idle_pen, field, value):
    sim, pen = idle_pen
    error = _nothing_sent(pen, sim, lambda: pen.set_setpoints(**{**CROWN, field: value}))
    assert field in str(error)


@SETTINGS
@given(value=st.one_of(NON_FINITE, WRONG_TYPE))
def test_non_finite_or_non_numbers_are_invalid_argument_naming_the_range(idle_pen, value):
    sim, pen = idle_pen
    error = _nothing_sent(pen, sim, lambda: pen.set_setpoints(**{**CROWN, "depth_mm": value}))
    assert isinstance(error, InvalidArgument)
    assert "depth_mm=" in str(error) and "allowed" in str(error)


@SETTINGS
@given(entry=st.sampled_from(["move", "move_timeout", "spin", "spin_duration", "start_timeout",
                              "zone", "calibration", "wait"]),
       value=BAD)
def test_every_other_entry_refuses_bad_values_before_sending(idle_pen, entry, value):
    sim, pen = idle_pen
    calls = {
        "move": lambda: pen.calibration_move(value),
        "move_timeout": lambda: pen.calibration_move(1.0, settle_timeout_s=value),
        "spin": lambda: pen.calibration_spin(value),
        "spin_duration": lambda: pen.calibration_spin(100.0, duration_s=value),
        "start_timeout": lambda: pen.start_needle(settle_timeout_s=value),
        "zone": lambda: pen.set_zone(value),
        "calibration": lambda: pen.set_calibration(value),
        "wait": lambda: pen.wait_for_state(State.IDLE, timeout_s=value),
    }
    if entry == "zone" and isinstance(value, str) and value.strip():
        value = value + "?"  # a text is a valid type: an unknown zone is refused, by name
    assert str(_nothing_sent(pen, sim, calls[entry]))  # a refusal that says why


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"lease_ms": -5}, "lease_ms"), ({"lease_ms": 0}, "lease_ms"),
     ({"lease_ms": 70000}, "lease_ms"), ({"lease_ms": 200.5}, "lease_ms"),
     ({"lease_ms": True}, "lease_ms"), ({"lease_ms": math.nan}, "lease_ms"),
     ({"telemetry_hz": 0}, "telemetry_hz"), ({"telemetry_hz": math.inf}, "telemetry_hz"),
     ({"baudrate": -1}, "baudrate"), ({"baudrate": "fast"}, "baudrate"),
     ({"calibration": "cal"}, "calibration"), ({"zones": ["crown"]}, "zones")],
)
def test_connect_refuses_bad_options_before_opening_the_port(sim, kwargs, name):
    executed = sum(sim.firmware.executed.values())
    with pytest.raises(InvalidArgument, match=f"{name}=.*allowed"):
        PenController.connect(sim.url, **kwargs)
    assert sum(sim.firmware.executed.values()) == executed  # not even IDENTIFY_REQUEST
    with PenController.connect(sim.url) as pen:  # the port was never left open
        assert pen.state is State.IDLE


@pytest.mark.parametrize("port", [None, 5, b"pensim://", "", ["pensim://"]])
def test_connect_refuses_a_port_that_is_no_text(port):
    with pytest.raises(InvalidArgument, match="port="):
        PenController(port)


# ---------------------------------------------------------------- Calibration


def _linear(**overrides):
    args = dict(pen_serial="SMP-TEST0001", technician="ana", offset_mm=-0.3, gain=1.02)
    return Calibration.linear(**{**args, **overrides})


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(["gain", "offset_mm", "validity_days", "speed_error_pct"]),
       value=BAD)
def test_calibration_refuses_bad_numbers_naming_the_field(field, value):
    legitimate = {"offset_mm": (-3, 3), "speed_error_pct": (-100, 100)}  # may be negative
    if field == "speed_error_pct" and value is None:
        return  # None means "no speed check was run"
    if field in legitimate and is_finite_real(value) \
            and legitimate[field][0] <= value <= legitimate[field][1]:
        return
    with pytest.raises(CalibrationError) as err:
        _linear(**{field: value})
    assert field in str(err.value)


@pytest.mark.parametrize("gain", [math.inf, math.nan, 0, -1.0, 0.0, 1e-300, 1e300, True, "1"])
def test_calibration_gain_inf_nan_zero_negative_refused(gain):
    with pytest.raises(CalibrationError, match=r"gain=.*allowed: from 0.5 to 2"):
        _linear(gain=gain)


@settings(max_examples=200, deadline=None)
@given(point=st.tuples(st.one_of(NON_FINITE, WRONG_TYPE), st.floats(0, 1)))
def test_calibration_points_must_be_finite_numbers(point):
    with pytest.raises(CalibrationError, match=r"points\[0\]"):
        _linear(points=[point])


def test_every_calibration_constructor_checks():
    now = datetime.now(UTC)
    fields = dict(pen_serial="SMP-1", technician="ana", created_at=now, expires_at=now,
                  offset_mm=-0.3, gain=1.0)
    with pytest.raises(CalibrationError, match="expires_at"):
        Calibration(**fields)  # expires when it is made
    with pytest.raises(CalibrationError, match="gain"):
        Calibration.model_validate({**fields, "gain": "inf"})
    with pytest.raises(CalibrationError, match="time zone"):
        _linear(created_at=datetime(2026, 1, 1))
    good = _linear()
    assert Calibration.model_validate_json(good.model_dump_json()) == good
    with pytest.raises(CalibrationError, match="gain"):
        Calibration.model_validate_json(good.model_dump_json().replace('"gain":1.02',
                                                                         '"gain":1e999'))


def test_a_sane_calibration_still_converts_depths(sim):
    cal = true_calibration(sim)
    assert math.isfinite(cal.to_actuator_mm(0.5))
    assert cal.simulated is False


# The needle runs on the `pen` fixture's 200 ms lease: on the wall clock a process stalled
# that long on a loaded machine lets it lapse (LEASE_EXPIRED, not RUNNING).
@pytest.mark.virtual_time
def test_set_setpoints_while_running_refuses_nan_and_the_needle_runs_on(sim, pen):
    from tests.smpdevice.conftest import run_needle

    run_needle(pen)
    before = sim.firmware.executed[MsgType.SET_SETPOINTS]
    with pytest.raises(InvalidArgument, match="speed_hz=nan"):
        pen.set_setpoints(**{**CROWN, "speed_hz": math.nan})
    assert sim.firmware.executed[MsgType.SET_SETPOINTS] == before
    assert pen.state is State.RUNNING
