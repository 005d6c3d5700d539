"""One suspended session resumed twice in one process (a Resume button pressed twice, a retry
after a UI error): both resumed sessions play what was left, so the plan's last pass is played
twice on the client.

Promised: docs/safety.md (crash recovery): a resume "never plays more than the plan";
docs/integration.md: "One `play()` or `run_pass()` at a time: a second one while the session
plays (a Play button pressed twice, another thread) raises `StateError`", `play()` again after a
complete play "returns at once", and a resume "checks calibration, envelope and screening again,
records the resumption".
Found (review 15): `resume_session` of a session already resumed and still open returns a
second live `TreatmentSession`; after the first plays pass 2, the second plays pass 2 again
(log: passes 0, 1, 1, all completed); only its close() fails ("is closed").
"""

# ruff: noqa: F811 (fixtures imported from the suite's conftests, used as arguments)
from __future__ import annotations

import contextlib

import pytest

from smpdevice.errors import SmpError
from smpdevice.sessions.resume import resume_session
from tests.smpdevice.conftest import pen, sim  # noqa: F401
from tests.smpdevice.sessions.conftest import passlog  # noqa: F401
from tests.smpdevice.sessions.test_session import open_session, short_profile

pytestmark = pytest.mark.virtual_time


def test_a_session_resumed_twice_never_plays_a_pass_twice(sim, pen, passlog):
    first = open_session(pen, passlog, short_profile(0.2, passes=2))
    first.play(should_stop=lambda: len(first.results) >= 1)  # pass 1 done, pass 2 left
    first.suspend()
    resumed = resume_session(pen, passlog, first.session_id, technician="ana")
    try:
        again = resume_session(pen, passlog, first.session_id, technician="ana")
    except SmpError:
        again = None  # refused: it is already resumed and open
    resumed.play()
    if again is not None:
        with contextlib.suppress(SmpError):  # refused: fine
            again.play()
    played = [p.index for p in passlog.passes(first.session_id)]
    assert played == [0, 1], f"plan passes played: {played}"


def test_a_session_still_open_here_is_not_resumed_into_a_second_player(sim, pen, passlog):
    """Never suspended, never played: `resume_session` hands out a second session object and
    both play the whole plan (log: passes 0, 1, 0, 1)."""
    live = open_session(pen, passlog, short_profile(0.2, passes=2))
    try:
        other = resume_session(pen, passlog, live.session_id, technician="ana")
    except SmpError:
        other = None  # refused: the session is open and held here
    for session in (other, live):
        if session is not None:
            with contextlib.suppress(SmpError):  # refused: fine
                session.play()
    played = [p.index for p in passlog.passes(live.session_id)]
    assert played == [0, 1], f"plan passes played: {played}"
