"""Review 19 (safety): nothing that happened to the pen between a session's passes is forgotten.

docs/safety.md, "The layers": "nothing resumes by itself, not after a clear"; README: a session
ended by an E-stop or a lost pen is left open (exit 5 or 6). An E-stop, a fault or a lost link
that comes as a pass ends, and is cleared (reconnected) before the session's thread sets up the
next pass, used to leave no trace: the session armed and played its next passes by itself and
ended `completed`. An E-stop cleared while a pass was set up left that pass recorded `stopped`
"cannot start the needle while idle", the E-stop named nowhere. Virtual time, real simulator,
real pass log; the other actor runs in another thread at a set point of the session's flow."""

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
from tests.smpdevice.sessions.test_session import CLEAR, short_profile
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time


def _play_with(tmp_path, act: Callable, hook: str = "end_pass"):
    """A 3-pass session; `act(sim, pen)` runs in another thread once, right after the first
    pass's end is recorded (`hook` end_pass) or its begin (`hook` begin_pass)."""
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen,
          PassLog.open(tmp_path / "passlog.sqlite") as log):
        session = TreatmentSession.open(pen, log, short_profile(0.3, passes=3),
                                        technician="ana", screening=parse_screening(CLEAR))
        original, seen = getattr(log, hook), []

        def hooked(*args, **kwargs):
            result = original(*args, **kwargs)
            if not seen:
                seen.append("acted")
                other = threading.Thread(target=act, args=(sim, pen))
                other.start()
                other.join(30)
            return result

        setattr(log, hook, hooked)
        session.play()
        passes = log.passes(session.session_id)
        resumable = left_resumable(session, stop_asked=session.stop_requested)
        judged = session.judged_pen_state()
        session.suspend()
        return passes, resumable, judged, pen.state


def _estop_and_clear(sim, pen) -> None:
    pen.estop()
    pen.clear_faults()  # the technician, once the pen is safe


def _pull_and_replug(sim, pen) -> None:
    sim.disconnect()
    pen.wait_for_state(State.DISCONNECTED, timeout_s=5)
    sim.reconnect()
    pen.reconnect()  # the monitor's `r`


def _fault_and_clear(sim, pen) -> None:
    sim.inject("cartridge_removed")  # armed between passes: the pen latches a fault
    pen.wait_for_state(State.FAULT, timeout_s=5)
    sim.inject("cartridge_removed", on=False)
    pen.clear_faults()


@pytest.mark.parametrize(("act", "state"), [(_estop_and_clear, "estop"),
                                            (_pull_and_replug, "disconnected"),
                                            (_fault_and_clear, "fault")])
def test_a_latch_or_a_lost_link_cleared_between_passes_ends_the_play(tmp_path, act, state):
    passes, resumable, judged, pen_state = _play_with(tmp_path, act)
    assert pen_state is State.IDLE  # cleared (reconnected): nothing left latched to see
    assert [p.outcome for p in passes] == ["completed"], passes  # nothing played on by itself
    assert judged == state  # the session's outcome is the interruption's (exit 5, 6 or 4)
    assert resumable  # left open, to be resumed once checked


def test_an_estop_cleared_while_a_pass_is_set_up_is_that_pass_s_outcome(tmp_path):
    passes, resumable, _, _ = _play_with(tmp_path, _estop_and_clear, hook="begin_pass")
    assert [p.outcome for p in passes] == ["estop"], passes
    assert passes[0].impressions == 0  # its needle never started
    assert resumable
