"""Layer 2 (the controller guard) knows the client's skin while a session for that client is
open (review 9a R01): every setpoint, also one a program sends mid-pass, is checked against the
zone narrowed to the client's floor (epidermis + 0.05 mm), independent of the profile checks;
the narrowing ends with the session. On the simulator's virtual clock."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smpdevice.control import PenController, State
from smpdevice.envelope import EnvelopeError
from smpdevice.errors import SmpError
from smpdevice.passlog import PassLog, PassOutcome
from smpdevice.sessions.profiles import TreatmentProfile
from smpdevice.sessions.screening import QUESTIONS, parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time
KNOB = {"speed_hz": 90, "duty_pct": 40, "period_ms": 120}  # with a depth_mm


def profile(epidermis_mm: float | None, duration_s: float = 0.3) -> TreatmentProfile:
    data = {"schema_version": 1, "session_kind": "base_density", "client_ref": "C-0042",
            "zones": {"crown": {"needle": "1RL 0.25mm", "depth_mm": 0.45, **KNOB}},
            "plan": [{"zone": "crown", "duration_s": duration_s}]}
    if epidermis_mm is not None:
        data["skin"] = {"epidermis_mm": epidermis_mm}
    return TreatmentProfile.model_validate(data)


@pytest.fixture
def rig(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen,
          PassLog.open(tmp_path / "passlog.sqlite") as passlog):
        yield sim, pen, passlog


def open_session(pen, passlog, prof) -> TreatmentSession:
    return TreatmentSession.open(pen, passlog, prof, technician="ana",
                                 screening=parse_screening({q: False for q in QUESTIONS}))


def test_a_session_narrows_the_guard_to_its_clients_floor_until_it_closes(rig):
    _sim, pen, passlog = rig
    session = open_session(pen, passlog, profile(epidermis_mm=0.35))
    assert pen.client_epidermis_mm == 0.35
    assert pen.set_zone("crown").epidermal_floor_mm == pytest.approx(0.40)
    with pytest.raises(EnvelopeError, match="shallower than the epidermal floor 0.4"):
        pen.set_setpoints(depth_mm=0.30, **KNOB)
    pen.set_setpoints(depth_mm=0.45, **KNOB)
    session.close()
    assert pen.client_epidermis_mm is None
    assert pen.set_zone("crown").epidermal_floor_mm == pytest.approx(0.25)
    pen.set_setpoints(depth_mm=0.30, **KNOB)  # the crown's own floor again: another client


def test_a_depth_knob_below_the_clients_floor_is_refused_mid_pass(rig):
    _sim, pen, passlog = rig
    session = open_session(pen, passlog, profile(epidermis_mm=0.35, duration_s=1.0))
    answers: list[object] = []

    def depth_knob(progress):  # a UI turns the depth down while the pass runs
        if progress.elapsed_s > 0.3 and not answers:
            try:
                answers.append(pen.set_setpoints(depth_mm=0.30, **KNOB))
            except SmpError as exc:
                answers.append(exc)

    results = session.play(on_progress=depth_knob)
    session.close()
    assert answers and isinstance(answers[0], EnvelopeError), answers
    assert results[0].outcome is PassOutcome.completed
    assert results[0].stats.depth_min_mm >= 0.40 - 0.02  # never at 0.30 (tolerance: telemetry)


def test_a_suspended_session_drops_the_clients_floor_and_a_session_without_skin_sets_none(rig):
    _sim, pen, passlog = rig
    session = open_session(pen, passlog, profile(epidermis_mm=0.38))
    assert pen.client_epidermis_mm == 0.38
    session.suspend()
    assert pen.client_epidermis_mm is None
    pen.set_client_skin(0.3)  # left over from elsewhere: the next session says what it knows
    other = open_session(pen, passlog, profile(epidermis_mm=None))
    assert pen.client_epidermis_mm is None
    other.close()


def test_narrowing_refused_while_armed_below_the_floor_forgets_setpoints_in_idle(rig):
    _sim, pen, _passlog = rig
    pen.set_zone("crown")
    pen.set_setpoints(depth_mm=0.30, **KNOB)
    pen.arm()
    with pytest.raises(EnvelopeError, match="Nothing changed"):
        pen.set_client_skin(0.35)
    assert pen.client_epidermis_mm is None and pen.state is State.ARMED
    assert pen.zone is not None and pen.zone.epidermal_floor_mm == pytest.approx(0.25)
    assert pen.setpoints is not None and pen.setpoints.depth_mm == 0.30
    pen.disarm()
    zone = pen.set_client_skin(0.35)
    assert zone is not None and zone.epidermal_floor_mm == pytest.approx(0.40)
    assert pen.setpoints is None  # 0.30 is below this client's floor: set them again
    with pytest.raises(SmpError, match="no setpoints|set_setpoints"):
        pen.arm()
    assert pen.set_client_skin(None) is not None and pen.zone.epidermal_floor_mm == 0.25


def test_the_clients_skin_is_kept_while_disconnected(rig):
    _sim, pen, _passlog = rig
    pen.set_zone("crown")
    pen.close()
    assert pen.set_client_skin(0.2) is None  # no active zone while disconnected
    assert pen.client_epidermis_mm == 0.2
    pen.set_client_skin(None)  # dropping never fails
    assert pen.client_epidermis_mm is None


@pytest.mark.parametrize("value", [math.nan, math.inf, 0, 0.0, -0.1, 5.5, True, "0.3"])
def test_an_epidermis_that_is_not_a_thickness_is_refused(rig, value):
    _sim, pen, _passlog = rig
    with pytest.raises(SmpError, match="epidermis_mm"):
        pen.set_client_skin(value)
    assert pen.client_epidermis_mm is None


def test_property_no_depth_below_any_clients_floor_is_ever_sent(rig):
    """Property (one connection, many clients): with a client's epidermis set, a depth below
    epidermis + 0.05 mm is refused and nothing is sent; one at or above it (inside the crown's
    ceiling) is accepted. The floor is rounded up to 0.1 um, never down."""
    sim, pen, _passlog = rig
    zone = pen.set_zone("crown")
    assert (zone.epidermal_floor_mm, zone.dermal_ceiling_mm) == (0.25, 0.75)  # pen-wide enough

    @settings(max_examples=80, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(epidermis=st.floats(0.001, 0.8), depth=st.floats(0.0, 0.9))
    def check(epidermis, depth):
        pen.set_client_skin(epidermis)
        floor = max(0.25, epidermis + 0.05)
        sent_before = sim.firmware.depth_cmd_um
        try:
            pen.set_setpoints(depth_mm=depth, **KNOB)
            accepted = True
        except EnvelopeError:
            accepted = False
            assert sim.firmware.depth_cmd_um == sent_before
        if depth < floor or depth > 0.75:
            assert not accepted, (epidermis, depth)
        elif depth >= floor + 0.0001:
            assert accepted, (epidermis, depth)

    check()
