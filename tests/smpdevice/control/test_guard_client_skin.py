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


def profile(epidermis_mm: float | None, duration_s: float = 0.3,
            depth_mm: float = 0.45) -> TreatmentProfile:
    data = {"schema_version": 1, "session_kind": "base_density", "client_ref": "C-0042",
            "zones": {"crown": {"needle": "1RL 0.25mm", "depth_mm": depth_mm, **KNOB}},
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


def test_a_suspended_session_drops_the_clients_floor_and_a_floor_set_by_hand_is_its_own(rig):
    _sim, pen, passlog = rig
    session = open_session(pen, passlog, profile(epidermis_mm=0.38))
    assert pen.client_epidermis_mm == 0.38
    session.suspend()
    assert pen.client_epidermis_mm is None
    pen.set_client_skin(0.3)  # by hand: it stays until dropped by hand (review 10a R01)
    other = open_session(pen, passlog, profile(epidermis_mm=None))  # skin unknown: adds none
    assert pen.client_epidermis_mm == 0.3
    other.close()
    assert pen.client_epidermis_mm == 0.3
    pen.set_client_skin(None)
    assert pen.client_epidermis_mm is None


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
    ceiling) is accepted. The floor is rounded up to 0.1 um, never down. A client whose floor
    is deeper than the crown's ceiling is refused (review 10a R03): the floor held before
    still guards every depth."""
    sim, pen, _passlog = rig
    zone = pen.set_zone("crown")
    assert (zone.epidermal_floor_mm, zone.dermal_ceiling_mm) == (0.25, 0.75)  # pen-wide enough

    @settings(max_examples=80, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(epidermis=st.floats(0.001, 0.8), depth=st.floats(0.0, 0.9))
    def check(epidermis, depth):
        before = pen.client_epidermis_mm
        try:
            pen.set_client_skin(epidermis)
        except EnvelopeError as exc:
            assert epidermis + 0.05 > 0.75 - 0.0001, (epidermis, exc)
            assert "cannot be treated" in str(exc) and pen.client_epidermis_mm == before
            epidermis = before if before is not None else 0.0
        else:
            assert epidermis + 0.05 <= 0.75 + 0.0001, epidermis
        assert pen.zone.epidermal_floor_mm <= pen.zone.dermal_ceiling_mm
        # rounded up to 0.1 um as the promise says, after float noise (0.55 + 0.05 is
        # 0.6000000000000001 in binary, a floor of 0.6 mm all the same; hypothesis found it)
        floor = max(0.25, math.ceil((epidermis + 0.05) * 10_000 - 1e-6) / 10_000)
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


# ---- review 10a R01: every open session keeps its own client's floor


@pytest.mark.parametrize("other_skin_mm", [None, 0.30, 0.45])
@pytest.mark.parametrize("other_end", ["close", "suspend"])
def test_another_session_on_the_pen_never_drops_an_open_sessions_floor(rig, other_skin_mm,
                                                                        other_end):
    """Session A (epidermis 0.35 mm: floor 0.40 mm) is open; session B for another client
    (skin unknown, thinner, thicker) opens and ends on the same pen: the guard holds the
    thickest skin of those open, and A's floor again once B ends."""
    _sim, pen, passlog = rig
    a = open_session(pen, passlog, profile(epidermis_mm=0.35))
    b = open_session(pen, passlog, profile(epidermis_mm=other_skin_mm, depth_mm=0.55))
    assert pen.client_epidermis_mm == max(0.35, other_skin_mm or 0.0)
    pen.set_zone("crown")
    with pytest.raises(EnvelopeError, match="shallower than the epidermal floor"):
        pen.set_setpoints(depth_mm=0.30, **KNOB)  # in A's client's epidermis
    getattr(b, other_end)()
    assert pen.client_epidermis_mm == 0.35
    assert pen.set_zone("crown").epidermal_floor_mm == pytest.approx(0.40)
    with pytest.raises(EnvelopeError, match="shallower than the epidermal floor 0.4"):
        pen.set_setpoints(depth_mm=0.30, **KNOB)
    pen.set_client_skin(None)  # by hand: drops only what was set by hand, never A's floor
    assert pen.client_epidermis_mm == 0.35
    a.close()
    assert pen.client_epidermis_mm is None
    pen.set_setpoints(depth_mm=0.30, **KNOB)  # no session open: the crown's own floor


