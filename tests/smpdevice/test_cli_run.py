"""`smp run`, `smp demo` and `smp info` from the command line, on the built-in simulator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulators.pen_model import PenModel
from smpdevice.calibration import Calibration
from smpdevice.calibration_store import CalibrationStore
from smpdevice.cli import main
from smpdevice.passlog import PassLog

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "examples" / "session1_base_density.yaml"
SCREENING = ROOT / "examples" / "screening_clear.yaml"


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SMP_LOG_LEVEL", "error")
    return tmp_path


def calibrate_default_pen(data_dir: Path) -> None:
    """Store the true calibration of the pen `pensim://` starts (seed 0)."""
    model = PenModel(seed=0)
    CalibrationStore(data_dir / "calibrations.sqlite").save(Calibration.linear(
        pen_serial=model.serial, technician="t", offset_mm=-model.offset_mm, gain=model.gain))


def short_profile(tmp_path: Path, seconds: str = "0.3") -> Path:
    text = PROFILE.read_text().replace("duration_s: 3", f"duration_s: {seconds}")
    text = text.replace("duration_s: 2", f"duration_s: {seconds}")
    text = text.replace("impressions: 25", "impressions: 3")
    path = tmp_path / "profile.yaml"
    path.write_text(text)
    return path


def test_run_refuses_an_uncalibrated_pen_naming_the_fix(data_dir):
    result = CliRunner().invoke(main, ["run", str(PROFILE), "-t", "ana", "--screening",
                                       str(SCREENING)])
    assert result.exit_code == 2
    assert "has no calibration" in result.output and "smp calibrate" in result.output
    assert "Traceback" not in result.output


def test_run_refuses_a_bad_profile_before_connecting(data_dir, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(PROFILE.read_text().replace("depth_mm: 0.40", "depth_mm: 2.40", 1))
    result = CliRunner().invoke(main, ["run", str(bad), "-t", "ana", "--screening",
                                       str(SCREENING)])
    assert result.exit_code != 0
    assert "zones.top.depth_mm" in result.output and "2.4" in result.output


def test_run_needs_an_answered_screening(data_dir, tmp_path):
    calibrate_default_pen(data_dir)
    partial = tmp_path / "screening.yaml"
    partial.write_text("open_sores: false\n")
    result = CliRunner().invoke(main, ["run", str(short_profile(tmp_path)), "-t", "ana",
                                       "--screening", str(partial)])
    assert result.exit_code != 0 and "eczema" in result.output
    assert not (data_dir / "passlog.sqlite").exists() or not PassLog(
        data_dir / "passlog.sqlite", readonly=True).sessions()


def test_run_plays_the_profile_and_logs_every_pass(data_dir, tmp_path):
    calibrate_default_pen(data_dir)
    result = CliRunner().invoke(main, ["run", str(short_profile(tmp_path)), "-t", "ana",
                                       "--screening", str(SCREENING)])
    assert result.exit_code == 0, result.output
    assert "Keep the treated area dry" in result.output
    assert "smp sessions show" in result.output
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        (session,) = log.sessions()
        assert [p.outcome for p in log.passes()] == ["completed"] * 4
        assert session.technician == "ana"


def test_ctrl_c_stops_the_needle_records_the_pass_and_exits(data_dir, tmp_path):
    calibrate_default_pen(data_dir)
    profile = short_profile(tmp_path, seconds="30")
    child = subprocess.Popen(
        [sys.executable, "-m", "smpdevice", "run", str(profile), "-t", "ana",
         "--screening", str(SCREENING)],
        env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    db = data_dir / "passlog.sqlite"
    deadline = time.monotonic() + 15
    while not (db.exists() and PassLog(db, readonly=True).passes()):
        assert time.monotonic() < deadline and child.poll() is None, child.stderr.read()
        time.sleep(0.05)
    time.sleep(0.5)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=15)
    assert child.returncode == 130, err
    assert "needle is stopped" in out
    with PassLog(db, readonly=True) as log:
        (p,) = log.passes()
        assert p.outcome == "stopped" and p.strokes > 0
        assert log.verify() is None


def test_demo_quick_runs_end_to_end(data_dir):
    result = CliRunner().invoke(main, ["demo", "--quick"])
    assert result.exit_code == 0, result.output
    for expected in ("Calibrating automatically", "verified; saved as", "4 passes",
                     "Keep the treated area dry", "smp sessions show", "Demo finished"):
        assert expected in result.output
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        assert [p.outcome for p in log.passes()] == ["completed"] * 4
    assert CalibrationStore(data_dir / "calibrations.sqlite").list()


def test_info_json_reports_identity_and_limits(data_dir):
    result = CliRunner().invoke(main, ["info", "--port", "pensim://?seed=5", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["serial"] == PenModel(seed=5).serial
    assert data["limits"]["speed_max_hz"] == PenModel(seed=5).speed_max_hz
    assert data["pen_state"] == "IDLE" and data["faults"] == []


def test_info_on_a_missing_port_is_one_clear_line(data_dir):
    result = CliRunner().invoke(main, ["info", "--port", "/dev/ttyNOPE"])
    assert result.exit_code == 2
    assert result.output.startswith("error: cannot open port '/dev/ttyNOPE'")
    assert "smp ports" in result.output


def test_ports_lists_json(data_dir):
    result = CliRunner().invoke(main, ["ports", "--json"])
    assert result.exit_code == 0
    assert isinstance(json.loads(result.output), list)


def test_run_with_a_stricter_envelope_file_refuses_the_profile(data_dir, tmp_path):
    strict = tmp_path / "envelope.yaml"
    strict.write_text("top:\n  dermal_ceiling_mm: 0.35\n")
    result = CliRunner().invoke(main, ["run", str(PROFILE), "-t", "ana", "--screening",
                                       str(SCREENING), "--envelope", str(strict)])
    assert result.exit_code != 0
    assert "zones.top.depth_mm" in result.output and "0.35" in result.output
