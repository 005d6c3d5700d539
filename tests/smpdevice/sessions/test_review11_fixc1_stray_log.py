"""Review 11 FIXC1, R5: one damaged or foreign `passlog-*.sqlite` in the data directory no longer
blocks resuming or closing a session of the healthy station log: it is named in one warning
line and left out, and then only an exact session id is taken (a prefix could also name a
session in the log that could not be read)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.errors import SmpError
from smpdevice.passlog import PassLog
from smpdevice.sessions.resume import ResumeError, find_session_log
from tests.smpdevice.sessions.test_session import open_session, short_profile

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def smp(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], env={"SMP_SIM_CLOCK": "virtual"})


def damaged(path: Path) -> Path:
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)
    return path


def foreign(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE other(x)")
    conn.commit()
    conn.close()
    return path


def test_resume_close_reads_around_a_damaged_pen_log():
    assert smp("calibrate", "--port", "pensim://", "--auto").exit_code == 0
    run = smp("run", EXAMPLES / "session1_base_density.yaml", "--port",
              "pensim://?faults=jam@4-5", "-t", "ana", "--screening",
              EXAMPLES / "screening_clear.yaml")
    assert run.exit_code == 4, run.output
    (session,) = json.loads(smp("sessions", "list", "--json").stdout)
    sid = session["session_id"]
    bad = damaged(Path(os.environ["SMP_DATA_DIR"]) / "passlog-SMP-BAD00001.sqlite")
    prefix = smp("run", "--resume", sid[:6], "--close", "--port", "pensim://")
    assert prefix.exit_code == 2 and "full id" in prefix.output, prefix.output
    closed = smp("run", "--resume", sid, "--close", "--port", "pensim://")
    assert "it is now closed" in closed.stdout, (closed.exit_code, closed.output)
    warnings = [line for line in closed.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(bad) in warnings[0], closed.stderr


@pytest.mark.parametrize("spoil", [damaged, foreign])
def test_find_session_log_leaves_out_a_log_that_cannot_be_opened(sim, pen, tmp_path, spoil):
    station = tmp_path / "passlog.sqlite"
    with PassLog.open(station) as log:
        sid = open_session(pen, log, short_profile(0.3, passes=1)).session_id
    bad = spoil(tmp_path / "passlog-SMP-BAD00001.sqlite")
    said: list[str] = []
    assert find_session_log([station, bad], sid, where="here", warn=said.append) == station
    assert len(said) == 1 and str(bad) in said[0] and "left out" in said[0]
    with pytest.raises(ResumeError, match="full id"):  # a prefix: the bad log may hold one too
        find_session_log([station, bad], sid[:5], where="here", warn=said.append)
    with pytest.raises(SmpError) as alone:  # given alone (--db): its own error, as before
        find_session_log([bad], sid, where="here", warn=said.append)
    assert not isinstance(alone.value, ResumeError)
