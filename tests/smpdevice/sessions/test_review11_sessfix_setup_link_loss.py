"""Review 11, F9: a pen that stops answering while a pass is set up (its DISARM, SET_SETPOINTS or
ARM unanswered after every retry) ends play() as a pen lost mid-pass does: no error, nothing new
recorded, the plan kept; the session's outcome is `link_lost`, so `smp run` (and the service,
through `left_resumable`) leave it OPEN, to be resumed, and `smp run` exits 6.

Before the fix the LinkTimeout escaped play(): `smp run` closed the session `incomplete` with no
summary nor sheet and exited 2. On the simulator's virtual clock; the lost frames are the
simulator's own link faults (real bytes, real controller)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from firmware_protocol.codes import MsgType
from smpdevice.cli import main
from smpdevice.control import State
from smpdevice.control.states import StateError
from smpdevice.passlog import PassLog, PassOutcome
from smpdevice.sessions.resume import left_resumable, resume_session
from tests.smpdevice.sessions.test_session import EXAMPLES, open_session, short_profile

pytestmark = pytest.mark.virtual_time


def lose_after_first_pass(sim, *types: MsgType):
    """An on_progress callback: once pass 1 has run a while, the pen hears no more of
    `types` (its reports still flow: only the host's frames are lost)."""
    def on_progress(p) -> None:
        if p.index == 0 and p.elapsed_s >= 0.2:
            sim.link.drop_inbound(*(int(t) for t in types))
    return on_progress


@pytest.mark.parametrize("lost", [MsgType.ARM, MsgType.SET_SETPOINTS, MsgType.DISARM])
def test_an_unanswered_set_up_ends_play_without_an_error_and_leaves_the_session_resumable(
        sim, pen, passlog, lost):
    profile = short_profile(0.3, passes=3)
    session = open_session(pen, passlog, profile)
    results = session.play(on_progress=lose_after_first_pass(sim, lost))  # no LinkTimeout
    assert [r.outcome for r in results] == [PassOutcome.completed]
    assert [i for i, _ in session.remaining] == [1, 2], "the rest of the plan is kept"
    assert pen.state is not State.DISCONNECTED  # the pen still reports: only deaf
    assert left_resumable(session, stop_asked=False), "the service leaves it open"
    with pytest.raises(StateError, match="stopped answering while pass 2 was set up"):
        session.play()  # going on needs a resume: its checks and its record
    summary = session.suspend()
    assert summary["outcome"] == "link_lost" and session.outcome.exit_code == 6
    sid = session.session_id
    assert passlog.session(sid).closed_at is None, "left open, to be resumed"
    assert [p.outcome for p in passlog.passes(sid)] == ["completed"], "nothing new recorded"

    sim.link.clear_inbound()  # the cable is fixed
    if pen.state is State.ARMED:  # its DISARM was lost: the controller still says armed
        pen.disarm()
    resumed = resume_session(pen, passlog, sid, technician="ana")
    assert [i for i, _ in resumed.remaining] == [1, 2]
    assert [r.outcome for r in resumed.play()] == [PassOutcome.completed] * 2
    summary, _ = resumed.close()
    assert summary["outcome"] == "completed" and passlog.verify() is None


def test_closed_after_a_set_up_loss_the_record_says_link_lost(sim, pen, passlog):
    session = open_session(pen, passlog, short_profile(0.3, passes=2))
    session.play(on_progress=lose_after_first_pass(sim, MsgType.ARM))
    summary, sheet = session.close()  # an integrator that closes rather than suspends
    assert summary["outcome"] == "link_lost"
    assert passlog.session(session.session_id).summary["outcome"] == "link_lost"
    assert "INCOMPLETE" in sheet


def test_smp_run_with_a_pen_that_stops_answering_arm_leaves_the_session_open_exit_6(tmp_path):
    env = {"SMP_SIM_CLOCK": "virtual"}
    runner = CliRunner()
    calibrated = runner.invoke(main, ["calibrate", "--port", "pensim://", "--auto"], env=env)
    assert calibrated.exit_code == 0, calibrated.output
    db = tmp_path / "passlog.sqlite"
    result = runner.invoke(main, [
        "run", str(EXAMPLES / "session1_base_density.yaml"), "--port",
        "pensim://?faults=drop_type=ARM", "-t", "ana", "--screening",
        str(EXAMPLES / "screening_clear.yaml"), "--db", str(db)], env=env)
    assert result.exit_code == 6, (result.exit_code, result.output)  # a lost pen (README)
    assert "INCOMPLETE: ended because the pen was lost" in result.stdout
    assert "left OPEN" in result.stdout and "smp run --resume S" in result.stdout
    assert "Traceback" not in result.output and "error:" not in result.stderr
    with PassLog.open(db, readonly=True) as log:
        (record,) = log.sessions()
        assert record.closed_at is None, "a lost pen leaves the session open (README)"
        assert log.passes(record.session_id) == []  # no pass began: none recorded
