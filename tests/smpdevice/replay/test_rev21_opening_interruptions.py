"""Session 21 (known gap of session 20): two or more interruptions while a session's opening is
recorded (after its checks read the pen's counts, before the session listened itself) were
listed in the close summary's `interruptions_between` as `unknown` ("came before the session
listened (as it was opened): its reason is not kept") but for the last: the controller keeps
only the latest interruption's reason.

Now an `OpeningWatch` (sessions/session_guard.py) listens from the moment the counts are read
until the session listens itself, so each is named with its reason, in order. The same holds
for a resume's opening. Virtual time, the real simulator, controller and SQLite pass log; the
E-stops are pressed (and cleared) from the opening's `before_record` hook, as a service's
client could press them while the opening is recorded."""

from __future__ import annotations

import pytest

from smpdevice.control import PenController, State
from smpdevice.passlog import PassLog
from smpdevice.replay.runner import replay_session
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.replay.conftest import CLEAR, short_profile
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time


def _opened_interrupted(tmp_path, pressed: int) -> tuple[dict, object, str]:
    """A 2-pass session whose opening saw `pressed` E-stops (each cleared): (its close
    summary, its pass log, its id)."""
    path = tmp_path / "passlog.sqlite"
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen,
          PassLog.open(path) as log):
        listeners = len(pen.state_listeners)

        def interrupted() -> None:
            for _ in range(pressed):
                pen.estop()
                pen.clear_faults()

        session = TreatmentSession.open(pen, log, short_profile(0.2, passes=2),
                                        technician="ana", screening=parse_screening(CLEAR),
                                        before_record=interrupted)
        assert pen.state is State.IDLE
        session.play()  # ends before its first pass: E-stops since the opening's checks
        summary, _ = session.close()
        assert len(pen.state_listeners) == listeners  # the watch is gone with the opening
    return summary, path, session.session_id


@pytest.mark.parametrize("pressed", [2, 3])
def test_each_interruption_while_the_opening_is_recorded_is_named(tmp_path, pressed):
    summary, _, _ = _opened_interrupted(tmp_path, pressed)
    between = summary["interruptions_between"]
    assert [(i["state"], i["reason"], i["before_index"]) for i in between] == [
        ("estop", "E-stop requested by the host", 0)] * pressed, between


def test_a_session_interrupted_as_it_was_opened_replays(tmp_path):
    _, path, session_id = _opened_interrupted(tmp_path, 2)
    with PassLog(path, readonly=True) as log:
        report = replay_session(log, session_id)
    assert report.match, (report.difference, report.notes)


def test_a_refused_opening_leaves_no_watch_behind(tmp_path):
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen,
          PassLog.open(tmp_path / "passlog.sqlite") as log):
        listeners = len(pen.state_listeners)

        def refused() -> None:
            raise RuntimeError("a session.stop came first")

        with pytest.raises(RuntimeError):
            TreatmentSession.open(pen, log, short_profile(0.2, passes=2), technician="ana",
                                  screening=parse_screening(CLEAR), before_record=refused)
        assert len(pen.state_listeners) == listeners
