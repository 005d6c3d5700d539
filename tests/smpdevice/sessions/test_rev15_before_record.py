"""Review 15 (V2): a service's `session.stop` must still refuse a run or resume that passed
its checks but is not yet recorded. `TreatmentSession.open` and `resume_session` take a
`before_record` callable, called after every check and right before the first record; what it
raises refuses the session with nothing recorded (docs/service.md, `session.stop`)."""

# ruff: noqa: F811 (fixtures imported from the suite's conftests, used as arguments)
from __future__ import annotations

import pytest

from smpdevice.errors import SmpError
from smpdevice.sessions.resume import resume_session
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import pen, sim  # noqa: F401
from tests.smpdevice.sessions.conftest import passlog  # noqa: F401
from tests.smpdevice.sessions.test_session import CLEAR, open_session, short_profile

pytestmark = pytest.mark.virtual_time


class Stopped(SmpError):
    pass


def refuse(calls: list[str]):
    def before_record() -> None:
        calls.append("called")
        raise Stopped("a stop came")
    return before_record


def test_open_refused_by_the_hook_records_nothing(sim, pen, passlog):
    calls: list[str] = []
    with pytest.raises(Stopped):
        TreatmentSession.open(pen, passlog, short_profile(0.2), technician="ana",
                              screening=parse_screening(CLEAR), before_record=refuse(calls))
    assert calls == ["called"]
    assert passlog.sessions() == []


def test_open_checks_come_before_the_hook(sim, pen, passlog):
    """A refusal by a check (a positive screening) is never turned into the hook's."""
    calls: list[str] = []
    with pytest.raises(SmpError) as refused:
        TreatmentSession.open(pen, passlog, short_profile(0.2), technician="ana",
                              screening=parse_screening({**CLEAR, "eczema": True}),
                              before_record=refuse(calls))
    assert not isinstance(refused.value, Stopped) and calls == []


def test_resume_refused_by_the_hook_records_nothing_and_stays_open(sim, pen, passlog):
    first = open_session(pen, passlog, short_profile(0.2, passes=2))
    first.play(should_stop=lambda: len(first.results) >= 1)
    first.suspend()
    calls: list[str] = []
    with pytest.raises(Stopped):
        resume_session(pen, passlog, first.session_id, technician="ana",
                       before_record=refuse(calls))
    assert calls == ["called"]
    assert passlog.resumptions(first.session_id) == []
    assert passlog.session(first.session_id).closed_at is None
    resumed = resume_session(pen, passlog, first.session_id, technician="ana",
                             before_record=lambda: None)  # a hook that lets it go on
    resumed.play()
    assert [p.index for p in passlog.passes(first.session_id)] == [0, 1]
    resumed.close()
