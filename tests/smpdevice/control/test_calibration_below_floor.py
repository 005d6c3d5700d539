"""A calibration change that leaves the active zone no allowed depth says why.

A client's skin floor held by a session (or `set_client_skin`) and a new calibration with which
the pen reaches less deep than that floor leave the active zone empty: every depth is refused
(safe), and now each refusal says that the client's floor is above what the zone allows with
this calibration, and what to do; the log says it when the calibration is applied. A
calibration with which the pen cannot reach the zone's window at all is applied the same way
(it used to raise after it had been applied, leaving the zone narrowed for the old one). On
the simulator's virtual clock."""

from __future__ import annotations

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_protocol.codes import MsgType
from smpdevice.control import PenController, State
from smpdevice.control.calibration import Calibration
from smpdevice.envelope import EnvelopeError
from smpdevice.errors import SmpError
from smpdevice.passlog import PassLog
from smpdevice.sessions.profiles import TreatmentProfile
from smpdevice.sessions.screening import QUESTIONS, parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time
KNOB = {"speed_hz": 90, "duty_pct": 40, "period_ms": 120}  # with a depth_mm
FLOOR_WORDS = (r"the client's skin floor 0\.55 mm \(epidermis_mm=0\.5 \+ 0\.05 mm\) is above what "
               r"the 'crown' zone allows with this calibration \(0\.5 mm")


def reaching(pen: PenController, deepest_mm: float) -> Calibration:
    """A calibration with which the pen (actuator 0..2.5 mm) reaches `deepest_mm` at most."""
    gain = 0.8
    return Calibration.linear(pen_serial=pen.identity.serial, technician="t",
                              offset_mm=deepest_mm - gain * pen.identity.limits.depth_max_mm,
                              gain=gain)


@pytest.fixture
def rig():
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen):
        yield sim, pen


def test_a_calibration_below_the_held_floor_says_why_every_depth_is_refused(rig):
    sim, pen = rig
    pen.set_zone("crown")  # 0.25..0.75 mm
    pen.set_client_skin(0.5)  # floor 0.55 mm
    sent = sim.firmware.executed[MsgType.SET_SETPOINTS]
    shallow = reaching(pen, 0.5)
    with structlog.testing.capture_logs() as logs:
        pen.set_calibration(shallow)  # applied: it is this pen's truth now
    assert pen.calibration is shallow
    said = [e for e in logs if e["event"] == "no depth allowed in the active zone"]
    assert said and said[0]["log_level"] == "warning"
    assert "skin floor 0.55 mm" in said[0]["why"] and "(0.5 mm" in said[0]["why"]
    assert "calibrate the pen again" in said[0]["what_to_do"]
    for depth_mm in (0.5, 0.6, 0.3):  # below the floor, above the reach, both
        with pytest.raises(EnvelopeError, match=FLOOR_WORDS) as info:
            pen.set_setpoints(depth_mm=depth_mm, **KNOB)
        assert "calibrate the pen again" in str(info.value)
        assert "set_client_skin(None)" in str(info.value)
    with pytest.raises(SmpError, match="cannot arm: " + FLOOR_WORDS):
        pen.arm()
    with pytest.raises(EnvelopeError, match="zone='crown' is refused: " + FLOOR_WORDS):
        pen.set_zone("crown")
    assert sim.firmware.executed[MsgType.SET_SETPOINTS] == sent  # nothing reached the pen
    assert pen.state is State.IDLE
    pen.set_client_skin(None)  # another client: the crown within the pen's reach again
    assert pen.set_setpoints(depth_mm=0.45, **KNOB).depth_mm == 0.45
    with pytest.raises(EnvelopeError, match="deeper than the dermal ceiling 0.5$"):
        pen.set_setpoints(depth_mm=0.6, **KNOB)  # the plain words when no client is involved


