"""A resume keeps the session's footswitch mode (review 3, R03): the mode in force is in the
chained `session_resume` record, and a weaker mode than the session header's is refused."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smpdevice.control import PenController
from smpdevice.passlog import PassLog
from smpdevice.sessions.resume import ResumeError, resume_session
from tests.smpdevice.conftest import sim, true_calibration  # noqa: F401 - a fixture
from tests.smpdevice.sessions.test_session import open_session, short_profile
from tests.smpdevice.sessions.test_session_resume import estop_during

pytestmark = pytest.mark.virtual_time


def interrupted_under_required(sim, passlog) -> str:  # noqa: F811
    with PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=200,
                               clock=sim.clock, footswitch="required") as pen:
        session = open_session(pen, passlog, short_profile(0.6, passes=3))
        session.play(on_progress=estop_during(1, pen))
        session.suspend()
        pen.clear_faults()
    assert passlog.session(session.session_id).footswitch == "required"
    return session.session_id


def resume_with(sim, passlog, sid: str, mode: str):  # noqa: F811
    with PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=200,
                               clock=sim.clock, footswitch=mode) as pen:
        now = datetime.fromisoformat(passlog.session(sid).opened_at) + timedelta(minutes=1)
        resumed = resume_session(pen, passlog, sid, technician="bo", now=now.astimezone(UTC))
        resumed.close()


@pytest.mark.parametrize("weaker", ["off", "optional"])
def test_a_weaker_footswitch_mode_is_refused(sim, tmp_path, weaker):  # noqa: F811
    with PassLog.open(tmp_path / "passlog.sqlite") as passlog:
        sid = interrupted_under_required(sim, passlog)
        with pytest.raises(ResumeError) as refused:
            resume_with(sim, passlog, sid, weaker)
        assert passlog.resumptions(sid) == []  # nothing recorded, nothing played
        assert passlog.session(sid).closed_at is None  # still resumable, with the right mode
    message = str(refused.value)
    assert "'required'" in message and repr(weaker) in message and "SMP_FOOTSWITCH" in message


def test_the_resume_record_names_the_mode_in_force(sim, tmp_path):  # noqa: F811
    with PassLog.open(tmp_path / "passlog.sqlite") as passlog:
        sid = interrupted_under_required(sim, passlog)
        sim.press_pedal()  # required: the pen starts only with the pedal down
        resume_with(sim, passlog, sid, "required")
        (record,) = passlog.resumptions(sid)
    assert record["footswitch"] == "required"
