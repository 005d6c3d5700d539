"""Review 15 W2: `smp run --resume` (and `--close`) print "checked against ..." first, then
`Resuming session ...` (or the close's summary), as README says; the `warning:` of a pass log
left out (it cannot be read) and each `Note:` (a pass cut by a host crash no pen counted)
follow them. A refused resume prints its warnings, and no envelope line. On virtual time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.passlog import PassLog
from tests.smpdevice.cli.test_cli_resume_envelope_line import interrupted
from tests.smpdevice.cli.test_cli_run import (
    SCREENING,
    calibrate_default_pen,
    data_dir,  # noqa: F401 - a fixture
)

pytestmark = pytest.mark.usefixtures("sim_virtual_time")


def smp(*args: str):
    return CliRunner().invoke(main, list(args))


def _bad_pen_log(data_dir: Path) -> Path:  # noqa: F811
    bad = data_dir / "passlog-SMP-BAD00001.sqlite"  # a pen's log that cannot be read
    bad.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)
    return bad


def _crashed_pass(data_dir: Path, sid: str) -> None:  # noqa: F811
    """A pass begun and never ended (the host died): the next writer ends it as crashed."""
    with PassLog(data_dir / "passlog.sqlite") as log:
        index = max(p.index for p in log.passes(sid))
        log.begin_pass(sid, index=index, zone="top", depth_mm=0.4, speed_hz=90.0,
                       duty_pct=50.0, period_ms=11.0, started_at=datetime.now(UTC))


def test_a_close_says_its_envelope_first_then_its_summary_warning_and_note(
        data_dir, tmp_path):  # noqa: F811
    calibrate_default_pen(data_dir)
    sid = interrupted(data_dir, tmp_path)
    _crashed_pass(data_dir, sid)
    bad = _bad_pen_log(data_dir)
    closed = smp("run", "--resume", sid, "--close", "--port", "pensim://")
    assert closed.exit_code != 0 or "closed" in closed.output, closed.output
    lines = closed.output.splitlines()  # stdout and stderr, in the order written
    assert lines[0].startswith("checked against the built-in envelope"), lines[:4]
    assert lines[1].startswith(f"Session {sid} is closed as it stands"), lines[:4]
    assert lines[2].startswith("warning:") and str(bad) in lines[2], lines[:4]
    assert lines[3].startswith("  Note: pass ") and "host crash" in lines[3], lines[:4]


def test_a_resume_says_its_envelope_first_and_a_refusal_still_warns(
        data_dir, tmp_path):  # noqa: F811
    calibrate_default_pen(data_dir)
    sid = interrupted(data_dir, tmp_path)
    bad = _bad_pen_log(data_dir)
    refused = smp("run", "--resume", sid, "-t", "bo", "--port", "pensim://?seed=5",
                  "--screening", str(SCREENING))  # another pen
    assert refused.exit_code != 0 and "checked against" not in refused.output, refused.output
    assert any(line.startswith("warning:") and str(bad) in line
               for line in refused.output.splitlines()), refused.output
    resumed = smp("run", "--resume", sid, "-t", "bo", "--port", "pensim://", "--screening",
                  str(SCREENING), "--rescreen-after-min", "0")
    assert resumed.exit_code == 0, resumed.output
    lines = resumed.output.splitlines()
    assert lines[0].startswith("checked against the built-in envelope"), lines[:3]
    assert lines[1].startswith(f"Resuming session {sid}"), lines[:3]
    assert lines[2].startswith("warning:") and str(bad) in lines[2], lines[:3]
