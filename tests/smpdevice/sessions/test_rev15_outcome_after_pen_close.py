"""Review 15 A12: a session stopped by its `should_stop` and closed after the program closed
the pen on purpose (`with PenController.connect(...)` ended first) was recorded as
`link_lost` (exit 6) instead of `interrupted` (exit 130).

Promised: docs/integration.md "Session outcomes and exit codes": `link_lost` is "the pen was
lost (cable, power)"; `interrupted` "when should_stop() returned True, or Ctrl-C".
"""

from __future__ import annotations

import pytest

from smpdevice.control import State
from tests.smpdevice.sessions.test_session import open_session, short_profile

pytestmark = pytest.mark.virtual_time


def test_a_stopped_session_closed_after_the_pen_is_interrupted_not_link_lost(sim, pen, passlog):
    session = open_session(pen, passlog, short_profile(0.2, passes=2))
    session.play(should_stop=lambda: len(session.results) >= 1)  # Stop after pass 1
    pen.close()  # the program's `with` block for the pen ended first
    summary, _sheet = session.close()
    assert summary["outcome"] == "interrupted", summary["outcome"]


def test_a_pen_lost_before_the_program_closes_it_is_still_link_lost(sim, pen, passlog):
    session = open_session(pen, passlog, short_profile(0.2, passes=2))
    session.play(should_stop=lambda: len(session.results) >= 1)
    sim.disconnect()  # the cable: lost first
    sim.time.wait_until(lambda: pen.state is State.DISCONNECTED, 5)
    pen.close()  # then the program's `with` block ends
    summary, _sheet = session.close()
    assert summary["outcome"] == "link_lost", summary["outcome"]


def test_a_pen_the_program_closes_mid_pass_is_no_lost_link(sim, pen, passlog):
    """`pen.close()` from another thread while a pass runs (the program shutting down): the
    pass ends `stopped` (the controller stopped and disarmed it), not `link_lost`."""
    import threading

    session = open_session(pen, passlog, short_profile(2.0, passes=2))
    before = pen.telemetry.strokes

    def shut_down() -> None:
        sim.time.wait_until(lambda: pen.state is State.RUNNING
                            and pen.telemetry.strokes > before + 5, 5)
        pen.close()

    closer = threading.Thread(target=shut_down)
    closer.start()
    [result] = session.play()
    closer.join(30)
    assert result.outcome.value == "stopped", result.outcome
    summary, _sheet = session.close()
    assert summary["outcome"] != "link_lost", summary["outcome"]
