"""Review 19 (fixd1), through the Python API: what happens to the pen from a session's opening
checks on is never forgotten by its first play(), and an E-stop that also asked the session
to stop (its `should_stop`, as the service's E-stop does) ends it as an E-stop.

docs/safety.md "Between a session's passes"; README: "An E-stop, a fault or a lost pen between
two passes ends the run as one mid-pass would (exit 5, 4 or 6, left open), also when it was
cleared". A latch while the opening was recorded (a slow disk), cleared before play(), used to
be forgotten: every pass played. An E-stop that set the caller's stop flag, cleared before the
next pass (or while it was set up), ended the session `interrupted` and closed it.
Virtual time, real simulator, real pass log; the other actor runs in another thread."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from smpdevice.control import PenController, State
from smpdevice.passlog import PassLog
from smpdevice.sessions.resume import left_resumable
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.sessions.test_rev19_interrupted_between_passes import (
    _estop_and_clear,
    _pull_and_replug,
)
from tests.smpdevice.sessions.test_session import CLEAR, short_profile
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time


def _in_thread(act: Callable, *args) -> None:
    other = threading.Thread(target=act, args=args)
    other.start()
    other.join(30)


def _brownout_and_clear(sim, pen) -> None:
    sim.inject("brownout")  # the pen reboots into POWER_RESET: a fault it latched by itself
    pen.wait_for_state(State.FAULT, timeout_s=5)
    sim.clear("brownout")
    pen.clear_faults()


@pytest.mark.parametrize(("act", "state"), [(_estop_and_clear, "estop"),
                                            (_pull_and_replug, "disconnected"),
                                            (_brownout_and_clear, "fault")])
def test_a_latch_while_the_opening_is_recorded_ends_the_first_play(tmp_path, act, state):
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen,
          PassLog.open(tmp_path / "passlog.sqlite") as log):
        original = log.open_session

        def slow_open_session(*args, **kwargs):  # the record written, the thread held
            result = original(*args, **kwargs)
            _in_thread(act, sim, pen)
            return result

        log.open_session = slow_open_session
        session = TreatmentSession.open(pen, log, short_profile(0.3, passes=2),
                                        technician="ana", screening=parse_screening(CLEAR))
        assert pen.state is State.IDLE  # cleared (reconnected) before play()
        session.play()
        passes = log.passes(session.session_id)
        judged = session.judged_pen_state()
        resumable = left_resumable(session, stop_asked=session.stop_requested)
        session.suspend()
    assert passes == [], passes  # nothing played by itself after it
    assert judged == state  # its outcome: exit 5, 6 or 4
    assert resumable  # left open


@pytest.mark.parametrize("hook", ["end_pass", "begin_pass"])
def test_an_estop_that_also_asked_a_stop_is_an_estop(tmp_path, hook):
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen,
          PassLog.open(tmp_path / "passlog.sqlite") as log):
        session = TreatmentSession.open(pen, log, short_profile(0.3, passes=3),
                                        technician="ana", screening=parse_screening(CLEAR))
        stop = threading.Event()
        original, seen = getattr(log, hook), []

        def estop_stop_and_clear(sim, pen) -> None:
            pen.estop()
            stop.set()  # the caller's E-stop button also asks its session to stop
            pen.clear_faults()

        def hooked(*args, **kwargs):
            result = original(*args, **kwargs)
            if not seen:
                seen.append("acted")
                _in_thread(estop_stop_and_clear, sim, pen)
            return result

        setattr(log, hook, hooked)
        session.play(should_stop=stop.is_set)
        outcomes = [p.outcome for p in log.passes(session.session_id)]
        asked = session.stop_requested
        resumable = left_resumable(session, stop_asked=asked)
        outcome = session.suspend()["outcome"]
    # after pass 1's end: pass 2 never set up; as pass 1 was set up: that pass is the E-stop's
    assert outcomes == (["completed"] if hook == "end_pass" else ["estop"]), outcomes
    assert outcome == "estop" and not asked  # exit 5, never `interrupted` (130)
    assert resumable  # left open


@pytest.mark.parametrize(("act", "state"), [(_estop_and_clear, "estop"),
                                            (_brownout_and_clear, "fault")])
def test_a_latch_while_the_resumption_is_recorded_ends_the_first_play(tmp_path, act, state):
    """The same for `resume_session`: its session watched only from its play()."""
    from smpdevice.sessions.resume import resume_session

    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen,
          PassLog.open(tmp_path / "passlog.sqlite") as log):
        first = TreatmentSession.open(pen, log, short_profile(0.3, passes=2),
                                      technician="ana", screening=parse_screening(CLEAR))
        first.play(should_stop=lambda: len(first.results) >= 1)
        first.suspend()
        original = log.resume_session

        def slow_resume_session(*args, **kwargs):  # the resumption recorded, the thread held
            result = original(*args, **kwargs)
            _in_thread(act, sim, pen)
            return result

        log.resume_session = slow_resume_session
        resumed = resume_session(pen, log, first.session_id, technician="ana")
        assert pen.state is State.IDLE  # cleared before play()
        resumed.play()
        indexes = [p.index for p in log.passes(first.session_id)]
        judged = resumed.judged_pen_state()
        resumed.suspend()
    assert indexes == [0], indexes  # nothing played by itself after it
    assert judged == state