def test_a_session_held_floor_and_a_new_calibration(rig, tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    sim, pen = rig
    prof = TreatmentProfile.model_validate({
        "schema_version": 1, "session_kind": "base_density", "client_ref": "C-0042",
        "skin": {"epidermis_mm": 0.5},
        "zones": {"crown": {"needle": "1RL 0.25mm", "depth_mm": 0.6, **KNOB}},
        "plan": [{"zone": "crown", "duration_s": 0.3}]})
    with PassLog.open(tmp_path / "passlog.sqlite") as passlog:
        session = TreatmentSession.open(pen, passlog, prof, technician="ana",
                                        screening=parse_screening({q: False for q in QUESTIONS}))
        pen.set_zone("crown")
        pen.set_calibration(reaching(pen, 0.5))
        with pytest.raises(EnvelopeError, match=FLOOR_WORDS + r".*end the session of this "
                                                              r"client \(close\(\) or suspend"):
            pen.set_setpoints(depth_mm=0.6, **KNOB)
        with pytest.raises(EnvelopeError, match=r"epidermis_mm=0\.5 is refused: " + FLOOR_WORDS
                                                + r".*check the measured epidermis"):
            pen.set_client_skin(0.5)  # by hand as well: refused, saying the same
        session.close()
        pen.set_calibration(true_calibration(sim))  # a calibration reaching deep enough
        pen.set_client_skin(0.5)
        assert pen.set_setpoints(depth_mm=0.6, **KNOB).depth_mm == 0.6


def test_a_calibration_that_cannot_reach_the_zone_is_applied_and_every_depth_refused(rig):
    sim, pen = rig
    pen.set_zone("crown")
    far = reaching(pen, 0.2)  # the crown starts at 0.25 mm
    pen.set_calibration(far)  # used to raise after applying it, the zone left for the old one
    assert pen.calibration is far
    assert pen.zone.epidermal_floor_mm > pen.zone.dermal_ceiling_mm
    with pytest.raises(EnvelopeError, match=r"with this calibration the pen reaches -1\.8 to "
                                            r"0\.2 mm in skin, outside the 'crown' zone's "
                                            r"window 0\.25 to 0\.75 mm.*calibrate the pen again"):
        pen.set_setpoints(depth_mm=0.3, **KNOB)
    with pytest.raises(EnvelopeError, match="zone='crown' is refused: with this calibration"):
        pen.set_zone("crown")
    pen.set_calibration(true_calibration(sim))
    assert pen.set_setpoints(depth_mm=0.3, **KNOB).depth_mm == 0.3


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(deepest_mm=st.floats(0.0, 1.2), epidermis_mm=st.none() | st.floats(0.01, 0.9),
       depth_mm=st.floats(0.25, 0.75))
def test_whatever_the_calibration_a_depth_is_taken_only_inside_floor_zone_and_reach(
        rig, deepest_mm, epidermis_mm, depth_mm):
    sim, pen = rig
    pen.set_client_skin(None)
    pen.set_calibration(true_calibration(sim))
    pen.set_zone("crown")
    try:
        pen.set_client_skin(epidermis_mm)
    except EnvelopeError:
        assert epidermis_mm is not None and epidermis_mm + 0.05 > 0.75  # the crown's ceiling
        return
    pen.set_calibration(reaching(pen, deepest_mm))
    floor = max(0.25, (epidermis_mm or 0) + 0.05)
    try:
        pen.set_setpoints(depth_mm=depth_mm, **KNOB)
    except EnvelopeError as exc:
        message = str(exc)
        if floor > deepest_mm:  # nothing allowed: the refusal says why
            assert "with this calibration" in message, message
        # (what is inside by more than rounding is accepted)
        assert not floor + 1e-6 <= depth_mm <= min(0.75, deepest_mm) - 1e-6, message
        return
    assert floor - 1e-6 <= depth_mm <= min(0.75, deepest_mm) + 1e-6


@pytest.mark.parametrize("deepest_mm", [0.5, 0.2])  # below the client's floor; below the crown
def test_a_calibration_installed_by_end_calibration_says_it_too(rig, deepest_mm):
    """The calibration workflow installs its fit with end_calibration(): the controller comes
    back to idle (a pen that cannot reach the zone used to leave it in `calibrating`) and the
    log and every refusal say why no depth is allowed."""
    _sim, pen = rig
    pen.set_zone("crown")
    pen.set_client_skin(0.5)
    pen.begin_calibration()
    new = reaching(pen, deepest_mm)
    with structlog.testing.capture_logs() as logs:
        pen.end_calibration(new)
    assert pen.state is State.IDLE and pen.calibration is new
    assert any(e["event"] == "no depth allowed in the active zone" for e in logs)
    words = FLOOR_WORDS if deepest_mm == 0.5 else "with this calibration the pen reaches"
    with pytest.raises(EnvelopeError, match=words):
        pen.set_setpoints(depth_mm=0.6, **KNOB)