def test_a_resumed_session_holds_its_clients_floor_again_beside_another_session(rig):
    from smpdevice.sessions.resume import resume_session

    _sim, pen, passlog = rig
    a = open_session(pen, passlog, profile(epidermis_mm=0.35))
    a.suspend()
    b = open_session(pen, passlog, profile(epidermis_mm=None))
    assert pen.client_epidermis_mm is None
    resumed = resume_session(pen, passlog, a.session_id, technician="ana")
    assert pen.client_epidermis_mm == 0.35
    b.close()
    assert pen.client_epidermis_mm == 0.35
    assert pen.set_zone("crown").epidermal_floor_mm == pytest.approx(0.40)
    resumed.close()
    assert pen.client_epidermis_mm is None


def test_property_the_guard_holds_the_thickest_skin_of_every_holder(rig):
    """Property: whatever order holders (sessions, by hand) set and drop their client's skin
    in, the guard's floor is the thickest skin still held, and a drop never fails."""
    _sim, pen, _passlog = rig
    pen.set_zone("crown")
    holders = [object(), object(), object(), "set_client_skin"]

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.tuples(st.integers(0, 3),
                              st.none() | st.floats(0.01, 0.6)), max_size=12))
    def check(steps):
        held: dict[int, float] = {}
        for who, skin in steps:
            pen._hold_client_skin(holders[who], skin, refuse_empty=True)
            if skin is None:
                held.pop(who, None)
            else:
                held[who] = skin
            thickest = max(held.values(), default=None)
            assert pen.client_epidermis_mm == thickest
            floor = max(0.25, (thickest or 0.0) + 0.05)
            assert pen.zone.epidermal_floor_mm == pytest.approx(floor, abs=1e-4)
        for who in range(4):
            pen._hold_client_skin(holders[who], None, refuse_empty=True)
        assert pen.client_epidermis_mm is None

    check()


# ---- review 10a R03: a client whose floor is deeper than a zone's ceiling


def test_a_clients_floor_past_the_active_zones_ceiling_is_refused_nothing_changed(rig):
    _sim, pen, _passlog = rig
    pen.set_zone("crown")  # ceiling 0.75 mm
    pen.set_setpoints(depth_mm=0.6, **KNOB)
    with pytest.raises(EnvelopeError, match=r"epidermis_mm=0.9 is refused.*floor 0.95 mm.*"
                                            r"ceiling 0.75 mm.*cannot be treated in this zone"):
        pen.set_client_skin(0.9)
    assert pen.client_epidermis_mm is None
    assert pen.zone.epidermal_floor_mm == 0.25 and pen.setpoints.depth_mm == 0.6
    zone = pen.set_client_skin(0.7)  # floor 0.75 mm: the ceiling itself is still a depth
    assert (zone.epidermal_floor_mm, zone.dermal_ceiling_mm) == (0.75, 0.75)
    pen.set_client_skin(None)
    pen.close()  # disconnected: kept for the next connection, checked against the zone known
    with pytest.raises(EnvelopeError, match="cannot be treated"):
        pen.set_client_skin(0.9)
    assert pen.client_epidermis_mm is None


def test_a_zone_a_held_client_cannot_be_treated_in_is_refused(rig):
    _sim, pen, _passlog = rig
    pen.set_zone("crown")
    pen.set_client_skin(0.6)  # floor 0.65 mm: inside the crown, past the hairline's 0.55 mm
    with pytest.raises(EnvelopeError, match=r"zone='hairline' is refused.*ceiling 0.55 mm.*"
                                            "cannot be treated in this zone"):
        pen.set_zone("hairline")
    assert pen.zone_name == "crown" and pen.zone.epidermal_floor_mm == pytest.approx(0.65)
    pen.set_client_skin(None)
    assert pen.set_zone("hairline").epidermal_floor_mm == 0.20


def test_a_session_opening_deselects_a_leftover_zone_its_client_cannot_be_treated_in(rig):
    """The session's own zones passed the profile checks; a zone left active from before
    (here the hairline) is deselected rather than left with no depth allowed, and the
    session plays its passes in its own zone."""
    _sim, pen, passlog = rig
    pen.set_zone("hairline")
    session = open_session(pen, passlog, profile(epidermis_mm=0.55, depth_mm=0.65))
    assert pen.zone_name is None and pen.zone is None and pen.client_epidermis_mm == 0.55
    [result] = session.play()
    assert result.outcome is PassOutcome.completed
    assert pen.zone.epidermal_floor_mm <= pen.zone.dermal_ceiling_mm
    session.close()
