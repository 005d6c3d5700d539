"""Review 15 A11: a calibration installed while a session is open (`set_calibration` between
passes, which docs/integration.md describes) drove the next passes, but nothing in the pass
log named it: pass 2's measured depth was through a calibration the log never mentioned.

Now each pass that ran on a calibration other than the session's own is listed in the close
summary's `pass_calibrations` (pass id, index, calibration id, offset_mm, gain); a session
that never swapped has no such key (summaries as before).
"""

from __future__ import annotations

import pytest

from smpdevice.control.calibration import Calibration
from tests.smpdevice.sessions.test_session import open_session, short_profile

pytestmark = pytest.mark.virtual_time


def test_the_log_names_the_calibration_that_drove_each_pass(sim, pen, passlog):
    profile = short_profile(0.2, passes=3)
    session = open_session(pen, passlog, profile)
    opened_with = pen.calibration.calibration_id
    session.run_pass(profile.plan[0])
    pen.disarm()
    other = Calibration.linear(pen_serial=sim.serial, technician="bo",
                               offset_mm=-sim.model.offset_mm + 0.2, gain=sim.model.gain)
    pen.set_calibration(other)  # accepted mid-session
    session.run_pass(profile.plan[1])
    session.run_pass(profile.plan[2])
    session.close()
    record = passlog.session(session.session_id)
    passes = passlog.passes(session.session_id)
    assert record.calibration_id == opened_with
    assert record.summary["pass_calibrations"] == [
        {"pass_id": p.pass_id, "index": i, "calibration_id": other.calibration_id,
         "offset_mm": other.offset_mm, "gain": other.gain}
        for i, p in list(enumerate(passes))[1:]]
    assert passlog.verify() is None  # chained and signed as any summary


def test_a_session_on_one_calibration_records_no_swap(sim, pen, passlog):
    session = open_session(pen, passlog, short_profile(0.2, passes=1))
    session.play()
    summary, _sheet = session.close()
    assert "pass_calibrations" not in summary
    assert "pass_calibrations" not in passlog.session(session.session_id).summary
