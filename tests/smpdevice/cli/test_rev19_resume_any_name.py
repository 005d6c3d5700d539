"""`smp run --resume SESSION` without --db finds a session recorded with `smp run --db <data
dir>/chair2.sqlite`: the data directory's pass logs are found by content, whatever the name
(records.logset, the one finder of resume, `smp sessions` and the service). It looked only at
`passlog*.sqlite` names: "no session", resumable by id only with --db."""

from __future__ import annotations

import pytest

from simulators import PenSimulator
from smpdevice.passlog import PassLog
from tests.smpdevice.cli.test_cli_resume import jam_when_running, smp
from tests.smpdevice.cli.test_cli_run import (
    SCREENING,
    calibrate_default_pen,
    data_dir,  # noqa: F401 - a fixture
    short_profile,
)

pytestmark = pytest.mark.realtime  # a named pen on the wall clock, jammed by a thread


def test_a_session_in_a_log_of_any_name_is_resumed_without_db(data_dir, tmp_path):  # noqa: F811
    calibrate_default_pen(data_dir)
    chair2 = data_dir / "chair2.sqlite"
    with PenSimulator(seed=0, name="r19-any-name") as sim:
        thread = jam_when_running(sim)
        ran = smp("run", str(short_profile(tmp_path)), "-t", "ana", "--screening",
                  str(SCREENING), "--port", sim.url, "--db", str(chair2))
        thread.join(timeout=60)
        assert ran.exit_code == 4, ran.output
    with PassLog(chair2, readonly=True) as log:
        (session,) = log.sessions()
    sid = session.session_id
    assert not (data_dir / "passlog.sqlite").exists()  # only chair2.sqlite holds it
    closed = smp("run", "--resume", sid[:8], "--close", "--port", "pensim://")
    assert closed.exit_code == 4, closed.output  # was: exit 2, no session {sid[:8]!r}
    assert f"Session {sid} is closed as it stands" in closed.output
    with PassLog(chair2, readonly=True) as log:
        assert log.session(sid).summary["outcome"] == "fault"
        assert log.verify() is None
