"""REV2B-7: `smp run --service` whose pen calibration expires between passes ends as `smp run`
at the pen's port does (README "Resuming"): INCOMPLETE, exit 7, left open, its summary naming
the expiry, the first step the service's recalibration, then the resume through the service.
A real in-process service (real sockets, real SQLite), the simulator; the calibration's wall
clock moved 31 days on once the service's log holds a finished pass."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest
from click.testing import CliRunner

import smpdevice.control.calibration as calibration_module
from smpdevice.cli import main
from smpdevice.passlog import PassLog
from tests.smpdevice.cli.test_cli_resume import served  # noqa: F401 - a fixture
from tests.smpdevice.cli.test_cli_run import (  # noqa: F401 - a fixture
    SCREENING,
    data_dir,
    short_profile,
)

REAL_TODAY = calibration_module.today_utc


def _a_month_on_after_the_first_pass(log_file):
    def today():
        conn = None
        try:
            conn = sqlite3.connect(f"file:{log_file}?mode=ro", uri=True)
            ended = conn.execute("SELECT count(*) FROM records WHERE kind = 'pass_end'"
                                 ).fetchone()[0]
        except sqlite3.Error:  # not created yet
            ended = 0
        finally:
            if conn is not None:
                conn.close()
        return REAL_TODAY() + timedelta(days=31 if ended else 0)
    return today


# realtime: test_cli_resume.py's `served` (a realtime file): passes through a service on a
# wall-clock pen with 1 s leases, which a loaded machine can starve (review 12)
@pytest.mark.realtime
def test_a_lapse_through_the_service_names_the_expiry_and_the_service_recalibration(
        data_dir, tmp_path, served, monkeypatch):  # noqa: F811
    _, handle = served
    url = handle.url
    monkeypatch.setattr(calibration_module, "today_utc",
                        _a_month_on_after_the_first_pass(data_dir / "passlog.sqlite"))
    result = CliRunner().invoke(main, ["run", str(short_profile(tmp_path)), "-t", "ana",
                                       "--screening", str(SCREENING), "--service", url])
    assert result.exit_code == 7, result.output
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        (session,) = log.sessions()
        done = [str(p.outcome) for p in log.passes(session.session_id)]
    sid = session.session_id
    assert session.closed_at is None and done == ["completed"], (done, result.output)
    lines = [" ".join(line.split()) for line in result.output.splitlines()]
    (summary,) = [line for line in lines if line.startswith(f"Session {sid} INCOMPLETE")]
    assert "ended early: pass 2 was not begun" not in summary  # the cause itself, as locally
    assert "ended early: the calibration of pen" in summary and "expired on" in summary
    assert "1 of 4 planned passes completed" in summary and "left OPEN" in summary
    # Recalibrating is the service's own (its pen, its calibrations), never the pen's port.
    recalibrate = f"smp calibrate --service {url} --auto"
    assert f"Recalibrate: {recalibrate}" in summary, summary
    assert "--port" not in summary, summary
    steps = [line for line in lines if line.startswith("Next:")]
    assert steps[0] == ("Next: Recalibrate the pen (the session stays open meanwhile): "
                        + recalibrate), steps
    assert any(f"smp run --resume {sid} --service {url} -t ana" in s for s in steps), steps
    assert "stopped by the controller" not in result.output
