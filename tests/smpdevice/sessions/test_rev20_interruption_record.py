"""Rev 20 (session 19's known defect 2): a fault, E-stop or lost link latched and cleared
between passes ended play() with the right outcome, but a session then closed (an API client,
the web console: not left open) had a summary saying `estop` over passes all `completed`, and
nothing in the log said what came, or before which pass.

No pass was begun, so no pass record can say it (one would count as a pass in every reader);
the close summary, chained and signed, records it as it records the other session events
(`pass_calibrations`, `judged_completed`): `interruptions_between` [{state, reason,
before_index}], a list (review 20 R1: test_rev20_interruptions_between.py). Virtual time,
real simulator, real SQLite; the session still replays."""

from __future__ import annotations

import threading

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.control import PenController, State
from smpdevice.passlog import PassLog
from smpdevice.replay.runner import replay_session
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.sessions.test_session import CLEAR, short_profile
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time


def _estop_and_clear(sim, pen) -> None:
    pen.estop()
    pen.clear_faults()  # the technician, once the pen is safe


def _fault_and_clear(sim, pen) -> None:
    sim.inject("cartridge_removed")  # armed between passes: the pen latches a fault
    pen.wait_for_state(State.FAULT, timeout_s=5)
    sim.inject("cartridge_removed", on=False)
    pen.clear_faults()


def _closed_after(tmp_path, act=None):
    """A 3-pass session closed after play(); `act(sim, pen)` runs in another thread once,
    right after the first pass's end is recorded. Returns (log path, session id, summary)."""
    db = tmp_path / "passlog.sqlite"
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen,
          PassLog.open(db) as log):
        session = TreatmentSession.open(pen, log, short_profile(0.3, passes=3),
                                        technician="ana", screening=parse_screening(CLEAR))
        original, seen = log.end_pass, []

        def hooked(*args, **kwargs):
            original(*args, **kwargs)
            if act is not None and not seen:
                seen.append("acted")
                other = threading.Thread(target=act, args=(sim, pen))
                other.start()
                other.join(30)

        log.end_pass = hooked  # type: ignore[method-assign]
        session.play()
        summary, _sheet = session.close()
        return db, session.session_id, summary


@pytest.mark.parametrize(("act", "state"), [(_estop_and_clear, "estop"),
                                            (_fault_and_clear, "fault")])
def test_a_latch_cleared_between_passes_is_recorded_in_the_close(tmp_path, act, state):
    db, sid, summary = _closed_after(tmp_path, act)
    assert summary["outcome"] == state
    [interrupted] = summary["interruptions_between"]
    assert (interrupted["state"], interrupted["before_index"]) == (state, 1)
    assert interrupted["reason"]  # the latch's own words
    with PassLog(db, readonly=True) as log:
        assert [p.outcome for p in log.passes(sid)] == ["completed"]  # no pass for it
        assert log.session(sid).summary["interruptions_between"] == [interrupted]  # recorded
        assert log.verify() is None  # chained and signed as any summary
        report = replay_session(log, sid)
        assert report.match, report.difference
    shown = CliRunner().invoke(main, ["sessions", "show", sid, "--db", str(db), "--json"])
    assert shown.exit_code == 0, shown.output
    assert '"interruptions_between"' in shown.output


def test_a_session_never_interrupted_records_no_such_key(tmp_path):
    _db, _sid, summary = _closed_after(tmp_path)
    assert summary["outcome"] == "completed"
    assert "interruptions_between" not in summary
