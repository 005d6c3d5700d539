"""Review 15 A9: `close()` from another thread (a UI's "End session" button) while `play()`
runs a pass stopped the needle, then failed with PassLogError "still has 1 pass(es) in
progress", leaving the session open (outcome None) though the log was fine.

Promised: docs/integration.md: `close()` "disarms, records the summary ... and returns it";
PassLogError is for a log that cannot be written. Now close() stops the pass, waits (on the
pen's clock, bounded) until play() recorded it, then closes: `interrupted`.
"""

from __future__ import annotations

import threading

import pytest

from smpdevice.control import State
from smpdevice.control.states import StateError
from tests.smpdevice.sessions.test_session import open_session, short_profile

pytestmark = pytest.mark.virtual_time


@pytest.mark.parametrize("end", ["close", "suspend"])
def test_ending_from_another_thread_mid_pass_records_the_pass_first(sim, pen, passlog, end):
    session = open_session(pen, passlog, short_profile(2.0, passes=2))
    ended: dict[str, object] = {}
    before = pen.telemetry.strokes

    def end_session_button() -> None:  # pressed once the needle made a few strokes
        sim.time.wait_until(lambda: pen.state is State.RUNNING
                            and pen.telemetry.strokes > before + 5, 5)
        try:
            ended["result"] = getattr(session, end)()
        except Exception as exc:  # reported by the assertion below
            ended["error"] = exc

    button = threading.Thread(target=end_session_button)
    button.start()
    results = session.play()
    button.join(30)
    assert not button.is_alive()
    assert "error" not in ended, ended.get("error")
    assert [r.outcome.value for r in results] == ["stopped"]
    [record] = passlog.passes(session.session_id)
    assert record.outcome == "stopped" and record.strokes > 0
    assert session.outcome is not None and session.outcome.value == "interrupted"
    assert pen.state is State.IDLE
    closed_at = passlog.session(session.session_id).closed_at
    assert (closed_at is not None) is (end == "close")


def test_close_from_the_play_callback_itself_is_refused_and_changes_nothing(sim, pen, passlog):
    """From on_progress (play()'s own thread) the pass could not be recorded first."""
    session = open_session(pen, passlog, short_profile(0.5, passes=1))
    refused: list[Exception] = []

    def on_progress(progress) -> None:
        if not refused:
            try:
                session.close()
            except StateError as exc:
                refused.append(exc)

    [result] = session.play(on_progress=on_progress)
    assert refused and "should_stop" in str(refused[0])
    assert result.outcome.value == "completed"  # the pass went on untouched
    summary, _sheet = session.close()
    assert summary["outcome"] == "completed"
