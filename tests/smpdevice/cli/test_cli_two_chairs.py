"""Two chairs on one PC (issue 16, item 5): two `smp run` processes drive two pens at the same
time in one data directory. The station's pass log keeps one writer; the second run writes its
pen's own log, and `smp sessions` reads both as one, each pass attributed to its pen.

Chair A is a real process (it holds the station's log under its own pid); chair B and the
`smp sessions` commands run in this process (another pid, as a second chair's would be)."""

from __future__ import annotations

import json
import os
import signal
import traceback
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from simulators.pen_model import PenModel
from smpdevice.calibration.store import CalibrationStore
from smpdevice.cli import main
from smpdevice.control.calibration import Calibration
from smpdevice.outcomes import ExitCode
from tests.smpdevice.cli.test_cli_run import SCREENING, short_profile
from tests.smpdevice.cli.test_cli_service import Proc
from tests.smpdevice.conftest import fit_points


def smp(*args: str, env: dict[str, str]) -> SimpleNamespace:
    """`smp ARGS` in this process, with `env`'s SMP_ settings."""
    result = CliRunner().invoke(main, list(args),
                                env={k: v for k, v in env.items() if k.startswith("SMP_")})
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))  # a crash, shown
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=stderr)


def calibrate(data_dir, seed: int) -> None:
    """Store the true calibration of the pen `pensim://?seed=SEED` starts."""
    model = PenModel(seed=seed)
    CalibrationStore(data_dir / "calibrations.sqlite").save(Calibration.linear(
        pen_serial=model.serial, technician="ana", offset_mm=-model.offset_mm, gain=model.gain,
        **fit_points(-model.offset_mm, model.gain)))


# realtime: chair A is `smp run` in a child process, its pen on the wall clock, playing
# while chair B runs, then signalled
@pytest.mark.realtime
def test_two_runs_on_two_pens_record_into_one_readable_set_of_logs(tmp_path):
    data = tmp_path / "data"
    env = {**os.environ, "SMP_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1",
           "SMP_LOG_LEVEL": "error"}
    chair_a, chair_b = "pensim://?seed=1", "pensim://?seed=2"
    data.mkdir()
    calibrate(data, seed=1)
    calibrate(data, seed=2)
    (tmp_path / "a").mkdir()
    long_profile = short_profile(tmp_path / "a", seconds="60")  # chair A: still running...
    quick_profile = short_profile(tmp_path, seconds="0.3")       # ...while chair B's ends

    a = Proc("run", str(long_profile), "--port", chair_a, "-t", "ana", "--screening",
             str(SCREENING), env=env)
    try:
        a.wait_for("Session S")  # chair A holds the station's log and plays its first pass
        explicit = smp("run", str(quick_profile), "--port", chair_b, "-t", "bea", "--screening",
                       str(SCREENING), "--db", str(data / "passlog.sqlite"), env=env)
        assert explicit.returncode != 0 and "is in use by pid" in explicit.stderr  # no fallback
        b = smp("run", str(quick_profile), "--port", chair_b, "-t", "bea", "--screening",
                str(SCREENING), env={**env, "SMP_SIM_CLOCK": "virtual"})  # B: virtual time
        assert b.returncode == 0, b.stdout + b.stderr
        assert "in use by another run (another chair)" in b.stdout
        assert "passlog-SMP-" in b.stdout
    finally:
        a.popen.send_signal(signal.SIGINT)  # chair A stops: needle stopped, pass recorded
    rc, _out, err = a.finish()
    assert rc == ExitCode.INTERRUPTED, err

    listed = smp("sessions", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    sessions = json.loads(listed.stdout)
    assert sorted(s["technician"] for s in sessions) == ["ana", "bea"]
    assert len({s["pen_serial"] for s in sessions}) == 2  # each session on its own pen
    logs = sorted(p.name for p in data.glob("passlog*.sqlite"))
    assert logs[0] == "passlog-" + next(s["pen_serial"] for s in sessions
                                        if s["technician"] == "bea") + ".sqlite"
    assert logs[1] == "passlog.sqlite"
    for s in sessions:  # each found through `smp sessions show`, with its pen's passes
        shown = smp("sessions", "show", s["session_id"], "--json", env=env)
        assert shown.returncode == 0, shown.stderr
        body = json.loads(shown.stdout)
        assert body["pen_serial"] == s["pen_serial"] and body["passes"]
    verified = smp("sessions", "verify", env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.count("chain intact") == 2
    exported = smp("sessions", "export", "--format", "csv", env=env)
    assert exported.returncode == 0, exported.stderr
    header, *rows = exported.stdout.strip().splitlines()
    assert header not in rows  # one CSV: one header line
    assert len(rows) == sum(len(json.loads(smp("sessions", "show", s["session_id"], "--json",
                                               env=env).stdout)["passes"]) for s in sessions)
