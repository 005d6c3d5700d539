# ruff: noqa: F811  (fixtures, imported)
"""docs/integration.md / README: a pass played by hand that is no pass of the plan is filed
past the plan and "never stands for one"; the aftercare sheet of an incomplete session says
"N of M planned passes were completed" (README "When a session does not complete").

Plan [crown, top]; crown played twice by hand (the second filed past the plan), top never:
the session is rightly INCOMPLETE, but the client's sheet says "2 of 2 planned passes were
completed": `session_incomplete` counts every completed record (the pass past the plan too)
against the plan's length."""
from __future__ import annotations

import pytest

from smpdevice.passlog import PassLog
from smpdevice.sessions.profiles import PlannedPass
from tests.smpdevice.conftest import _fresh_logging, pen, sim  # noqa: F401 - fixtures
from tests.smpdevice.sessions.test_rev17_hand_pass import TWO_ZONES, _open

pytestmark = pytest.mark.virtual_time


def test_a_pass_past_the_plan_is_not_counted_as_a_planned_one_on_the_sheet(sim, pen, tmp_path):
    log = PassLog.open(tmp_path / "own.sqlite")
    try:
        session = _open(pen, log, TWO_ZONES)
        session.run_pass(PlannedPass(zone="crown", duration_s=0.3))
        extra = session.run_pass(PlannedPass(zone="crown", duration_s=0.3))
        summary, sheet = session.close()
    finally:
        log.close()
    assert extra.index == 2  # past the plan, as documented
    assert summary["outcome"] == "incomplete"
    assert "2 of 2 planned passes" not in sheet, sheet
    assert "1 of 2 planned passes were completed" in sheet, sheet
