"""Two threads resume one suspended session at once (a Resume button pressed twice in a UI that
runs each press on its own worker thread).

Promised: docs/integration.md: "A session this program already holds in a live session object
(not closed or suspended: a Resume pressed twice, ...) is not resumed again: `StateError`,
nothing recorded (one object plays it, so no pass is played twice)."
Found (review 19, gaps): `resume_session` asked `players.refuse_held` before its checks and
registered the player only in `TreatmentSession.__init__`, after `passlog.resume_session`: two
resumes both passed the first look, both recorded a `session_resume` (both numbered 1), and
the second raised StateError saying "Nothing was recorded" though its resumption was in the log.
Now a resume holds its session from its look to its session object (`players.reserved`).
"""

# ruff: noqa: F811 (fixtures imported from the suite's conftests, used as arguments)
from __future__ import annotations

import contextlib
import threading

import pytest

from smpdevice.control.states import StateError
from smpdevice.errors import SmpError
from smpdevice.sessions.resume import ScreeningDue, resume_session
from tests.smpdevice.conftest import pen, sim  # noqa: F401
from tests.smpdevice.sessions.conftest import passlog  # noqa: F401
from tests.smpdevice.sessions.test_session import open_session, short_profile

pytestmark = pytest.mark.virtual_time


def _resume_twice_at_once(pen, passlog, sid):
    """Both resumes held at their last hook (before anything is recorded) until both got there,
    or one was refused; returns (sessions, errors)."""
    arrived = threading.Barrier(2, timeout=5)
    sessions, errors = [], []

    def press():
        def before_record():
            # the other was refused before its hook: go on alone
            with contextlib.suppress(threading.BrokenBarrierError):
                arrived.wait()
        try:
            sessions.append(resume_session(pen, passlog, sid, technician="ana",
                                           before_record=before_record))
        except SmpError as e:
            errors.append(e)
            arrived.abort()

    threads = [threading.Thread(target=press) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return sessions, errors


def _suspended(pen, passlog):
    first = open_session(pen, passlog, short_profile(0.2, passes=2))
    first.play(should_stop=lambda: len(first.results) >= 1)
    first.suspend()
    return first


def test_two_resumes_at_once_record_one_resumption(sim, pen, passlog):
    first = _suspended(pen, passlog)
    sessions, errors = _resume_twice_at_once(pen, passlog, first.session_id)
    recorded = len(passlog.resumptions(first.session_id))
    assert len(sessions) == 1, f"live sessions: {len(sessions)}, errors: {errors}"
    assert recorded == 1, (f"{recorded} session_resume records for one live session; "
                           f"the refused resume said: {errors}")
    assert len(errors) == 1 and isinstance(errors[0], StateError)
    assert "being resumed" in str(errors[0]) and "Nothing was recorded" in str(errors[0])
    sessions[0].play()  # the one player plays what was left, once
    assert [p.index for p in passlog.passes(first.session_id)] == [0, 1]


def test_a_resume_held_from_its_hook_refuses_another_and_a_failed_one_holds_nothing(
        sim, pen, passlog):
    """The same without threads: a resume asked from inside another's last hook is refused,
    nothing recorded; a resume that fails (here: the screening is due) leaves the session free
    for the next resume."""
    first = _suspended(pen, passlog)
    sid = first.session_id
    inner: list[BaseException] = []

    def nested_resume():
        try:
            resume_session(pen, passlog, sid, technician="ana")
        except SmpError as exc:
            inner.append(exc)

    resumed = resume_session(pen, passlog, sid, technician="ana", before_record=nested_resume)
    assert len(inner) == 1 and isinstance(inner[0], StateError), inner
    assert len(passlog.resumptions(sid)) == 1
    resumed.suspend()
    with pytest.raises(ScreeningDue):  # fails after its look: the session is held no longer
        resume_session(pen, passlog, sid, technician="ana", rescreen_after_min=0.0)
    again = resume_session(pen, passlog, sid, technician="ana")
    with pytest.raises(StateError, match="open in this program already"):
        resume_session(pen, passlog, sid, technician="ana")
    assert [r["number"] for r in passlog.resumptions(sid)] == [1, 2]
    again.play()
    assert [p.index for p in passlog.passes(sid)] == [0, 1]
