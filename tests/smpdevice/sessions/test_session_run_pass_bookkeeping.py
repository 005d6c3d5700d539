"""`run_pass()` keeps the same books as `play()`, and a close or suspend from another thread
while a pass is being set up leaves no pass armed. On the simulator's virtual clock.

`run_pass()` used to skip the "cut short" refusal `play()` has: after a pass that ended early
it went on in the same session part, past the checks a resume makes, and it never took its
pass out of `remaining`. `close()`/`suspend()` marked the session ended only after winding
down, so a play thread between two passes could arm the next pass after the client's floor
was dropped."""

from __future__ import annotations

import threading

import pytest

from smpdevice.control import State
from smpdevice.control.states import StateError
from smpdevice.passlog import PassOutcome
from smpdevice.sessions.profiles import PlannedPass
from tests.smpdevice.sessions.conftest import states_seen
from tests.smpdevice.sessions.test_session import open_session, short_profile

pytestmark = pytest.mark.virtual_time


def _dots_plan(profile, dots: int = 8):
    return profile.model_copy(update={"plan": [
        PlannedPass(zone=profile.plan[0].zone, impressions=dots), profile.plan[1]]})


def test_run_pass_after_a_play_cut_short_is_refused_and_nothing_is_sent(sim, pen, passlog):
    session = open_session(pen, passlog, _dots_plan(short_profile(0.2, passes=2)))
    [stopped] = session.play(should_stop=lambda: session._recorder.snapshot().impressions >= 3)
    assert stopped.outcome is PassOutcome.stopped
    states = states_seen(pen)
    with pytest.raises(StateError, match=r"run_pass\(\) refused.*stopped before the end of "
                                         r"its plan \(its pass 1 ended stopped\)") as refused:
        session.run_pass(session.profile.plan[1], index=1)
    assert "nothing was sent to the pen" in str(refused.value)
    assert f"smp run --resume {session.session_id}" in str(refused.value)
    assert states == [] and len(passlog.passes(session.session_id)) == 1
    session.close()
    assert session.outcome.value == "interrupted"


def test_a_run_pass_that_ends_early_leaves_its_remainder_and_refuses_going_on(sim, pen,
                                                                               passlog):
    session = open_session(pen, passlog, _dots_plan(short_profile(0.2, passes=2)))
    first = session.profile.plan[0]
    stopped = session.run_pass(
        first, index=0, should_stop=lambda: session._recorder.snapshot().impressions >= 3)
    assert stopped.outcome is PassOutcome.stopped
    dots = stopped.stats.impressions
    assert 3 <= dots < 8
    assert [(i, p.impressions) for i, p in session.remaining] == [(0, 8 - dots), (1, None)]
    states = states_seen(pen)
    for call in (lambda: session.run_pass(session.profile.plan[1]), session.play):
        with pytest.raises(StateError, match=r"refused.*its pass 1 ended stopped.*suspend"):
            call()
    assert states == [] and len(passlog.passes(session.session_id)) == 1
    session.close()


def test_run_pass_takes_a_completed_pass_out_of_remaining(sim, pen, passlog):
    session = open_session(pen, passlog, short_profile(0.2, passes=3))
    plan = session.profile.plan
    assert session.run_pass(plan[1]).outcome is PassOutcome.completed  # no index: found
    assert [i for i, _ in session.remaining] == [0, 2]
    session.run_pass(plan[0], index=0)
    session.run_pass(PlannedPass(zone=plan[2].zone, duration_s=0.1), index=7)  # not planned
    assert [i for i, _ in session.remaining] == [2]
    results = session.play()  # plays only what is left
    # plan pass 1 by hand is filed as pass 1 (review 17: it was filed as 0, len(results))
    assert [r.index for r in results] == [1, 0, 7, 2] and session.remaining == []  # in order
    session.close()
    assert session.outcome.value == "completed"


@pytest.mark.parametrize("end", ["close", "suspend"])
def test_ended_from_another_thread_while_a_pass_is_set_up_leaves_nothing_armed(
        sim, pen, passlog, end):
    """The other thread closes the session while play() sets up pass 2 (between its checks
    and its arming): the pass is not armed on past the end, nor recorded."""
    session = open_session(pen, passlog, short_profile(0.2, passes=2))
    real_set_zone, calls = pen.set_zone, []

    def set_zone_while_closing(name):
        calls.append(name)
        if len(calls) == 2:  # pass 2: the technician ends the session from the UI thread
            other = threading.Thread(target=getattr(session, end))
            other.start()
            other.join(timeout=60)
            assert not other.is_alive()
        return real_set_zone(name)

    pen.set_zone = set_zone_while_closing
    with pytest.raises(StateError, match=rf"{session.session_id} was "
                                         rf"{'closed' if end == 'close' else 'suspended'}"):
        session.play()
    assert pen.state is State.IDLE  # disarmed again: nothing armed past the session's end
    assert pen.client_epidermis_mm is None  # the ended session's floor is not held
    assert [p.index for p in passlog.passes(session.session_id)] == [0]
