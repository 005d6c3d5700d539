"""Review 18: close()/suspend() of one session from two threads at once (an "End session"
button pressed twice) end it once: one NEEDLE_STOP is sent, the recording replays as `match`,
the second caller gets the first call's result (the same ending) or StateError (the other
ending). Called again afterwards the same holds; `close(today=...)` is checked before the
close is recorded, so the aftercare sheet is never lost."""

from __future__ import annotations

import datetime as dt
import sys
import threading

import pytest
import structlog

from firmware_protocol.codes import MsgType
from smpdevice.checks import InvalidArgument
from smpdevice.control.states import StateError
from smpdevice.replay.runner import replay_session
from tests.smpdevice.sessions.test_session import open_session, short_profile
from tests.smpdevice.virtual_time import wall_until

pytestmark = pytest.mark.virtual_time


def _waiting_to_end(threads: list[threading.Thread]) -> bool:
    """One of `threads` is waiting for the other's ending to finish (session_end.py)."""
    frames = sys._current_frames()
    return any(frame is not None and frame.f_code.co_name == "_ended_once"
               for frame in (frames.get(t.ident) for t in threads if t.ident is not None))


def both_at_once(sim, pen, session, first: str, second: str) -> dict[str, object]:
    """session.<first>() and session.<second>() from two threads at once: the pen answers
    NEEDLE_STOP 50 ms late (pen time) and virtual time stands still until one call asked its
    stop and the other asked one too (the old code) or waits for the first to end (now)."""
    outcomes: dict[str, object] = {}
    sim.link.delay_inbound(0.05, MsgType.NEEDLE_STOP)
    asked = pen.stops_asked

    def call(key: str, name: str) -> None:
        try:
            outcomes[key] = getattr(session, name)()
        except Exception as exc:
            outcomes[key] = exc
    threads = [threading.Thread(target=call, args=(f"1{first}", first)),
               threading.Thread(target=call, args=(f"2{second}", second))]
    with sim.time.held():
        for thread in threads:
            thread.start()
        wall_until(lambda: pen.stops_asked >= asked + 2 or (
            pen.stops_asked >= asked + 1 and _waiting_to_end(threads)), "both calls under way")
    for thread in threads:
        thread.join(30)
    sim.link.clear_inbound()
    return outcomes


@pytest.mark.parametrize("first, second", [("close", "close"), ("suspend", "suspend"),
                                           ("suspend", "close")])
def test_a_session_ended_twice_at_once_sends_one_stop_and_still_replays(
        sim, pen, passlog, first, second):
    session = open_session(pen, passlog, short_profile(0.2, passes=2))
    session.play()
    asked = pen.stops_asked
    with structlog.testing.capture_logs() as logs:
        outcomes = both_at_once(sim, pen, session, first, second)
    assert pen.stops_asked == asked + 1
    assert not [e for e in logs if e["log_level"] == "error"], logs
    results = list(outcomes.values())
    if first == second:  # the same ending: both get its result
        assert results[0] == results[1] and not isinstance(results[0], Exception)
    else:  # one of them ended it; the other was refused
        assert sum(isinstance(r, StateError) for r in results) == 1, results
    report = replay_session(passlog, session.session_id)
    assert report.match, report.difference


def test_ending_again_afterwards_gives_the_same_result_or_a_state_error(sim, pen, passlog):
    session = open_session(pen, passlog, short_profile(0.2, passes=1))
    session.play()
    summary, sheet = session.close()
    asked = pen.stops_asked
    assert session.close() == (summary, sheet)
    with pytest.raises(StateError, match="already closed"):
        session.suspend()
    assert pen.stops_asked == asked
    other = open_session(pen, passlog, short_profile(0.2, passes=1))
    left = other.suspend()
    assert other.suspend() == left
    with pytest.raises(StateError, match="already suspended.*--resume"):
        other.close()
    assert passlog.session(other.session_id).closed_at is None


@pytest.mark.parametrize("today", ["2026-12-01", 20261201, True, dt.date.max,
                                   dt.date(9999, 1, 1)],
                         ids=["text", "number", "bool", "date_max", "near_max"])
def test_a_bad_today_is_refused_before_the_session_is_closed(sim, pen, passlog, today):
    session = open_session(pen, passlog, short_profile(0.2, passes=1))
    session.play()
    with pytest.raises(InvalidArgument, match="today="):
        session.close(today=today)
    assert passlog.session(session.session_id).closed_at is None  # still open: close again
    summary, sheet = session.close(today=dt.datetime(2026, 12, 1, 10, 30))
    assert summary["outcome"] == "completed" and "2026-12-01" in sheet
    assert "2026-12-05" in sheet  # kept dry until: counted from that day
