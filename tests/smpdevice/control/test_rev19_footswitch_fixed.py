"""Review 19 (safety): the footswitch mode a controller was made with cannot be dropped later.

docs/safety.md, "The needle runs while the technician's foot is off the pedal": with `required`
the pedal is an enabling device and "the mode is in every session's header". `footswitch` was a
plain attribute: set to "off" between passes, the next ARM sent OFF and the session's pass ran
with the pedal up under a header saying `required`; set to any text, the ARM failed with a bare
KeyError. Now it is read-only, as the zones are (FootswitchError, nothing changed). Virtual
time, real simulator and pass log."""

from __future__ import annotations

import pytest

from smpdevice.control import FootswitchError, PenController
from smpdevice.passlog import PassLog
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import CROWN, true_calibration
from tests.smpdevice.sessions.test_session import CLEAR, short_profile
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time


def test_a_required_session_never_runs_a_pass_with_the_pedal_up(tmp_path):
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim), clock=sim.clock,
                                footswitch="required") as pen,
          PassLog.open(tmp_path / "passlog.sqlite") as log):
        sim.press_pedal()
        session = TreatmentSession.open(pen, log, short_profile(0.3, passes=2),
                                        technician="ana", screening=parse_screening(CLEAR))
        end_pass, refusals = log.end_pass, []

        def after_the_first_pass(*args, **kwargs):
            ended = end_pass(*args, **kwargs)
            try:  # a script or a settings screen, once the session opened; the foot lifts
                pen.footswitch = "off"
            except FootswitchError as exc:
                refusals.append(str(exc))
            sim.release_pedal()
            return ended

        log.end_pass = after_the_first_pass  # type: ignore[method-assign]
        session.play()  # pass 1 with the pedal down, pass 2 (another zone: armed anew) up
        header = log.session(session.session_id).footswitch
        outcomes = [p.outcome for p in log.passes(session.session_id)]
        mode = pen.footswitch
    assert header == mode == "required"
    assert refusals and "fixed when it is made" in refusals[0], refusals
    assert outcomes == ["completed", "footswitch_released"], outcomes


@pytest.mark.parametrize("value", ["bogus", "off", "required", None, 3])
def test_a_footswitch_mode_cannot_be_changed_after_the_controller_is_made(value):
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim), clock=sim.clock,
                                footswitch="optional") as pen):
        pen.set_zone("crown")
        pen.set_setpoints(**CROWN)
        with pytest.raises(FootswitchError, match="fixed when it is made"):
            pen.footswitch = value
        assert pen.footswitch == "optional"
        pen.arm()  # the mode it was made with: no KeyError, nothing changed
        pen.disarm()
