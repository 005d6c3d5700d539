# ruff: noqa: F811  (fixtures, imported)
"""docs/integration.md: "Only `completed` means every planned pass completed (a pass played by
hand past the plan never stands for one)"; the sheet then says "how many of the plan's passes
were done". 563819e gave the summary `planned_done` and the sheet uses it, but `smp run`'s own
line ("Session ... INCOMPLETE: ...; N of M planned passes completed.", run_report.end_run and
resume.print_suspended, run_remote) still counts every completed record: plan [crown, top],
crown played twice by hand (the second filed past the plan), top never; `smp run --resume
--close` says "2 of 2 planned passes completed" above a sheet that says "1 of 2"."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.passlog import PassLog
from smpdevice.sessions.profiles import PlannedPass
from tests.smpdevice.cli.test_cli_run import data_dir  # noqa: F401 - a fixture
from tests.smpdevice.conftest import _fresh_logging, pen, sim  # noqa: F401 - fixtures
from tests.smpdevice.sessions.test_rev17_hand_pass import TWO_ZONES, _open

pytestmark = pytest.mark.virtual_time


def test_the_close_line_counts_the_plans_passes_only(data_dir, sim, pen):
    log = PassLog.open(data_dir / "passlog.sqlite")
    try:
        session = _open(pen, log, TWO_ZONES)
        session.run_pass(PlannedPass(zone="crown", duration_s=0.3))
        extra = session.run_pass(PlannedPass(zone="crown", duration_s=0.3))
        sid = session.session_id  # left open: top never played
    finally:
        log.close()
    assert extra.index == 2
    closed = CliRunner().invoke(main, ["run", "--resume", sid, "--close", "-t", "ana",
                                      "--port", "pensim://"])
    out = closed.output
    assert "1 of 2 planned passes were completed" in out, out[-900:]  # the sheet
    assert "2 of 2 planned passes" not in out, out[-900:]
