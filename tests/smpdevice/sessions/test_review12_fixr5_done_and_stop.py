"""Review 12 REV3B-5 / REV3B-9, against the simulator on its virtual clock and a real SQLite log.

REV3B-5: a pass cut (here by an E-stop) after it made all its dots has nothing left: a resume
never plays it again, so the session's outcome, its completed count and the client's sheet
count it as completed (one notion of "done" with the resume's).
REV3B-9: a stop asked before a resumed part began any pass ends the session `interrupted`,
not by the earlier part's E-stop/fault, which this part never met."""

from __future__ import annotations

from datetime import timedelta

import pytest

from smpdevice.control import State
from smpdevice.sessions.aftercare import session_incomplete
from smpdevice.sessions.resume import remaining_passes, resume_session
from smpdevice.sessions.session_records import session_summary
from tests.smpdevice.sessions.test_session import open_session, short_profile
from tests.smpdevice.sessions.test_session_resume import estop_during, opened_at

pytestmark = pytest.mark.virtual_time


def estop_after_all_dots(index: int, pen):
    """Press the E-stop in pass `index` once it has made every dot of its duration (the
    impressions x period reach it) but before its time is up: cut with nothing left."""
    pressed: list[int] = []

    def on_progress(p) -> None:
        sp = pen.setpoints
        if (p.index == index and not pressed and sp is not None and p.target_s
                and p.impressions * sp.period_ms / 1000.0 >= p.target_s):
            pressed.append(p.impressions)
            pen.estop()
    return on_progress


def test_pass_cut_after_all_its_dots_counts_as_completed(pen, passlog):
    profile = short_profile(0.6, passes=3)
    session = open_session(pen, passlog, profile)
    session.play(on_progress=estop_after_all_dots(0, pen))
    sid = session.session_id
    cut = passlog.passes(sid)[0]
    assert cut.outcome == "estop", cut  # the precondition: cut, with every dot made
    assert remaining_passes(profile.plan, passlog.passes(sid))[0][0] == 1
    summary = session.suspend()  # the pen is E-stopped: left open, by the E-stop
    assert summary["outcome"] == "estop"
    assert summary["outcomes"] == {"completed": 1}, summary["outcomes"]
    assert summary["judged_completed"] == [
        {"pass_id": cut.pass_id, "index": 0, "recorded_outcome": "estop"}]
    assert passlog.passes(sid)[0].outcome == "estop"  # the record stays as it was
    pen.clear_faults()
    resumed = resume_session(pen, passlog, sid, technician="ana",
                             now=opened_at(passlog, sid) + timedelta(minutes=1))
    assert [i for i, _ in resumed.remaining] == [1, 2]
    resumed.play()
    summary, sheet = resumed.close()
    assert resumed.outcome.value == "completed", summary
    assert summary["outcomes"]["completed"] == 3 and summary["planned_passes"] == 3
    assert session_incomplete(summary) == "" and "INCOMPLETE" not in sheet.upper()
    assert session_summary(passlog, sid, profile)["outcome"] == "completed"


def test_pass_cut_with_dots_left_is_not_judged_completed(pen, passlog):
    profile = short_profile(0.6, passes=2)
    session = open_session(pen, passlog, profile)
    session.play(on_progress=estop_during(0, pen, after_s=0.15))
    summary = session.suspend()
    assert summary["outcome"] == "estop" and "judged_completed" not in summary
    assert summary["outcomes"] == {"estop": 1}


@pytest.mark.parametrize("earlier", ["estop_done", "estop_part"])
def test_stop_before_the_resumed_part_played_is_interrupted(pen, passlog, earlier):
    profile = short_profile(0.6, passes=3)
    session = open_session(pen, passlog, profile)
    session.play(on_progress=estop_after_all_dots(0, pen) if earlier == "estop_done"
                 else estop_during(0, pen))
    session.suspend()
    sid = session.session_id
    pen.clear_faults()
    assert pen.state is State.IDLE
    resumed = resume_session(pen, passlog, sid, technician="ana",
                             now=opened_at(passlog, sid) + timedelta(minutes=1))
    before = len(passlog.passes(sid))
    resumed.play(should_stop=lambda: True)  # Ctrl-C as the resume begins
    assert len(passlog.passes(sid)) == before, "nothing of this part was played"
    summary, _ = resumed.close()
    assert resumed.outcome.value == "interrupted", summary
    assert passlog.session(sid).summary["outcome"] == "interrupted"


def test_stop_inside_a_resumed_pass_is_still_interrupted_and_a_fault_still_a_fault(pen, passlog):
    profile = short_profile(0.6, passes=2)
    session = open_session(pen, passlog, profile)
    session.play(on_progress=estop_during(0, pen))
    session.suspend()
    sid = session.session_id
    pen.clear_faults()
    resumed = resume_session(pen, passlog, sid, technician="ana",
                             now=opened_at(passlog, sid) + timedelta(minutes=1))
    resumed.play(on_progress=estop_during(0, pen, after_s=0.05))  # this part met an E-stop
    summary = resumed.suspend()
    assert summary["outcome"] == "estop"


def test_nothing_left_to_play_closes_completed_not_incomplete(pen, passlog):
    """A session left open with nothing left (by a version before this fix, or its last pass
    cut after its last dot): the resume refuses to play and it is closed as `completed`,
    its sheet not INCOMPLETE ("every planned pass is completed" and "N not played" never both)."""
    from smpdevice.sessions.resume import NothingLeft
    from smpdevice.sessions.session_records import close_session_record

    profile = short_profile(0.6, passes=2)
    session = open_session(pen, passlog, profile)
    session.play(on_progress=estop_after_all_dots(1, pen))
    sid = session.session_id
    assert [p.outcome for p in passlog.passes(sid)] == ["completed", "estop"]
    session.suspend()  # left open, as the earlier code did
    pen.clear_faults()
    with pytest.raises(NothingLeft):
        resume_session(pen, passlog, sid, technician="ana",
                       now=opened_at(passlog, sid) + timedelta(minutes=1))
    summary, sheet, outcome = close_session_record(passlog, sid, profile)
    assert outcome.value == "completed"
    assert summary["outcomes"] == {"completed": 2} and session_incomplete(summary) == ""
    assert "INCOMPLETE" not in sheet.upper()
