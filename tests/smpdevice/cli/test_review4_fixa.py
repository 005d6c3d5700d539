"""Review 4 (FIXA): command-line promises that held only for the inputs somebody listed.

- `--until DAYT00:00` is that instant, not the whole day; `--until 9999-12-31` is no bound
  (no OverflowError traceback) (findings 8, 9);
- a stdout that cannot be written (a full disk, a closed pipe) is one line and exit 2, never a
  traceback, and `smp run` still plays and closes its session (finding 5);
- `nan` for a float option, a --limit no database holds, and a technician name with control
  characters are refused while the command line is parsed, before the pen moves.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.pen_model import PenModel
from smpdevice.calibration.store import CalibrationStore
from smpdevice.cli import main
from smpdevice.cli.params import FiniteFloatRange
from smpdevice.cli.sessions_common import When
from smpdevice.control.calibration import Calibration
from tests.smpdevice import shell
from tests.smpdevice.conftest import fit_points
from tests.smpdevice.records.test_passlog import filled  # passes begun 2025-03-10 10:00:00 UTC

ROOT = Path(__file__).resolve().parents[3]
PROFILE = ROOT / "examples" / "session1_base_density.yaml"
SCREENING = ROOT / "examples" / "screening_clear.yaml"
WAIT_S = 300  # a subprocess on 2 loaded cores; never a timing assertion


def run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(main, list(args))


def smp(*args: str, env: dict[str, str], stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smpdevice", *args], cwd=ROOT, env=env,
                          stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=WAIT_S)


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return dict(os.environ, SMP_DATA_DIR=str(tmp_path / "data"), HOME=str(tmp_path),
                SMP_CONFIG=str(tmp_path / "none.toml"), SMP_LOG_LEVEL="error")


def exported(db: Path, *filters: str) -> list[dict]:
    result = run("sessions", "export", "--format", "jsonl", "--db", str(db), *filters)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


# ---------------------------------------------------------------- --until (findings 8, 9)


def test_until_midnight_is_that_instant_and_a_date_is_the_whole_day(tmp_path):
    db = tmp_path / "log.sqlite"
    filled(db)
    assert exported(db, "--until", "2025-03-10T00:00") == []  # old: the whole day (3 passes)
    assert len(exported(db, "--until", "2025-03-10")) == 3  # a date: up to its end
    assert exported(db, "--until", "2025-03-10T10:00") == []  # exclusive: begun at 10:00:00
    assert len(exported(db, "--until", "2025-03-10T10:01")) == 3
    assert len(exported(db, "--since", "2025-03-10T00:00", "--until", "2025-03-11T00:00")) == 3


def test_until_the_last_day_of_the_calendar_is_no_upper_bound(tmp_path):
    db = tmp_path / "log.sqlite"
    filled(db)
    assert len(exported(db, "--until", "9999-12-31")) == 3  # old: OverflowError traceback
    listed = run("sessions", "list", "--db", str(db), "--json", "--until", "9999-12-31")
    assert listed.exit_code == 0 and listed.exception is None, listed.output
    assert len(json.loads(listed.stdout)) == 1


def test_until_not_after_since_is_one_line_exit_2(tmp_path):
    db = tmp_path / "log.sqlite"
    filled(db)
    result = run("sessions", "export", "--format", "jsonl", "--db", str(db),
                 "--since", "2025-03-10T10:00", "--until", "2025-03-10T10:00")
    assert result.exit_code == 2 and "is not after --since" in result.output


@given(st.dates(), st.booleans())
@settings(max_examples=200, deadline=None)
def test_every_until_date_resolves_without_error(day, with_time):
    text = day.isoformat() + ("T00:00" if with_time else "")
    until = When(end_of_day=True).convert(text, None, None)
    if until is None:  # the last day: no upper bound
        assert day.max == day and not with_time
        return
    assert until.date() >= day
    if with_time:
        assert (until.date(), until.hour, until.minute) == (day, 0, 0)


# ------------------------------------------------------- options refused while parsing


@given(st.text(max_size=12) | st.sampled_from(["nan", "NaN", "-nan", "inf", "-inf", "1e400",
                                                  "infinity", " nan "]))
@settings(max_examples=300, deadline=None)
def test_finite_float_options_never_let_a_non_finite_number_through(text):
    try:
        value = FiniteFloatRange(0.01, 365).convert(text, None, None)
    except click.BadParameter:
        return
    assert math.isfinite(value) and 0.01 <= value <= 365


@pytest.mark.parametrize("args", [["monitor", "--duration", "nan"],
                                  ["monitor", "--duration", "inf"],
                                  ["monitor", "--refresh-hz", "nan"],
                                  ["calibrate", "--port", "pensim://", "--auto",
                                   "--valid-days", "nan"],
                                  ["calibrate", "--port", "pensim://", "--auto",
                                   "--tolerance-mm", "nan"]])
def test_nan_is_refused_before_anything_runs(data_dir_env, args):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert "is not a finite number" in result.output
    assert "Calibrating pen" not in result.output  # old: refused after the pen ran


def test_a_limit_no_database_holds_is_refused_as_an_option(data_dir_env):
    result = run("calibrations", "list", "--limit", "99999999999999999999")
    assert result.exit_code == 2
    assert "--limit" in result.output and "datatype mismatch" not in result.output


@pytest.mark.parametrize("name", ["ana\tb", "ana\u202eevil", "ana\x1b[2J", "  "])
def test_calibrate_refuses_a_technician_name_before_the_pen_moves(data_dir_env, name):
    result = run("calibrate", "--port", "pensim://", "--auto", "-t", name)
    assert result.exit_code == 2, result.output
    assert "technician=" in result.output and "Calibrating pen" not in result.output


@pytest.fixture
def data_dir_env(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SMP_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("SMP_LOG_LEVEL", "error")
    return tmp_path


# ------------------------------------------------------------- lost output (finding 5)

needs_dev_full = pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")


@needs_dev_full
@pytest.mark.parametrize("args", [["diagram"], ["profile", "schema"], ["config", "show"],
                                  ["--help"]])
def test_a_full_disk_on_stdout_is_one_line_and_exit_2(env, args):
    with open("/dev/full", "w") as full:
        done = smp(*args, env=env, stdout=full)
    assert "Traceback" not in done.stderr, done.stderr[-600:]
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "could not be written" in done.stderr


@needs_dev_full
def test_export_to_a_full_disk_is_one_line_and_exit_2(env, tmp_path):
    db = tmp_path / "log.sqlite"
    filled(db)
    # The file it writes is full, not the process's stdout: in this process (shell.py).
    done = shell.smp(["sessions", "export", "--format", "csv", "--db", str(db), "-o",
                      "/dev/full"], env=env, cwd=ROOT)
    assert "Traceback" not in done.stderr, done.stderr[-600:]
    assert done.returncode == 2 and "No space left on device" in done.stderr


def test_a_reader_that_stops_early_is_one_line_not_a_traceback(env, tmp_path):
    db = tmp_path / "log.sqlite"
    filled(db)
    proc = subprocess.Popen([sys.executable, "-m", "smpdevice", "sessions", "export",
                             "--format", "jsonl", "--db", str(db)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the command writes: EPIPE
    err = proc.stderr.read()
    assert proc.wait(WAIT_S) == 2
    assert "Traceback" not in err and "could not be written" in err


@needs_dev_full
def test_run_with_its_output_on_a_full_disk_plays_and_closes_its_session(env, tmp_path):
    data = Path(env["SMP_DATA_DIR"])
    data.mkdir(parents=True)
    model = PenModel(seed=0)  # the pen `pensim://` starts
    CalibrationStore(data / "calibrations.sqlite").save(Calibration.linear(
        pen_serial=model.serial, technician="t", offset_mm=-model.offset_mm, gain=model.gain,
        **fit_points(-model.offset_mm, model.gain)))
    profile = tmp_path / "short.yaml"
    profile.write_text(PROFILE.read_text().replace("duration_s: 3", "duration_s: 0.3")
                       .replace("duration_s: 2", "duration_s: 0.3")
                       .replace("impressions: 25", "impressions: 3"))
    with open("/dev/full", "w") as full:
        done = smp("run", str(profile), "--port", "pensim://", "-t", "ana", "--screening",
                   str(SCREENING), env={**env, "SMP_SIM_CLOCK": "virtual"}, stdout=full)
    assert "Traceback" not in done.stderr, done.stderr[-600:]
    assert "could not be written" in done.stderr
    # what the run left, read by `smp sessions list` in this process (the run's is the point)
    listed = CliRunner().invoke(main, ["sessions", "list", "--json"], env={
        name: env[name] for name in ("SMP_DATA_DIR", "HOME", "SMP_CONFIG", "SMP_LOG_LEVEL")})
    assert listed.exit_code == 0, listed.output
    sessions = json.loads(listed.stdout)
    assert len(sessions) == 1 and sessions[0]["closed_at"], sessions  # old: left open, 0 passes
    assert sessions[0]["pass_count"] == 4
    # the session's own outcome code wins when it is not 0; a complete one exits 2 (output lost)
    assert done.returncode in (2, 4, 5, 6, 7)
