"""close() or suspend() from another thread (an "End session" button) racing play() (review
15b). docs/integration.md: called from another thread while play() runs a pass there, close()
(and suspend()) "stops the needle, waits ... until play() has recorded that pass, then ends the
session as `interrupted`".
- The button pressed once the pass was begun but before its needle started: close()'s stop met
  an ARMED pen, then play() started the needle, which ran the whole pass after close() had
  stopped it (a 12 s pass: close() gave up after 10 s saying "the needle was stopped" while it
  ran). The start now loses to a stop asked since the pass began (`stops_asked`).
"""

from __future__ import annotations

import threading

import pytest

from smpdevice.control import State
from tests.smpdevice.sessions.test_session import open_session, short_profile

pytestmark = pytest.mark.virtual_time


@pytest.mark.parametrize("end", ["close", "suspend"])
def test_end_while_the_pass_arms_never_lets_its_needle_start(sim, pen, passlog, end):
    session = open_session(pen, passlog, short_profile(2.0, passes=1))
    ended: dict[str, object] = {}
    closer = threading.Thread(target=lambda: ended.setdefault("r", getattr(session, end)()))
    epoch = {}

    def should_stop() -> bool:  # a UI callback, asked once the pass is armed (begun)
        if session._open_pass is not None and not closer.is_alive() and "r" not in ended:
            epoch["before"] = pen.stops_asked
            closer.start()  # the "End session" button, pressed now
            # the UI answers once the button's stop went out (a condition, bounded)
            for _ in range(5000):
                if pen.stops_asked != epoch["before"]:
                    break
                threading.Event().wait(0.001)
        return False

    results = session.play(should_stop=should_stop)
    closer.join(30)
    assert pen.stops_asked != epoch["before"], "close() never stopped"
    [record] = passlog.passes(session.session_id)
    # the needle must not have run the pass out after close() stopped it
    assert results[0].outcome.value == "stopped", (results[0].outcome, record.strokes)
    assert record.strokes == 0
    assert pen.state is State.IDLE


def test_close_that_gives_up_says_stopped_while_the_needle_runs(sim, pen, passlog):
    """A 12 s pass: close() waits its 10 s and raises StateError "the needle was stopped",
    while the needle it never stopped is running."""
    session = open_session(pen, passlog, short_profile(12.0, passes=1))
    seen: dict[str, object] = {}

    def end_session_button() -> None:
        try:
            session.close()
        except Exception as exc:  # the StateError after its 10 s wait
            seen["error"], seen["state"] = exc, pen.state

    closer = threading.Thread(target=end_session_button)
    before = {}

    def should_stop() -> bool:
        if session._open_pass is not None and not closer.is_alive() and not seen:
            before["epoch"] = pen.stops_asked
            closer.start()
            for _ in range(5000):
                if pen.stops_asked != before["epoch"]:
                    break
                threading.Event().wait(0.001)
        return False

    session.play(should_stop=should_stop)
    closer.join(30)
    if "error" in seen:  # it gave up: the needle must really have been stopped by then
        assert "needle was stopped" in str(seen["error"])
        assert seen["state"] is not State.RUNNING, "close() said stopped; the needle ran"
    [record] = passlog.passes(session.session_id)
    assert record.outcome == "stopped" and record.strokes == 0
