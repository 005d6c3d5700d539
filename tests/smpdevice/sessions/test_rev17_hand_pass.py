"""A pass played by hand with `run_pass()` is filed under the plan pass it is (review 17).

It used to be filed under `len(results)`: with a plan [crown, top], crown played twice by hand
was recorded as plan passes 0 and 1, and the session closed `completed` with its top never
treated (a resume then said "nothing left"). And only the very object of `profile.plan` was
taken out of `session.remaining`: an equal pass built anew, even with its `index=`, was not, so
a later `play()` played that pass again. Now: no index takes the first pass left it equals
(zone and target), else an index past the plan; a plan index must name a pass left that it
equals; `remaining` matches by equality; a resume counts a record only in its plan pass's zone.

Promised: docs/integration.md "Sessions and the pass log": "`session.remaining` says what is
left, as a resume counts it"; `completed` = "every planned pass completed".
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from smpdevice.checks import InvalidArgument
from smpdevice.passlog import PassLog
from smpdevice.sessions.profiles import PlannedPass, parse_profile
from smpdevice.sessions.resume import remaining_passes
from smpdevice.sessions.screening import QUESTIONS, parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.sessions.conftest import states_seen

pytestmark = pytest.mark.virtual_time

CLEAR = dict.fromkeys(QUESTIONS, False)
CROWN = {"needle": "1RL 0.25mm", "depth_mm": 0.5, "speed_hz": 90.0, "duty_pct": 40.0,
         "period_ms": 100.0}
PROFILE = {"schema_version": 1, "session_kind": "base_density", "client_ref": "C-0042",
           "zones": {"crown": CROWN},
           "plan": [{"zone": "crown", "duration_s": 0.3}, {"zone": "crown", "duration_s": 0.5}]}
TWO_ZONES = {**PROFILE, "zones": {"crown": CROWN, "top": CROWN},
             "plan": [{"zone": "crown", "duration_s": 0.3}, {"zone": "top", "duration_s": 0.3}]}


def _open(pen, passlog, profile=PROFILE):
    return TreatmentSession.open(pen, passlog, parse_profile(profile), technician="ana",
                                 screening=parse_screening(CLEAR))


def _as_a_resume_counts(session) -> list[int]:
    plan = session.profile.plan
    return [i for i, _ in remaining_passes(plan, session.passlog.passes(session.session_id))]


def test_a_plan_pass_played_by_hand_with_its_index_leaves_remaining(sim, pen, passlog):
    session = _open(pen, passlog)
    first = session.run_pass(PlannedPass(zone="crown", duration_s=0.3), index=0)
    assert first.outcome.value == "completed"
    left = [index for index, _ in session.remaining]
    assert left == [1] == _as_a_resume_counts(session)
    session.close()


def test_play_after_a_hand_played_plan_pass_does_not_play_it_again(sim, pen, passlog):
    session = _open(pen, passlog)
    session.run_pass(PlannedPass(zone="crown", duration_s=0.3))  # no index: found by equality
    session.play()
    assert [r.index for r in session.results] == [0, 1]
    session.close()
    assert session.outcome.value == "completed"


def test_a_pass_of_no_planned_entry_is_filed_past_the_plan(sim, pen, passlog):
    """Plan [crown, top]: crown twice by hand. The second is no plan pass: filed past the plan,
    `remaining` still holds top, as a resume counts it."""
    session = _open(pen, passlog, TWO_ZONES)
    session.run_pass(PlannedPass(zone="crown", duration_s=0.3))
    session.run_pass(PlannedPass(zone="crown", duration_s=0.3))
    session.run_pass(PlannedPass(zone="top", duration_s=0.1))  # top, not its planned target
    assert [r.index for r in session.results] == [0, 2, 3]
    assert [(i, p.zone) for i, p in session.remaining] == [(1, "top")]
    assert _as_a_resume_counts(session) == [1]
    session.play()  # plays the top pass left, under its plan index
    assert [r.index for r in session.results] == [0, 2, 3, 1] and session.remaining == []
    session.close()
    assert session.outcome.value == "completed"


@pytest.mark.parametrize("index", [0, 1])
def test_a_plan_index_naming_another_pass_is_refused_before_the_pen(sim, pen, passlog, index):
    """index=1 names top (a crown pass is not it); index=0 names crown, already completed."""
    session = _open(pen, passlog, TWO_ZONES)
    session.run_pass(PlannedPass(zone="crown", duration_s=0.3), index=0)
    states = states_seen(pen)
    with pytest.raises(InvalidArgument, match=rf"index={index}: pass {index + 1} of the plan "
                                              r".*nothing was sent to the pen"):
        session.run_pass(PlannedPass(zone="crown", duration_s=0.3), index=index)
    assert states == [] and len(passlog.passes(session.session_id)) == 1
    assert [i for i, _ in session.remaining] == [1]
    session.close()


def test_a_resume_counts_a_record_only_in_its_plan_pass_zone():
    """A log written before this fix: crown filed under top's index. Top is still left."""
    plan = parse_profile(TWO_ZONES).plan
    passes = [SimpleNamespace(pass_id=f"p{i}", index=i, zone="crown", outcome="completed",
                              impressions=3, period_ms=100.0) for i in (0, 1)]
    assert [(i, p.zone) for i, p in remaining_passes(plan, passes)] == [(1, "top")]


def test_a_session_whose_top_pass_never_ran_is_not_completed(sim, pen, tmp_path):
    log = PassLog.open(tmp_path / "own.sqlite")
    try:
        session = _open(pen, log, TWO_ZONES)
        session.run_pass(PlannedPass(zone="crown", duration_s=0.3))
        session.run_pass(PlannedPass(zone="crown", duration_s=0.3))
        summary, sheet = session.close()
        zones_treated = sorted(p.zone for p in log.passes(session.session_id))
    finally:
        log.close()
    assert zones_treated == ["crown", "crown"]
    assert session.outcome.value != "completed", (summary["outcomes"], summary["zones"].keys())
    assert "SESSION INCOMPLETE" in sheet
