"""A resume plans from its session's record read once it holds the session, and the log's
resume transaction refuses a plan made from another number of passes than it holds (review 19,
fix 3): a pass played since a resume's first look is never planned and played again.

Promised: docs/integration.md: "a resume holds its session from its first look to the session
object it returns ... (one object plays it, so no pass is played twice)".
"""

# ruff: noqa: F811 (fixtures imported from the suite's conftests, used as arguments)
from __future__ import annotations

import threading

import pytest

from smpdevice.errors import SmpError
from smpdevice.records.sqlite_resume import ResumedMeanwhile
from smpdevice.sessions.resume import resume_session
from tests.smpdevice.conftest import pen, sim  # noqa: F401
from tests.smpdevice.sessions.conftest import passlog  # noqa: F401
from tests.smpdevice.sessions.test_session import open_session, short_profile

pytestmark = pytest.mark.virtual_time


def _suspended_after_one(pen, passlog, passes: int = 3) -> str:
    first = open_session(pen, passlog, short_profile(0.2, passes=passes))
    first.play(should_stop=lambda: len(first.results) >= 1)
    first.suspend()
    return first.session_id


def test_a_resume_does_not_plan_a_pass_played_since_its_first_look(sim, pen, passlog):
    sid = _suspended_after_one(pen, passlog)
    looked, go = threading.Event(), threading.Event()
    real_session = passlog.session
    late_thread: list[int] = []  # the late resume's thread

    def held_look(session_id):  # only the late resume's first look is held (its timing)
        record = real_session(session_id)
        if threading.get_ident() == late_thread[0] and not looked.is_set():
            looked.set()
            go.wait(10)
        return record

    passlog.session = held_look
    out: list[object] = []

    def late_resume():
        late_thread.append(threading.get_ident())
        try:
            out.append(resume_session(pen, passlog, sid[:10], technician="ana"))  # a prefix
        except SmpError as exc:
            out.append(exc)

    t = threading.Thread(target=late_resume)
    t.start()
    assert looked.wait(10)
    other = resume_session(pen, passlog, sid, technician="ana")  # plays pass 1, suspends
    other.play(should_stop=lambda: len(other.results) >= 1)
    other.suspend()
    go.set()
    t.join(10)
    del passlog.session
    assert not t.is_alive()
    assert [p.index for p in passlog.passes(sid)] == [0, 1]
    late = out[0]
    assert not isinstance(late, SmpError), late
    assert [i for i, _ in late.remaining] == [2]  # not pass 1 again
    late.play()
    assert [p.index for p in passlog.passes(sid)] == [0, 1, 2]
    assert [r["number"] for r in passlog.resumptions(sid)] == [1, 2]


def test_the_log_refuses_a_resume_planned_from_other_passes(sim, pen, passlog):
    """Another writer's pass between a resume's plan and its record (the log's own check)."""
    sid = _suspended_after_one(pen, passlog)
    zone = short_profile(0.2, passes=3).plan[1].zone

    def played_meanwhile():  # a pass recorded after the plan was made, before its record
        pid = passlog.begin_pass(sid, index=1, zone=zone, depth_mm=0.4, speed_hz=90.0,
                                 duty_pct=40.0, period_ms=11.1, started_at=pen.record_now())
        passes_now = passlog.passes(sid)
        assert passes_now[-1].pass_id == pid

    with pytest.raises(ResumedMeanwhile, match=r"holds 2 passes now.*planned from 1.*"
                                               r"nothing was recorded"):
        resume_session(pen, passlog, sid, technician="ana", before_record=played_meanwhile)
    assert passlog.resumptions(sid) == []  # nothing recorded
    for stale in (0, 1, 3, True, "2", 2.0):  # any other count than the log's: refused
        with pytest.raises(ResumedMeanwhile, match="nothing was recorded"):
            passlog.resume_session(sid, resumed_at=pen.record_now(),
                                   details={"number": 1, "passes_before": stale})
    assert passlog.resumptions(sid) == []
    passlog.resume_session(sid, resumed_at=pen.record_now(),
                           details={"number": 1, "passes_before": 2})  # the log's own count
    assert [r["number"] for r in passlog.resumptions(sid)] == [1]
