# ruff: noqa: F811 (fixtures imported from the suite's conftests, used as arguments)
"""rev18d (review 18h, b18h).
`smp run` (at the pen's port) whose session's close committed but whose receipt
could not be appended to the anchors file (PassLogError "is recorded and closed"; review 18e:
such a close is ended and keeps its result). The run reports the session left open on
`log_error`, INCOMPLETE, with the commands to resume it, though the pass log holds it closed
(`completed`): a resume is then refused. Real CLI, simulator on virtual time, real SQLite;
the anchors path made a symbolic link as the session closes (the one hook)."""

from __future__ import annotations

from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.passlog import PassLog
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.cli.conftest import sim_virtual_time  # noqa: F401 (a fixture)
from tests.smpdevice.cli.test_cli_run import (  # noqa: F401 (data_dir: a fixture)
    SCREENING,
    calibrate_default_pen,
    data_dir,
    short_profile,
)


def test_a_run_whose_close_is_recorded_never_says_it_is_left_open(
        data_dir, tmp_path, sim_virtual_time, monkeypatch):
    monkeypatch.setenv("SMP_KEY_DIR", str(tmp_path.with_name(tmp_path.name + "-keys")))
    calibrate_default_pen(data_dir)
    anchors = data_dir / "passlog.anchors.jsonl"
    real_close = TreatmentSession.close

    def close_unanchored(session, *args, **kwargs):
        anchors.unlink(missing_ok=True)
        anchors.symlink_to(tmp_path / "elsewhere.jsonl")
        return real_close(session, *args, **kwargs)

    monkeypatch.setattr(TreatmentSession, "close", close_unanchored)
    result = CliRunner().invoke(main, ["run", str(short_profile(tmp_path)), "-t", "ana",
                                       "--screening", str(SCREENING), "--port", "pensim://"])
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        (session,) = log.sessions()
    assert session.closed_at is not None and session.summary["outcome"] == "completed"
    assert "--resume" not in result.output, result.output  # was: how to resume a closed one
    assert "left open" not in result.output, result.output
    assert result.exit_code == 3, result.output  # a log error (README, exit status 3)
    assert "receipt" in result.output and "INCOMPLETE" not in result.output, result.output
