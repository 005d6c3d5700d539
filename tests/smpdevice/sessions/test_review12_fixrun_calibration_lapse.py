"""Review 12, REVF-6: a calibration that expires between passes (sessions last hours, a
calibration 30 days from its minute). Whatever check of the next pass's set-up meets the
expiry first (before the pass, SET_SETPOINTS, ARM's checks, the arm's own transition), play()
ends as for any pass not played: no error, nothing new recorded, the rest of the plan kept,
`calibration_lapsed` saying why; the session is `incomplete` (exit 7) and can be resumed.

Before the fix the CalibrationError (or "arm no longer applies: the controller is already
idle") escaped play(). On the simulator's virtual clock; the wall clock the validity is judged
by is `calibration.today_utc`, moved on 31 days after a chosen number of checks."""

from __future__ import annotations

from datetime import timedelta

import pytest

import smpdevice.control.calibration as calibration_module
from smpdevice.control import State
from smpdevice.control.states import StateError
from smpdevice.passlog import PassOutcome
from tests.smpdevice.sessions.test_session import open_session, short_profile

pytestmark = pytest.mark.virtual_time

REAL_TODAY = calibration_module.today_utc


class MonthLater:
    """`today_utc`: the real time until pass 1 is recorded, then, after `checks` more
    readings of the validity clock, 31 days on (and from then on)."""

    def __init__(self, checks: int) -> None:
        self.checks, self.read, self.session = checks, 0, None

    def __call__(self):
        now = REAL_TODAY()
        if self.session is not None and self.session.results:
            self.read += 1
            if self.read > self.checks:
                return now + timedelta(days=31)
        return now


@pytest.mark.parametrize("checks", range(8))
def test_an_expiry_between_passes_ends_play_without_an_error_and_keeps_the_rest(
        sim, pen, passlog, monkeypatch, checks):
    clock = MonthLater(checks)
    monkeypatch.setattr(calibration_module, "today_utc", clock)
    profile = short_profile(0.3, passes=3)
    session = open_session(pen, passlog, profile)
    clock.session = session
    results = session.play()  # no CalibrationError, no StateError
    assert clock.read > checks, "the clock never moved: the test checks nothing"
    # Expired between the arm and the start, the last pass is recorded with its needle never
    # started (no dot: it is played again whole); else no pass of the lapse is recorded.
    cut = [r for r in results if r.outcome is not PassOutcome.completed]
    assert cut == [] or (cut == results[-1:] and cut[0].outcome is PassOutcome.stopped
                         and cut[0].stats.impressions == 0
                         and "the needle never started" in cut[0].detail), cut
    done = len(results) - len(cut)
    assert done < len(profile.plan), "a pass began on an expired calibration"
    assert "expired" in (session.calibration_lapsed or ""), session.calibration_lapsed
    assert [i for i, _ in session.remaining] == list(range(done, len(profile.plan)))
    with pytest.raises(StateError, match=f"pass {done + 1} (was not begun|ended before its "
                                         "needle started): .*calibration of pen .* expired"):
        session.play()  # going on needs a resume (after recalibrating): its checks, its record
    summary = session.suspend()
    assert summary["outcome"] == "incomplete" and session.outcome.exit_code == 7
    assert pen.state is State.IDLE  # no pass left armed
    sid = session.session_id
    assert passlog.session(sid).closed_at is None, "left open, to be resumed"
    assert [p.outcome for p in passlog.passes(sid)] == ["completed"] * done + [
        "stopped"] * len(cut)
    assert passlog.verify() is None
