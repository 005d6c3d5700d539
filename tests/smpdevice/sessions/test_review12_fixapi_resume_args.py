"""`resume_session` given arguments of the wrong kind (screening answers or a profile file's
dict where checked objects belong, a naive time, a name no record may hold, no pass log) is
refused with an `InvalidArgument` naming the argument, an `SmpError` as integration.md
promises for every error an integrator can cause, before anything is read or recorded; the
session stays resumable (review 12 REVF-10). On the simulator's virtual clock."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from smpdevice.checks import InvalidArgument
from smpdevice.control import PenController
from smpdevice.passlog import PassLog
from smpdevice.sessions.profiles import load_profile
from smpdevice.sessions.resume import resume_session
from smpdevice.sessions.screening import QUESTIONS, parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time
ROOT = Path(__file__).resolve().parents[3]
CLEAR = {q: False for q in QUESTIONS}


@pytest.fixture(scope="module")
def suspended(tmp_path_factory):
    db = tmp_path_factory.mktemp("resume_args") / "passlog.sqlite"
    with virtual_sim(seed=0) as sim, PenController.connect(
            sim.url, calibration=true_calibration(sim), clock=sim.clock) as pen, \
            PassLog.open(db) as log:
        profile = load_profile(ROOT / "examples" / "session1_base_density.yaml", pen.zones)
        session = TreatmentSession.open(pen, log, profile, technician="ana",
                                        screening=parse_screening(CLEAR))
        session.play(should_stop=lambda: len(session.results) >= 1)
        session.suspend()
        yield pen, log, session.session_id, profile


WRONG = {
    "screening answers": ({"screening": CLEAR}, "screening"),
    "a yes in plain answers": ({"screening": {**CLEAR, "sunburn": True}}, "screening"),
    "screening as text": ({"screening": "all no"}, "screening"),
    "profile data": ({"profile": {"schema_version": 1}}, "profile"),
    "profile as a path": ({"profile": "examples/session1_base_density.yaml"}, "profile"),
    "a naive now": ({"now": datetime(2026, 11, 30, 12, 0)}, "now"),
    "now as text": ({"now": "2026-11-30T12:00:00Z"}, "now"),
    "a technician with ESC": ({"technician": "ana\x1b]0;x\x07"}, "technician"),
    "a technician not text": ({"technician": 7}, "technician"),
    "close_how not text": ({"close_how": ["smp", "run"]}, "close_how"),
}


@pytest.mark.parametrize("kind", list(WRONG))
def test_a_wrong_argument_is_refused_by_name_and_nothing_is_recorded(suspended, kind):
    pen, log, sid, _ = suspended
    extra, name = WRONG[kind]
    head, resumed = log.head(), log.resumptions(sid)
    with pytest.raises(InvalidArgument) as err:
        resume_session(pen, log, sid, **{"technician": "ana", **extra})
    assert str(err.value).startswith(f"{name}="), str(err.value)
    assert "\n" not in str(err.value) and "allowed:" in str(err.value)
    assert log.head() == head and log.resumptions(sid) == resumed


@pytest.mark.parametrize("which", ["pen", "passlog"])
def test_no_pen_or_no_pass_log_is_refused_by_name(suspended, which):
    pen, log, sid, _ = suspended
    args = {"pen": pen, "passlog": log, which: {"path": "passlog.sqlite"}}
    head = log.head()
    with pytest.raises(InvalidArgument, match=f"^{which}="):
        resume_session(args["pen"], args["passlog"], sid, technician="ana")
    assert log.head() == head


def test_the_session_resumes_with_checked_arguments(suspended):
    """The checks refuse nothing a correct call gives (run in any order with the others)."""
    pen, log, sid, profile = suspended
    resumed = len(log.resumptions(sid))
    session = resume_session(pen, log, sid, technician="ana", profile=profile,
                             screening=parse_screening(CLEAR))
    assert session.session_id == sid and session.remaining
    assert len(log.resumptions(sid)) == resumed + 1
    session.suspend()
