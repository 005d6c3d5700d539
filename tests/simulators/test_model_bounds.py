"""A PenModel the simulator accepts is one it can run: every field is checked when the
PenSimulator is made, naming the field (docs/simulator.md "Every model and its parameters")."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_protocol import messages as m
from simulators import PenModel, PenSimulator, VirtualClock
from simulators.pen_model import MODEL_RANGES
from simulators.testing import PenHost


@pytest.mark.parametrize(("field", "value"), [
    ("motor_tau_s", 0.0),  # divided by: ZeroDivisionError at power-on
    ("thermal_tau_s", math.nan),  # "cannot convert float NaN to integer" in the first tick
    ("speed_max_hz", 700.0),  # past IDENTIFY's u16 of 0.01 Hz: every IDENTIFY failed
    ("depth_max_um", 70_000),
    ("boot_ms", -5), ("observer_ratio", 1.5), ("offset_mm", math.nan), ("gain", math.nan),
    ("speed_ripple_pct", math.inf), ("depth_slew_mm_per_s", 0.0), ("observer_ms", 2.5),
    ("footswitch_fitted", 1), ("fw_version", (1, 0)), ("fw_version", (1, 0, 256)),
])
def test_a_model_the_pen_could_not_run_is_refused_naming_the_field(field, value) -> None:
    with pytest.raises(ValueError, match=f"PenModel {field}="):
        PenSimulator(model=PenModel(seed=1, **{field: value}), clock=VirtualClock())


def test_a_hostile_pen_with_inverted_limits_can_still_be_built() -> None:
    """A pen a host must refuse (its minimum above its maximum) is QA's to build: the host's
    refusal at connect is tested against it (tests/smpdevice/control/test_hostile_identity.py)."""
    with PenSimulator(model=PenModel(speed_min_hz=200.0), clock=VirtualClock()) as sim:
        host = PenHost(sim.open_port())
        sim.advance(3.7)
        assert host.request(m.IdentifyRequest()).speed_min_centihz == 20000


_values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6))


@settings(max_examples=60, deadline=None)
@given(field=st.sampled_from(sorted(MODEL_RANGES)), value=_values)
def test_a_model_the_simulator_takes_it_can_serve(field, value) -> None:
    """Refused with the field's name, or the pen boots, answers IDENTIFY and runs on."""
    try:
        sim = PenSimulator(model=PenModel(seed=1, **{field: value}), clock=VirtualClock())
    except ValueError as exc:
        # the field, or the setting it bounds (telemetry_default_hz)
        assert f"{field}=" in str(exc) \
            or (field == "telemetry_max_hz" and "telemetry_default_hz=" in str(exc)), exc
        return
    with sim:
        host = PenHost(sim.open_port())
        sim.advance(3.7)
        assert isinstance(host.request(m.IdentifyRequest()), m.Identify)
        ticks = sim.firmware.now_ms
        sim.advance(0.5)  # it runs on (a trip below ambient may fault it: that is a pen)
        assert sim.firmware.now_ms == ticks + 500 and not sim.errors
