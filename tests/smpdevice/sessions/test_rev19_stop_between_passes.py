"""Review 19 (safety): a Stop asked while a session sets up its next pass wins over that pass.

docs/safety.md, "A stop wins over any start still on its way": "a start that began before the
latest one never sends NEEDLE_START"; "A stop works from anywhere, a state listener included".
A session took the pen's stop count only when it recorded the pass's begin, after that pass's
zone, setpoints and arm: a `stop_needle()` asked while it armed its second pass (from the state
listener, at the pen's ARM), or between two passes (another thread, as the first pass's end is
recorded), was forgotten, and the next passes ran their needle and completed. Virtual time,
real simulator, real pass log."""

from __future__ import annotations

import threading

import pytest

from smpdevice.control import PenController, State
from smpdevice.passlog import PassLog
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.sessions.test_session import CLEAR, short_profile
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time


def test_a_stop_while_the_next_pass_arms_keeps_its_needle_from_starting(tmp_path):
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen,
          PassLog.open(tmp_path / "passlog.sqlite") as log):
        session = TreatmentSession.open(pen, log, short_profile(0.3, passes=3),
                                        technician="ana", screening=parse_screening(CLEAR))
        arms: list[int] = []

        def on_state(old: State, new: State, reason: str) -> None:
            if old is State.IDLE and new is State.ARMED:
                arms.append(pen.stops_asked)
                if len(arms) == 2:  # the second pass armed: the operator presses Stop
                    pen.stop_needle()

        pen.add_state_listener(on_state)
        session.play()
        outcomes = [p.outcome for p in log.passes(session.session_id)]
        stop_requested = session.stop_requested
    assert len(arms) >= 2
    assert outcomes[0] == "completed"
    assert "completed" not in outcomes[1:], outcomes  # no needle ran after the Stop
    assert stop_requested  # closed as the technician's stop (interrupted)


def test_a_stop_between_two_passes_ends_the_play_before_the_next_is_set_up(tmp_path):
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen,
          PassLog.open(tmp_path / "passlog.sqlite") as log):
        session = TreatmentSession.open(pen, log, short_profile(0.3, passes=3),
                                        technician="ana", screening=parse_screening(CLEAR))
        end_pass, asked = log.end_pass, []

        def then_stop(*args, **kwargs):
            ended = end_pass(*args, **kwargs)
            if not asked:  # as the first pass's end is recorded: a Stop button elsewhere
                asked.append(pen.stops_asked)
                other = threading.Thread(target=pen.stop_needle)
                other.start()
                other.join(30)
            return ended

        log.end_pass = then_stop  # type: ignore[method-assign]
        session.play()
        outcomes = [p.outcome for p in log.passes(session.session_id)]
    assert pen.stops_asked > asked[0]
    assert outcomes == ["completed"], outcomes  # nothing set up, nothing recorded after it
    assert session.stop_requested


def test_passes_that_complete_by_themselves_are_no_stop_of_the_session(tmp_path):
    # the session's own stops (its planned ends) never count as another caller's Stop
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen,
          PassLog.open(tmp_path / "passlog.sqlite") as log):
        session = TreatmentSession.open(pen, log, short_profile(0.3, passes=3),
                                        technician="ana", screening=parse_screening(CLEAR))
        session.play()
        outcomes = [p.outcome for p in log.passes(session.session_id)]
    assert outcomes == ["completed"] * 3
    assert not session.stop_requested
